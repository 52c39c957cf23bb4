using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using KestrelTcp.Tls;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Configuration;

namespace KestrelTcp.Tests.Tls;

public sealed class TlsOptionsTests : IDisposable
{
    private const string Tls = "KestrelTcp:Listeners:echo-tls:Tls";

    private readonly TempDirectory _root = new();

    public TlsOptionsTests()
    {
        _root.WritePemPair("certs/server", TestPki.Server("server.test"), TestPki.Intermediate);
    }

    public void Dispose() => _root.Dispose();

    private (TlsOptions? Options, List<string> Problems) Read(params (string Key, string? Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>($"{Tls}:{s.Key}", s.Value)))
            .Build();
        var problems = new List<string>();
        var options = TlsOptions.Read(configuration.GetSection(Tls), _root.Path, problems);
        return (options, problems);
    }

    private string Problem(params (string Key, string? Value)[] settings)
    {
        var (_, problems) = Read(settings);
        return Assert.Single(problems);
    }

    private static readonly (string, string?)[] PemPair = [("Certificate:Path", "certs/server.pem"), ("Certificate:KeyPath", "certs/server.key")];

    [Fact]
    public void Read_NoSection_Null()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["KestrelTcp:Listeners:echo:Port"] = "7007" }).Build();
        var problems = new List<string>();
        Assert.Null(TlsOptions.Read(configuration.GetSection("KestrelTcp:Listeners:echo:Tls"), _root.Path, problems));
        Assert.Empty(problems);
    }

    [Fact]
    public void Read_PemPairOnly_RelativePathsResolvedAndDefaults()
    {
        var (options, problems) = Read(PemPair);
        Assert.Empty(problems);
        Assert.NotNull(options);
        Assert.Equal(new CertificateSource(_root.Full("certs/server.pem"), _root.Full("certs/server.key")), options.Certificate);
        Assert.Equal(Path.Combine(_root.Path, "certs", "server.pem"), options.Certificate.Path);
        Assert.Empty(options.Sni);
        Assert.Equal(SslProtocols.None, options.SslProtocols);
        Assert.Equal(ClientCertificateMode.NoCertificate, options.ClientCertificateMode);
        Assert.Null(options.ClientCertificateAuthority);
        Assert.False(options.CheckCertificateRevocation);
        Assert.Empty(options.ApplicationProtocols);
        Assert.Equal(TimeSpan.FromSeconds(10), options.HandshakeTimeout);
    }

    [Fact]
    public void Read_EverySetting_Read()
    {
        _root.WritePemPair("certs/a", TestPki.Server("a.example.com"));
        _root.WritePemPair("certs/wild", TestPki.Server("*.example.org"));
        _root.Write("certs/ca.pem", TestPki.Ca.CertificatePem + TestPki.OtherCa.CertificatePem);
        var (options, problems) = Read([
            .. PemPair,
            ("Sni:a.example.com:Certificate:Path", "certs/a.pem"), ("Sni:a.example.com:Certificate:KeyPath", "certs/a.key"),
            ("Sni:*.example.org:Certificate:Path", "certs/wild.pem"), ("Sni:*.example.org:Certificate:KeyPath", "certs/wild.key"),
            ("SslProtocols:0", "Tls12"), ("SslProtocols:1", "tls13"),
            ("ClientCertificateMode", "requirecertificate"),
            ("ClientCertificateAuthority", "certs/ca.pem"),
            ("CheckCertificateRevocation", "true"),
            ("ApplicationProtocols:0", "kestreltcp/1"), ("ApplicationProtocols:1", "imap"),
            ("HandshakeTimeout", "00:00:03.5")]);
        Assert.Empty(problems);
        Assert.NotNull(options);
        Assert.Equal(["*.example.org", "a.example.com"], options.Sni.Keys.Order());
        Assert.Equal(_root.Full("certs/wild.pem"), options.Sni["*.EXAMPLE.org"].Path);
        Assert.Equal(SslProtocols.Tls12 | SslProtocols.Tls13, options.SslProtocols);
        Assert.Equal(ClientCertificateMode.RequireCertificate, options.ClientCertificateMode);
        Assert.Equal(_root.Full("certs/ca.pem"), options.ClientCertificateAuthority);
        Assert.True(options.CheckCertificateRevocation);
        Assert.Equal(["kestreltcp/1", "imap"], options.ApplicationProtocols);
        Assert.Equal(TimeSpan.FromMilliseconds(3500), options.HandshakeTimeout);
    }

    [Fact]
    public void Read_SingleProtocolValue_TakenAsOneName()
    {
        var (options, problems) = Read([.. PemPair, ("SslProtocols", "Tls13")]);
        Assert.Empty(problems);
        Assert.Equal(SslProtocols.Tls13, options!.SslProtocols);
    }

    [Fact]
    public void Read_PfxWithPassword_Loads()
    {
        _root.Write("certs/server.pfx", TestPki.Server("server.test").Pfx("s3cret"));
        var (options, problems) = Read(("Certificate:Path", "certs/server.pfx"), ("Certificate:Password", "s3cret"));
        Assert.Empty(problems);
        Assert.Equal(new CertificateSource(_root.Full("certs/server.pfx"), null, "s3cret"), options!.Certificate);
    }

    [Fact]
    public void Read_PemWithKeyInsideRsaOrEncrypted_Loads()
    {
        var rsa = TestPki.CreateServer("rsa.test", TestPki.Intermediate, rsa: true);
        _root.Write("certs/combined.pem", rsa.CertificatePem + rsa.KeyPem);
        _root.Write("certs/encrypted.key", TestPki.Server("server.test").EncryptedKeyPem("pw"));
        var absolute = _root.WritePemPair("abs/server", TestPki.Server("server.test"));
        Assert.Empty(Read(("Certificate:Path", "certs/combined.pem")).Problems);
        Assert.Empty(Read(("Certificate:Path", "certs/server.pem"), ("Certificate:KeyPath", "certs/encrypted.key"), ("Certificate:Password", "pw")).Problems);
        var (options, problems) = Read(("Certificate:Path", absolute.Certificate), ("Certificate:KeyPath", absolute.Key));
        Assert.Empty(problems);
        Assert.Equal(absolute.Certificate, options!.Certificate.Path);
    }

    [Fact]
    public void Read_NoCertificate_Missing()
    {
        Assert.Equal(
            $"{Tls}:Certificate:Path: missing (a PEM certificate with its KeyPath, or a .pfx file with its Password)",
            Problem(("SslProtocols:0", "Tls13")));
        Assert.Equal(
            $"{Tls}:Certificate:Path: missing (a PEM certificate with its KeyPath, or a .pfx file with its Password)",
            Problem(("Certificate:KeyPath", "certs/server.key")));
    }

    [Fact]
    public void Read_CertificateFileMissing_NamesKeyAndFullPath()
    {
        Assert.Equal(
            $"{Tls}:Certificate:Path: file not found ({_root.Full("certs/nope.pem")})",
            Problem(("Certificate:Path", "certs/nope.pem"), ("Certificate:KeyPath", "certs/server.key")));
        Assert.Equal(
            $"{Tls}:Certificate:Path: file not found ({_root.Full("missing-dir/server.pfx")})",
            Problem(("Certificate:Path", "missing-dir/server.pfx")));
    }

    [Fact]
    public void Read_KeyFileMissing_NamesKeyPath()
    {
        Assert.Equal(
            $"{Tls}:Certificate:KeyPath: file not found ({_root.Full("certs/nope.key")})",
            Problem(("Certificate:Path", "certs/server.pem"), ("Certificate:KeyPath", "certs/nope.key")));
    }

    [Fact]
    public void Read_PathIsADirectory_Unreadable()
    {
        Assert.Equal(
            $"{Tls}:Certificate:Path: {_root.Full("certs")} is a directory, not a file",
            Problem(("Certificate:Path", "certs"), ("Certificate:KeyPath", "certs/server.key")));
    }

    [Fact]
    public void Read_HugeFile_RefusedWithoutReadingItAll()
    {
        var big = _root.Write("certs/big.pem", new byte[TlsCertificateLoader.MaxFileSize + 1]);
        Assert.Equal(
            $"{Tls}:Certificate:Path: {big} is larger than 1024 KiB: not a certificate or key file",
            Problem(("Certificate:Path", "certs/big.pem"), ("Certificate:KeyPath", "certs/server.key")));
    }

    [UnixFact]
    public void Read_EndlessDevice_Refused()
    {
        Assert.Equal(
            $"{Tls}:Certificate:Path: /dev/zero is larger than 1024 KiB: not a certificate or key file",
            Problem(("Certificate:Path", "/dev/zero"), ("Certificate:KeyPath", "certs/server.key")));
    }

    [Fact]
    public void Read_PfxWrongOrMissingPassword_NamesPassword()
    {
        var pfx = _root.Write("certs/server.pfx", TestPki.Server("server.test").Pfx("s3cret"));
        Assert.Equal(
            $"{Tls}:Certificate:Password: wrong password for {pfx}",
            Problem(("Certificate:Path", "certs/server.pfx"), ("Certificate:Password", "guess")));
        Assert.Equal(
            $"{Tls}:Certificate:Password: missing: {pfx} is password-protected",
            Problem(("Certificate:Path", "certs/server.pfx")));
    }

    [Fact]
    public void Read_KeyOfAnotherCertificate_DoesNotMatch()
    {
        _root.Write("certs/other.key", TestPki.Server("other.test").KeyPem);
        _root.Write("certs/rsa.key", TestPki.CreateServer("rsa.test", TestPki.Intermediate, rsa: true).KeyPem);
        Assert.Equal(
            $"{Tls}:Certificate:KeyPath: the private key in {_root.Full("certs/other.key")} does not match the certificate in {_root.Full("certs/server.pem")}",
            Problem(("Certificate:Path", "certs/server.pem"), ("Certificate:KeyPath", "certs/other.key")));
        Assert.Equal(
            $"{Tls}:Certificate:KeyPath: the private key in {_root.Full("certs/rsa.key")} does not match the certificate in {_root.Full("certs/server.pem")}",
            Problem(("Certificate:Path", "certs/server.pem"), ("Certificate:KeyPath", "certs/rsa.key")));
    }

    [Fact]
    public void Read_CertificateWithoutPrivateKey_Refused()
    {
        var pemOnly = _root.Full("certs/server.pem");
        Assert.Equal(
            $"{Tls}:Certificate:Path: {pemOnly} has no private key (give KeyPath, or use a .pfx file that holds the key)",
            Problem(("Certificate:Path", "certs/server.pem")));

        using var publicOnly = X509CertificateLoader.LoadCertificate(TestPki.Server("server.test").Certificate.RawData);
        var pfx = _root.Write("certs/nokey.pfx", publicOnly.Export(X509ContentType.Pfx));
        Assert.Equal(
            $"{Tls}:Certificate:Path: {pfx} has no private key (give KeyPath, or use a .pfx file that holds the key)",
            Problem(("Certificate:Path", "certs/nokey.pfx")));
    }

    [Fact]
    public void Read_KeyFileWithoutKey_Refused()
    {
        Assert.Equal(
            $"{Tls}:Certificate:KeyPath: {_root.Full("certs/server.pem")} contains no PEM private key",
            Problem(("Certificate:Path", "certs/server.pem"), ("Certificate:KeyPath", "certs/server.pem")));
    }

    [Fact]
    public void Read_EncryptedKey_NeedsTheRightPassword()
    {
        var key = _root.Write("certs/encrypted.key", TestPki.Server("server.test").EncryptedKeyPem("pw"));
        Assert.Equal(
            $"{Tls}:Certificate:Password: missing: the private key in {key} is encrypted",
            Problem(("Certificate:Path", "certs/server.pem"), ("Certificate:KeyPath", "certs/encrypted.key")));
        Assert.Equal(
            $"{Tls}:Certificate:Password: wrong password for the private key in {key}",
            Problem(("Certificate:Path", "certs/server.pem"), ("Certificate:KeyPath", "certs/encrypted.key"), ("Certificate:Password", "nope")));
    }

    [Fact]
    public void Read_GarbageCertificate_NeitherPemNorPfx()
    {
        var garbage = _root.Write("certs/garbage.crt", "this is not a certificate");
        Assert.Equal(
            $"{Tls}:Certificate:Path: {garbage} is neither a PEM certificate nor a PKCS#12 (.pfx) file",
            Problem(("Certificate:Path", "certs/garbage.crt")));
        Assert.Equal(
            $"{Tls}:Certificate:Path: {garbage} contains no PEM certificate (with a KeyPath, Path is a PEM file)",
            Problem(("Certificate:Path", "certs/garbage.crt"), ("Certificate:KeyPath", "certs/server.key")));
    }

    [Fact]
    public void Read_ClientCertificateAsServerCertificate_NotForServers()
    {
        var (certificate, _) = _root.WritePemPair("certs/alice", TestPki.Alice);
        Assert.Equal(
            $"{Tls}:Certificate:Path: the certificate in {certificate} is not for servers (its extended key usage lacks serverAuth, 1.3.6.1.5.5.7.3.1)",
            Problem(("Certificate:Path", "certs/alice.pem"), ("Certificate:KeyPath", "certs/alice.key")));
    }

    [Theory]
    [InlineData("Tls11")]
    [InlineData("Tls")]
    [InlineData("Ssl3")]
    [InlineData("Tls14")]
    [InlineData("12")]
    public void Read_UnsupportedProtocol_Refused(string name)
    {
        Assert.Equal(
            $"{Tls}:SslProtocols:1: '{name}' is not a supported TLS version (Tls12 or Tls13; TLS 1.0 and 1.1 are deprecated)",
            Problem([.. PemPair, ("SslProtocols:0", "Tls13"), ("SslProtocols:1", name)]));
    }

    [Theory]
    [InlineData("Required")]
    [InlineData("DelayCertificate")]
    [InlineData("2")]
    public void Read_UnknownClientCertificateMode_Refused(string mode)
    {
        Assert.Equal(
            $"{Tls}:ClientCertificateMode: '{mode}' is not a client certificate mode (NoCertificate, AllowCertificate or RequireCertificate)",
            Problem([.. PemPair, ("ClientCertificateMode", mode)]));
    }

    [Fact]
    public void Read_ClientCertificateAuthority_MissingGarbageOrDer()
    {
        Assert.Equal(
            $"{Tls}:ClientCertificateAuthority: file not found ({_root.Full("certs/ca.pem")})",
            Problem([.. PemPair, ("ClientCertificateAuthority", "certs/ca.pem")]));

        var garbage = _root.Write("certs/garbage-ca.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
        Assert.Equal(
            $"{Tls}:ClientCertificateAuthority: {garbage} contains no certificate (expected PEM or DER)",
            Problem([.. PemPair, ("ClientCertificateAuthority", "certs/garbage-ca.pem")]));

        _root.Write("certs/ca.der", TestPki.Ca.Certificate.RawData);
        Assert.Empty(Read([.. PemPair, ("ClientCertificateAuthority", "certs/ca.der")]).Problems);
    }

    [Theory]
    [InlineData("bad..name")]
    [InlineData("*")]
    [InlineData("a.*.example.org")]
    [InlineData("*example.org")]
    [InlineData("-a.example.org")]
    [InlineData("bücher.example")]
    public void Read_BadSniName_Refused(string name)
    {
        Assert.Equal(
            $"{Tls}:Sni:{name}: '{name}' is not a host name or a *. wildcard (e.g. a.example.com, *.example.org)",
            Problem([.. PemPair, ($"Sni:{name}:Certificate:Path", "certs/server.pem"), ($"Sni:{name}:Certificate:KeyPath", "certs/server.key")]));
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("*.example.org")]
    [InlineData("xn--bcher-kva.example")]
    [InlineData("under_score.example.com")]
    public void Read_GoodSniName_Accepted(string name)
    {
        Assert.Empty(Read([.. PemPair, ($"Sni:{name}:Certificate:Path", "certs/server.pem"), ($"Sni:{name}:Certificate:KeyPath", "certs/server.key")]).Problems);
    }

    [Fact]
    public void Read_SniWithoutCertificate_NamesItsKey()
    {
        Assert.Equal(
            $"{Tls}:Sni:a.example.com:Certificate:Path: missing (a PEM certificate with its KeyPath, or a .pfx file with its Password)",
            Problem([.. PemPair, ("Sni:a.example.com:Certificate:KeyPath", "certs/server.key")]));
        Assert.Equal(
            $"{Tls}:Sni:a.example.com:Certificate:Path: file not found ({_root.Full("certs/a.pem")})",
            Problem([.. PemPair, ("Sni:a.example.com:Certificate:Path", "certs/a.pem"), ("Sni:a.example.com:Certificate:KeyPath", "certs/server.key")]));
    }

    [Theory]
    [InlineData("00:00:00", "must be more than 0 (e.g. 00:00:10)")]
    [InlineData("-00:00:01", "-00:00:01 is negative")]
    [InlineData("soon", "'soon' is not a time span (expected [d.]hh:mm:ss[.fff], e.g. 00:05:00)")]
    [InlineData("30.00:00:00", "30.00:00:00 is too long (at most 24.20:31:23.6470000)")]
    public void Read_BadHandshakeTimeout_Refused(string value, string why)
    {
        Assert.Equal($"{Tls}:HandshakeTimeout: {why}", Problem([.. PemPair, ("HandshakeTimeout", value)]));
    }

    [Fact]
    public void Read_BadApplicationProtocolOrRevocationFlag_Refused()
    {
        Assert.Equal(
            $"{Tls}:ApplicationProtocols:1: '' is not an ALPN protocol name (1-255 bytes, e.g. h2, http/1.1, imap)",
            Problem([.. PemPair, ("ApplicationProtocols:0", "imap"), ("ApplicationProtocols:1", "")]));
        Assert.Equal(
            $"{Tls}:CheckCertificateRevocation: 'yes' is not true or false",
            Problem([.. PemPair, ("CheckCertificateRevocation", "yes")]));
    }

    [Fact]
    public void Read_ManyProblems_AllReportedInKeyOrder()
    {
        var (options, problems) = Read(
            ("Certificate:Path", "certs/nope.pem"), ("Certificate:KeyPath", "certs/server.key"),
            ("Sni:bad..name:Certificate:Path", "certs/server.pem"), ("Sni:bad..name:Certificate:KeyPath", "certs/missing.key"),
            ("SslProtocols:0", "Tls11"),
            ("ClientCertificateMode", "Sometimes"),
            ("ClientCertificateAuthority", "certs/ca.pem"),
            ("HandshakeTimeout", "00:00:00"));
        Assert.NotNull(options);
        Assert.Equal(
            [
                $"{Tls}:Certificate:Path: file not found ({_root.Full("certs/nope.pem")})",
                $"{Tls}:Sni:bad..name: 'bad..name' is not a host name or a *. wildcard (e.g. a.example.com, *.example.org)",
                $"{Tls}:Sni:bad..name:Certificate:KeyPath: file not found ({_root.Full("certs/missing.key")})",
                $"{Tls}:SslProtocols:0: 'Tls11' is not a supported TLS version (Tls12 or Tls13; TLS 1.0 and 1.1 are deprecated)",
                $"{Tls}:ClientCertificateMode: 'Sometimes' is not a client certificate mode (NoCertificate, AllowCertificate or RequireCertificate)",
                $"{Tls}:ClientCertificateAuthority: file not found ({_root.Full("certs/ca.pem")})",
                $"{Tls}:HandshakeTimeout: must be more than 0 (e.g. 00:00:10)",
            ],
            problems);
    }

    [Fact]
    public void CertificateSource_ToString_HidesPassword()
    {
        Assert.DoesNotContain("s3cret", new CertificateSource("/a.pfx", null, "s3cret").ToString());
    }
}

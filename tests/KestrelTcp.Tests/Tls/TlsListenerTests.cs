using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using KestrelTcp.Configuration;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Tls;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace KestrelTcp.Tests.Tls;

public sealed class TlsListenerTests : IDisposable
{
    private readonly TempDirectory _root = new();
    private readonly FakeTimeProvider _time = new();
    private readonly LogCapture _logs = new();
    private readonly ILoggerFactory _loggerFactory;

    public TlsListenerTests()
    {
        _loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(_logs));
    }

    public void Dispose()
    {
        _loggerFactory.Dispose();
        _root.Dispose();
    }

    private TlsListener Create(TlsOptions options) => new(options, "echo-tls", _loggerFactory.CreateLogger("KestrelTcp.Tls"), _time);

    private CertificateSource Pair(string name, TestCertificate certificate, params TestCertificate[] chain)
    {
        var (path, key) = _root.WritePemPair(name, certificate, chain);
        return new CertificateSource(path, key);
    }

    private TlsListener CreateWithSni()
    {
        return Create(new TlsOptions
        {
            Certificate = Pair("default", TestPki.Server("default.test")),
            Sni = new Dictionary<string, CertificateSource>(StringComparer.OrdinalIgnoreCase)
            {
                ["a.example.com"] = Pair("a", TestPki.Server("a.example.com")),
                ["*.example.org"] = Pair("wild", TestPki.Server("*.example.org")),
                ["special.example.org"] = Pair("special", TestPki.Server("special.example.org")),
                ["xn--bcher-kva.example"] = Pair("idn", TestPki.Server("xn--bcher-kva.example")),
            },
        });
    }

    private void AdvanceOnePoll() => _time.Advance(TlsListener.PollInterval);

    [Theory]
    [InlineData(null, "default.test")]
    [InlineData("", "default.test")]
    [InlineData("a.example.com", "a.example.com")]
    [InlineData("A.Example.COM", "a.example.com")]
    [InlineData("b.example.com", "default.test")]
    [InlineData("x.example.org", "*.example.org")]
    [InlineData("X.EXAMPLE.ORG", "*.example.org")]
    [InlineData("special.example.org", "special.example.org")]
    [InlineData("example.org", "default.test")]
    [InlineData("a.b.example.org", "default.test")]
    [InlineData(".example.org", "default.test")]
    [InlineData("xexample.org", "default.test")]
    [InlineData("bücher.example", "xn--bcher-kva.example")]
    [InlineData("xn--bcher-kva.example", "xn--bcher-kva.example")]
    public void GetCertificate_ByServerName_ExactThenOneLabelWildcardElseDefault(string? serverName, string expected)
    {
        using var tls = CreateWithSni();
        Assert.Equal($"CN={expected}", tls.GetCertificate(serverName).Subject);
        Assert.Same(tls.GetServerOptions(serverName).ServerCertificateContext!.TargetCertificate, tls.GetCertificate(serverName));
    }

    [Fact]
    public void GetServerOptions_SameCertificate_SameObjectEveryTime()
    {
        using var tls = CreateWithSni();
        Assert.Same(tls.GetServerOptions("x.example.org"), tls.GetServerOptions("y.example.org"));
        Assert.Same(tls.GetServerOptions(null), tls.GetServerOptions("unknown.test"));
        Assert.NotSame(tls.GetServerOptions(null), tls.GetServerOptions("a.example.com"));
    }

    [Fact]
    public void GetServerOptions_Defaults_NoAlpnNoClientCertificateOsProtocols()
    {
        using var tls = Create(new TlsOptions { Certificate = Pair("default", TestPki.Server("default.test")) });
        var options = tls.GetServerOptions(null);

        // Empty, not null: null would let Kestrel add h2 and http/1.1.
        Assert.NotNull(options.ApplicationProtocols);
        Assert.Empty(options.ApplicationProtocols);
        Assert.Equal(SslProtocols.None, options.EnabledSslProtocols);
        Assert.False(options.ClientCertificateRequired);
        Assert.Null(options.RemoteCertificateValidationCallback);
        Assert.Null(options.CertificateChainPolicy);
        Assert.False(options.AllowRenegotiation);
    }

    [Fact]
    public void GetServerOptions_Configured_ProtocolsAlpnAndClientCertificateAuthority()
    {
        var ca = _root.Write("ca.pem", TestPki.Ca.CertificatePem);
        using var tls = Create(new TlsOptions
        {
            Certificate = Pair("default", TestPki.Server("default.test")),
            SslProtocols = SslProtocols.Tls13,
            ApplicationProtocols = ["kestreltcp/1", "imap"],
            ClientCertificateMode = ClientCertificateMode.RequireCertificate,
            ClientCertificateAuthority = ca,
            CheckCertificateRevocation = true,
        });
        var options = tls.GetServerOptions(null);
        Assert.Equal(SslProtocols.Tls13, options.EnabledSslProtocols);
        Assert.Equal([new SslApplicationProtocol("kestreltcp/1"), new SslApplicationProtocol("imap")], options.ApplicationProtocols!);
        Assert.True(options.ClientCertificateRequired);
        Assert.NotNull(options.RemoteCertificateValidationCallback);
        var policy = options.CertificateChainPolicy!;
        Assert.Equal(System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust, policy.TrustMode);
        Assert.Equal(TestPki.Ca.Thumbprint, Assert.Single(policy.CustomTrustStore).Thumbprint);
        Assert.Equal(System.Security.Cryptography.X509Certificates.X509RevocationMode.Online, policy.RevocationMode);
        Assert.Equal("1.3.6.1.5.5.7.3.2", Assert.Single(policy.ApplicationPolicy.Cast<System.Security.Cryptography.Oid>()).Value);
    }

    [Theory]
    [InlineData(HttpProtocols.Http1AndHttp2, new[] { "h2", "http/1.1" })]
    [InlineData(HttpProtocols.Http1, new[] { "http/1.1" })]
    [InlineData(HttpProtocols.Http2, new[] { "h2" })]
    public void UseHttpApplicationProtocols_NoneConfigured_WhatKestrelWouldOffer(HttpProtocols protocols, string[] expected)
    {
        using var tls = Create(new TlsOptions { Certificate = Pair("default", TestPki.Server("default.test")) });
        tls.UseHttpApplicationProtocols(protocols);
        Assert.Equal(expected, tls.GetServerOptions(null).ApplicationProtocols!.Select(p => p.ToString()));
    }

    [Fact]
    public void UseHttpApplicationProtocols_Configured_KeptAsConfigured()
    {
        using var tls = Create(new TlsOptions { Certificate = Pair("default", TestPki.Server("default.test")), ApplicationProtocols = ["http/1.1"] });
        tls.UseHttpApplicationProtocols(HttpProtocols.Http1AndHttp2);
        Assert.Equal(["http/1.1"], tls.GetServerOptions(null).ApplicationProtocols!.Select(p => p.ToString()));
    }

    [Fact]
    public void Constructor_FileGoneSinceRead_ThrowsNamingListenerAndFile()
    {
        var source = Pair("default", TestPki.Server("default.test"));
        File.Delete(source.KeyPath!);
        var e = Assert.Throws<KestrelTcpConfigurationException>(() => Create(new TlsOptions { Certificate = source }));
        Assert.Equal([$"Listener echo-tls: TLS Certificate:KeyPath: file not found ({source.KeyPath})"], e.Problems);
    }

    [Fact]
    public void CheckFiles_CertificateAndKeyReplaced_NewCertificateAfterOnePoll()
    {
        var source = Pair("default", TestPki.Server("default.test"));
        using var tls = Create(new TlsOptions { Certificate = source });
        var before = tls.GetServerOptions(null);
        var replacement = TestPki.Server("default.test", variant: 1);
        _root.WritePemPair("default", replacement);

        _time.Advance(TlsListener.PollInterval - TimeSpan.FromMilliseconds(1));
        Assert.Equal(TestPki.Server("default.test").Thumbprint, tls.GetCertificate(null).Thumbprint);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(replacement.Thumbprint, tls.GetCertificate(null).Thumbprint);
        Assert.NotSame(before, tls.GetServerOptions(null));

        var reloaded = Assert.Single(_logs.Named("TlsCertificateReloaded"));
        Assert.Equal(LogLevel.Information, reloaded.Level);
        Assert.Equal(110, reloaded.EventId.Id);
        Assert.Equal("echo-tls", reloaded["Listener"]);
        Assert.Equal(source.Path, reloaded["File"]);
        Assert.Equal(replacement.Thumbprint, reloaded["Thumbprint"]);
        Assert.DoesNotContain(_logs.Events, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public void CheckFiles_SameContentsRewritten_NothingReloaded()
    {
        var source = Pair("default", TestPki.Server("default.test"));
        using var tls = Create(new TlsOptions { Certificate = source });
        var before = tls.GetServerOptions(null);
        _root.WritePemPair("default", TestPki.Server("default.test"));
        File.SetLastWriteTimeUtc(source.Path, DateTime.UtcNow.AddHours(1));
        AdvanceOnePoll();
        AdvanceOnePoll();
        Assert.Same(before, tls.GetServerOptions(null));
        Assert.Empty(_logs.Events);
    }

    [Fact]
    public void CheckFiles_ReplacedKeepingTheTimestamp_StillSeen()
    {
        var source = Pair("default", TestPki.Server("default.test"));
        using var tls = Create(new TlsOptions { Certificate = source });
        var stamp = File.GetLastWriteTimeUtc(source.Path);
        var keyStamp = File.GetLastWriteTimeUtc(source.KeyPath!);
        var replacement = TestPki.Server("default.test", variant: 2);
        _root.WritePemPair("default", replacement);
        File.SetLastWriteTimeUtc(source.Path, stamp);
        File.SetLastWriteTimeUtc(source.KeyPath!, keyStamp);
        AdvanceOnePoll();
        Assert.Equal(replacement.Thumbprint, tls.GetCertificate(null).Thumbprint);
    }

    [UnixFact]
    public void CheckFiles_KubernetesSecretSymlinkSwap_NewCertificateAfterOnePoll()
    {
        // The layout kubelet writes: tls.crt -> ..data/tls.crt, ..data -> ..2024_01_01_00_00_00.1, swapped by renaming a new link over ..data.
        var secret = Path.Combine(_root.Path, "secret");
        WriteVersion(secret, "..2024_01_01_00_00_00.1", TestPki.Server("k8s.test"));
        File.CreateSymbolicLink(Path.Combine(secret, "..data"), "..2024_01_01_00_00_00.1");
        File.CreateSymbolicLink(Path.Combine(secret, "tls.crt"), "..data/tls.crt");
        File.CreateSymbolicLink(Path.Combine(secret, "tls.key"), "..data/tls.key");
        using var tls = Create(new TlsOptions { Certificate = new CertificateSource(Path.Combine(secret, "tls.crt"), Path.Combine(secret, "tls.key")) });
        Assert.Equal(TestPki.Server("k8s.test").Thumbprint, tls.GetCertificate(null).Thumbprint);

        var rotated = TestPki.Server("k8s.test", variant: 1);
        WriteVersion(secret, "..2024_02_01_00_00_00.2", rotated);
        File.CreateSymbolicLink(Path.Combine(secret, "..data_tmp"), "..2024_02_01_00_00_00.2");
        Rename(Path.Combine(secret, "..data_tmp"), Path.Combine(secret, "..data"));
        Directory.Delete(Path.Combine(secret, "..2024_01_01_00_00_00.1"), recursive: true);

        AdvanceOnePoll();
        Assert.Equal(rotated.Thumbprint, tls.GetCertificate(null).Thumbprint);
        Assert.Equal(Path.Combine(secret, "tls.crt"), Assert.Single(_logs.Named("TlsCertificateReloaded"))["File"]);
    }

    [Fact]
    public void CheckFiles_OnlyCertificateReplaced_KeepsOldLogsErrorOnceThenTakesTheCompletePair()
    {
        var source = Pair("default", TestPki.Server("default.test"));
        using var tls = Create(new TlsOptions { Certificate = source });
        var replacement = TestPki.Server("default.test", variant: 3);
        File.WriteAllText(source.Path, replacement.CertificatePem);

        AdvanceOnePoll();
        Assert.Equal(TestPki.Server("default.test").Thumbprint, tls.GetCertificate(null).Thumbprint);
        var failed = Assert.Single(_logs.Named("TlsCertificateReloadFailed"));
        Assert.Equal(LogLevel.Error, failed.Level);
        Assert.Equal(111, failed.EventId.Id);
        Assert.Equal("echo-tls", failed["Listener"]);
        Assert.Equal(source.KeyPath, failed["File"]);
        Assert.Equal($"the private key in {source.KeyPath} does not match the certificate in {source.Path}", failed["Reason"]);
        Assert.Contains("echo-tls", failed.Message);
        Assert.Contains(source.KeyPath!, failed.Message);

        // The same broken state is not news at the next polls.
        AdvanceOnePoll();
        AdvanceOnePoll();
        Assert.Single(_logs.Named("TlsCertificateReloadFailed"));

        File.WriteAllText(source.KeyPath!, replacement.KeyPem);
        AdvanceOnePoll();
        Assert.Equal(replacement.Thumbprint, tls.GetCertificate(null).Thumbprint);
        Assert.Single(_logs.Named("TlsCertificateReloaded"));
    }

    [Fact]
    public void CheckFiles_GarbageThenDeletedThenGood_EachBrokenStateLoggedOnce()
    {
        var source = Pair("default", TestPki.Server("default.test"));
        using var tls = Create(new TlsOptions { Certificate = source });
        var original = tls.GetServerOptions(null);

        File.WriteAllText(source.Path, "-----BEGIN CERTIFICATE-----\ntruncated");
        AdvanceOnePoll();
        AdvanceOnePoll();
        File.Delete(source.Path);
        AdvanceOnePoll();
        AdvanceOnePoll();
        Assert.Same(original, tls.GetServerOptions(null));
        Assert.Equal(
            [$"{source.Path} contains no PEM certificate", $"file not found ({source.Path})"],
            _logs.Named("TlsCertificateReloadFailed").Select(e => e["Reason"]));
        Assert.All(_logs.Named("TlsCertificateReloadFailed"), e => Assert.Equal(source.Path, e["File"]));

        var replacement = TestPki.Server("default.test", variant: 4);
        _root.WritePemPair("default", replacement);
        AdvanceOnePoll();
        Assert.Equal(replacement.Thumbprint, tls.GetCertificate(null).Thumbprint);
    }

    [Fact]
    public void CheckFiles_BrokenThenRestored_NextBreakageLoggedAgain()
    {
        var source = Pair("default", TestPki.Server("default.test"));
        using var tls = Create(new TlsOptions { Certificate = source });
        var good = File.ReadAllBytes(source.Path);
        File.WriteAllText(source.Path, "garbage");
        AdvanceOnePoll();
        File.WriteAllBytes(source.Path, good);
        AdvanceOnePoll();
        File.WriteAllText(source.Path, "garbage");
        AdvanceOnePoll();
        Assert.Equal(2, _logs.Named("TlsCertificateReloadFailed").Count());
        Assert.Empty(_logs.Named("TlsCertificateReloaded"));
    }

    [Fact]
    public void CheckFiles_SniCertificateReplaced_OnlyThatNameChanges()
    {
        using var tls = CreateWithSni();
        var defaultOptions = tls.GetServerOptions(null);
        var replacement = TestPki.Server("a.example.com", variant: 1);
        _root.WritePemPair("a", replacement);
        AdvanceOnePoll();
        Assert.Equal(replacement.Thumbprint, tls.GetCertificate("a.example.com").Thumbprint);
        Assert.Same(defaultOptions, tls.GetServerOptions(null));
        Assert.Equal(_root.Full("a.pem"), Assert.Single(_logs.Named("TlsCertificateReloaded"))["File"]);
    }

    [Fact]
    public void CheckFiles_ClientCertificateAuthorityReplaced_NewTrustForNewHandshakes()
    {
        var ca = _root.Write("ca.pem", TestPki.Ca.CertificatePem);
        using var tls = Create(new TlsOptions
        {
            Certificate = Pair("default", TestPki.Server("default.test")),
            ClientCertificateMode = ClientCertificateMode.RequireCertificate,
            ClientCertificateAuthority = ca,
        });
        _root.Write("ca.pem", "garbage");
        AdvanceOnePoll();
        AdvanceOnePoll();
        Assert.Equal(TestPki.Ca.Thumbprint, Assert.Single(tls.GetServerOptions(null).CertificateChainPolicy!.CustomTrustStore).Thumbprint);
        var failed = Assert.Single(_logs.Named("TlsClientAuthorityReloadFailed"));
        Assert.Equal(LogLevel.Error, failed.Level);
        Assert.Equal(ca, failed["File"]);

        _root.Write("ca.pem", TestPki.Ca.CertificatePem + TestPki.OtherCa.CertificatePem);
        AdvanceOnePoll();
        Assert.Equal(
            new[] { TestPki.Ca.Thumbprint, TestPki.OtherCa.Thumbprint }.Order(),
            tls.GetServerOptions(null).CertificateChainPolicy!.CustomTrustStore.Select(c => c.Thumbprint).Order());
        Assert.Equal(2, Assert.Single(_logs.Named("TlsClientAuthorityReloaded"))["Count"]);
    }

    [Fact]
    public void Dispose_StopsWatching()
    {
        var source = Pair("default", TestPki.Server("default.test"));
        var tls = Create(new TlsOptions { Certificate = source });
        tls.Dispose();
        _root.WritePemPair("default", TestPki.Server("default.test", variant: 5));
        AdvanceOnePoll();
        Assert.Equal(TestPki.Server("default.test").Thumbprint, tls.GetCertificate(null).Thumbprint);
    }

    private static void WriteVersion(string secret, string version, TestCertificate certificate)
    {
        var directory = Directory.CreateDirectory(Path.Combine(secret, version)).FullName;
        File.WriteAllText(Path.Combine(directory, "tls.crt"), certificate.CertificatePem);
        File.WriteAllText(Path.Combine(directory, "tls.key"), certificate.KeyPem);
    }

    /// <summary>rename(2), as kubelet swaps <c>..data</c>: File.Move refuses a link to a directory.</summary>
    private static void Rename(string from, string to)
    {
        if (NativeMethods.rename(from, to) != 0)
        {
            throw new IOException($"rename failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private static class NativeMethods
    {
        [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
#pragma warning disable SYSLIB1054, CA2101 // A test helper: no source-generated marshalling (it would need unsafe code).
        public static extern int rename(string oldpath, string newpath);
#pragma warning restore SYSLIB1054, CA2101
    }
}

/// <summary>A test that needs Unix (symbolic links without privileges, rename over a link).</summary>
public sealed class UnixFactAttribute : FactAttribute
{
    public UnixFactAttribute()
    {
        if (OperatingSystem.IsWindows())
        {
            Skip = "Unix only";
        }
    }
}

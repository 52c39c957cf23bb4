using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KestrelTcp.Tests.Tls;

/// <summary>A certificate made by the tests, with the key it was made with (never a committed key).</summary>
public sealed record TestCertificate(X509Certificate2 Certificate, AsymmetricAlgorithm Key)
{
    public string Subject => Certificate.Subject;

    public string Thumbprint => Certificate.Thumbprint;

    /// <summary>The certificate and its key, through PKCS#12: SslStream on Linux wants a key it can export, not an ephemeral one.</summary>
    public X509Certificate2 WithKey()
    {
        using var combined = Key is RSA rsa ? Certificate.CopyWithPrivateKey(rsa) : Certificate.CopyWithPrivateKey((ECDsa)Key);
        return X509CertificateLoader.LoadPkcs12(combined.Export(X509ContentType.Pfx), password: null, X509KeyStorageFlags.Exportable);
    }

    public string CertificatePem => Certificate.ExportCertificatePem() + "\n";

    public string KeyPem => Key is RSA rsa ? rsa.ExportPkcs8PrivateKeyPem() + "\n" : ((ECDsa)Key).ExportPkcs8PrivateKeyPem() + "\n";

    public string EncryptedKeyPem(string password)
    {
        var pbe = new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 1000);
        return (Key is RSA rsa ? rsa.ExportEncryptedPkcs8PrivateKeyPem(password, pbe) : ((ECDsa)Key).ExportEncryptedPkcs8PrivateKeyPem(password, pbe)) + "\n";
    }

    public byte[] Pfx(string? password = null)
    {
        using var withKey = WithKey();
        return withKey.Export(X509ContentType.Pfx, password);
    }
}

/// <summary>
/// A small PKI made in-process for the TLS tests: a root CA, an intermediate CA under it that issues
/// server certificates, client certificates from the root and from an unrelated CA. Made once per
/// test run (ECDSA P-256: milliseconds), written to each test's own temporary directory.
/// </summary>
public static class TestPki
{
    private static readonly Lazy<TestCertificate> LazyCa = new(() => CreateCa("CN=KestrelTcp Test Root CA, O=KestrelTcp Tests", issuer: null));
    private static readonly Lazy<TestCertificate> LazyIntermediate = new(() => CreateCa("CN=KestrelTcp Test Intermediate CA, O=KestrelTcp Tests", Ca));
    private static readonly Lazy<TestCertificate> LazyOtherCa = new(() => CreateCa("CN=Unrelated Test CA, O=Elsewhere", issuer: null));
    private static readonly Lazy<TestCertificate> LazyAlice = new(() => CreateClient("CN=client-alice, O=KestrelTcp Tests", Ca));
    private static readonly Lazy<TestCertificate> LazyMallory = new(() => CreateClient("CN=client-mallory, O=Elsewhere", OtherCa));
    private static readonly ConcurrentDictionary<string, TestCertificate> Servers = new();

    public static TestCertificate Ca => LazyCa.Value;

    public static TestCertificate Intermediate => LazyIntermediate.Value;

    public static TestCertificate OtherCa => LazyOtherCa.Value;

    /// <summary>A client certificate issued by <see cref="Ca"/>.</summary>
    public static TestCertificate Alice => LazyAlice.Value;

    /// <summary>A client certificate issued by <see cref="OtherCa"/>.</summary>
    public static TestCertificate Mallory => LazyMallory.Value;

    /// <summary>A server certificate for <paramref name="name"/> (CN and DNS SAN, plus 127.0.0.1), issued by <see cref="Intermediate"/>; <paramref name="variant"/> makes another one for the same name.</summary>
    public static TestCertificate Server(string name, int variant = 0) =>
        Servers.GetOrAdd($"{name}#{variant}", _ => CreateServer(name, Intermediate));

    /// <summary>A fresh server certificate every call.</summary>
    public static TestCertificate CreateServer(string name, TestCertificate issuer, bool rsa = false)
    {
        AsymmetricAlgorithm key = rsa ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = rsa
            ? new CertificateRequest($"CN={name}", (RSA)key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest($"CN={name}", (ECDsa)key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        return Issue(request, key, issuer);
    }

    private static TestCertificate CreateClient(string subject, TestCertificate issuer)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        return Issue(request, key, issuer);
    }

    private static TestCertificate CreateCa(string subject, TestCertificate? issuer)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        if (issuer is null)
        {
            return new TestCertificate(request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1)), key);
        }

        return Issue(request, key, issuer);
    }

    private static TestCertificate Issue(CertificateRequest request, AsymmetricAlgorithm key, TestCertificate issuer)
    {
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer.Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var notBefore = DateTimeOffset.UtcNow.AddDays(-1);
        var notAfter = DateTimeOffset.UtcNow.AddDays(30);
        var generator = issuer.Key is RSA rsa
            ? X509SignatureGenerator.CreateForRSA(rsa, RSASignaturePadding.Pkcs1)
            : X509SignatureGenerator.CreateForECDsa((ECDsa)issuer.Key);
        var certificate = request.Create(issuer.Certificate.SubjectName, generator, notBefore, notAfter, serial);
        return new TestCertificate(certificate, key);
    }
}

/// <summary>A temporary directory of one test, the content root of its configuration; deleted afterwards.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("kestreltcp-tls-").FullName;
    }

    public string Path { get; }

    public string Full(string relative) => System.IO.Path.GetFullPath(relative, Path);

    public string Write(string relative, string text) => Write(relative, System.Text.Encoding.ASCII.GetBytes(text));

    public string Write(string relative, byte[] bytes)
    {
        var full = Full(relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, bytes);
        return full;
    }

    /// <summary>Writes <paramref name="certificate"/> as <c>{name}.pem</c> (with <paramref name="chain"/> after it) and its key as <c>{name}.key</c>.</summary>
    public (string Certificate, string Key) WritePemPair(string name, TestCertificate certificate, params TestCertificate[] chain)
    {
        var pem = certificate.CertificatePem + string.Concat(chain.Select(c => c.CertificatePem));
        return (Write($"{name}.pem", pem), Write($"{name}.key", certificate.KeyPem));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

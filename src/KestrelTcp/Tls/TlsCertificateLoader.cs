using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace KestrelTcp.Tls;

/// <summary>What is wrong with a certificate: the key of <see cref="CertificateSource"/> to blame (<c>Path</c>, <c>KeyPath</c> or <c>Password</c>), the file, and why.</summary>
internal readonly record struct CertificateProblem(string Key, string File, string Reason);

/// <summary>The bytes of a certificate's files as read in one go, so that what is compared is what is loaded.</summary>
internal sealed record CertificateFileContents(byte[] Certificate, byte[]? Key)
{
    public bool SameAs(CertificateFileContents? other) =>
        other is not null
        && Certificate.AsSpan().SequenceEqual(other.Certificate)
        && (Key is null ? other.Key is null : other.Key is not null && Key.AsSpan().SequenceEqual(other.Key));
}

/// <summary>A leaf certificate with its private key, and the intermediates that came with it.</summary>
internal sealed record LoadedCertificate(X509Certificate2 Leaf, X509Certificate2Collection Intermediates) : IDisposable
{
    public void Dispose()
    {
        Leaf.Dispose();
        foreach (var certificate in Intermediates)
        {
            certificate.Dispose();
        }
    }
}

/// <summary>
/// Loads certificates, keys and client certificate authorities from files, turning every way they can
/// be wrong into a sentence instead of an exception: the start-up check and the rotation share it.
/// </summary>
internal static class TlsCertificateLoader
{
    /// <summary>Certificate and key files are a few kilobytes; a path to anything bigger (a log, <c>/dev/zero</c>) is a mistake.</summary>
    internal const int MaxFileSize = 1024 * 1024;

    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    private const string RsaAlgorithm = "1.2.840.113549.1.1.1";
    private const string EcAlgorithm = "1.2.840.10045.2.1";
    private const int ErrorInvalidPassword = unchecked((int)0x80070056);

    /// <summary>Reads the files of <paramref name="source"/> and loads the certificate.</summary>
    public static bool TryLoad(CertificateSource source, [NotNullWhen(true)] out LoadedCertificate? loaded, out CertificateProblem problem)
    {
        loaded = null;
        return TryRead(source, out var contents, out problem) && TryLoad(source, contents, out loaded, out problem);
    }

    /// <summary>Reads the certificate file and, when there is one, the key file.</summary>
    public static bool TryRead(CertificateSource source, [NotNullWhen(true)] out CertificateFileContents? contents, out CertificateProblem problem)
    {
        ArgumentNullException.ThrowIfNull(source);
        contents = null;
        if (!TryReadFile(source.Path, out var certificate, out var reason))
        {
            problem = new("Path", source.Path, reason);
            return false;
        }

        byte[]? key = null;
        if (source.KeyPath is not null && !TryReadFile(source.KeyPath, out key, out reason))
        {
            problem = new("KeyPath", source.KeyPath, reason);
            return false;
        }

        contents = new CertificateFileContents(certificate, key);
        problem = default;
        return true;
    }

    /// <summary>Loads the certificate of <paramref name="source"/> from <paramref name="contents"/>, its files as read.</summary>
    public static bool TryLoad(CertificateSource source, CertificateFileContents contents, [NotNullWhen(true)] out LoadedCertificate? loaded, out CertificateProblem problem)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(contents);
        loaded = null;
        var certificateText = IsPem(contents.Certificate) ? Encoding.UTF8.GetString(contents.Certificate) : null;
        if (contents.Key is not null)
        {
            if (certificateText is null)
            {
                problem = new("Path", source.Path, $"{source.Path} contains no PEM certificate (with a KeyPath, Path is a PEM file)");
                return false;
            }

            var keyText = IsPem(contents.Key) ? Encoding.UTF8.GetString(contents.Key) : "";
            if (!TryLoadPem(source, certificateText, keyText, source.KeyPath!, "KeyPath", out loaded, out problem))
            {
                return false;
            }
        }
        else if (certificateText is not null)
        {
            // A PEM file with its key inside: certificate and key problems are both the Path's.
            if (!TryLoadPem(source, certificateText, certificateText, source.Path, "Path", out loaded, out problem))
            {
                return false;
            }
        }
        else if (!TryLoadPkcs12(source, contents.Certificate, out loaded, out problem))
        {
            return false;
        }

        if (!IsForServerAuthentication(loaded.Leaf))
        {
            loaded.Dispose();
            loaded = null;
            problem = new("Path", source.Path, $"the certificate in {source.Path} is not for servers (its extended key usage lacks serverAuth, {ServerAuthentication})");
            return false;
        }

        problem = default;
        return true;
    }

    /// <summary>Reads and loads a client certificate authority file: one or more PEM certificates, or one DER certificate.</summary>
    public static bool TryLoadAuthority(string path, [NotNullWhen(true)] out X509Certificate2Collection? roots, out string reason)
    {
        roots = null;
        return TryReadFile(path, out var bytes, out reason) && TryLoadAuthority(path, bytes, out roots, out reason);
    }

    /// <summary>Loads a client certificate authority from the bytes of its file.</summary>
    public static bool TryLoadAuthority(string path, byte[] bytes, [NotNullWhen(true)] out X509Certificate2Collection? roots, out string reason)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        roots = null;
        var collection = new X509Certificate2Collection();
        try
        {
            if (IsPem(bytes))
            {
                collection.ImportFromPem(Encoding.UTF8.GetString(bytes));
            }
            else
            {
                collection.Add(X509CertificateLoader.LoadCertificate(bytes));
            }
        }
        catch (CryptographicException)
        {
            collection.Clear();
        }

        if (collection.Count == 0)
        {
            reason = $"{path} contains no certificate (expected PEM or DER)";
            return false;
        }

        roots = collection;
        reason = "";
        return true;
    }

    /// <summary>Reads a whole file of at most <see cref="MaxFileSize"/> bytes, following symbolic links.</summary>
    public static bool TryReadFile(string path, [NotNullWhen(true)] out byte[]? bytes, out string reason)
    {
        bytes = null;
        try
        {
            if (Directory.Exists(path))
            {
                reason = $"{path} is a directory, not a file";
                return false;
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
            if (stream.CanSeek && stream.Length > MaxFileSize)
            {
                reason = TooLarge(path);
                return false;
            }

            // Read every poll: sized to the file (one byte more, to see it grow meanwhile), from the pool.
            var buffer = ArrayPool<byte>.Shared.Rent(stream.CanSeek ? (int)stream.Length + 1 : 16 * 1024);
            try
            {
                var total = 0;
                int read;
                while ((read = stream.Read(buffer, total, buffer.Length - total)) > 0)
                {
                    total += read;
                    if (total > MaxFileSize)
                    {
                        reason = TooLarge(path);
                        return false;
                    }

                    if (total == buffer.Length)
                    {
                        var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, MaxFileSize + 1));
                        buffer.AsSpan(0, total).CopyTo(larger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = larger;
                    }
                }

                bytes = buffer[..total];
                reason = "";
                return true;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            reason = $"file not found ({path})";
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            reason = $"cannot read {path} ({e.Message})";
            return false;
        }
    }

    private static string TooLarge(string path) => $"{path} is larger than {MaxFileSize / 1024} KiB: not a certificate or key file";

    private static bool TryLoadPem(CertificateSource source, string certificateText, string keyText, string keyFile, string keyKey,
        [NotNullWhen(true)] out LoadedCertificate? loaded, out CertificateProblem problem)
    {
        loaded = null;
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(certificateText);
        }
        catch (CryptographicException)
        {
            problem = new("Path", source.Path, $"{source.Path} contains a malformed PEM certificate");
            return false;
        }

        if (certificates.Count == 0)
        {
            problem = new("Path", source.Path, $"{source.Path} contains no PEM certificate");
            return false;
        }

        var leaf = certificates[0];
        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < certificates.Count; i++)
        {
            intermediates.Add(certificates[i]);
        }

        var withKey = CombineWithKey(source, leaf, keyText, keyFile, keyKey, out problem);
        leaf.Dispose();
        if (withKey is null)
        {
            foreach (var intermediate in intermediates)
            {
                intermediate.Dispose();
            }

            return false;
        }

        if (OperatingSystem.IsWindows())
        {
            // SChannel cannot use an ephemeral key from PEM: persist it through PKCS#12, as Kestrel does.
            using var ephemeral = withKey;
            withKey = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), password: null);
        }

        loaded = new LoadedCertificate(withKey, intermediates);
        return true;
    }

    private static X509Certificate2? CombineWithKey(CertificateSource source, X509Certificate2 leaf, string keyText, string keyFile, string keyKey, out CertificateProblem problem)
    {
        var (hasKey, encrypted) = FindPrivateKey(keyText);
        if (!hasKey)
        {
            problem = keyKey == "Path"
                ? new("Path", source.Path, $"{source.Path} has no private key (give KeyPath, or use a .pfx file that holds the key)")
                : new("KeyPath", keyFile, $"{keyFile} contains no PEM private key");
            return null;
        }

        if (encrypted && source.Password is null)
        {
            problem = new("Password", keyFile, $"missing: the private key in {keyFile} is encrypted");
            return null;
        }

        var algorithm = leaf.GetKeyAlgorithm();
        if (algorithm is not (RsaAlgorithm or EcAlgorithm))
        {
            problem = new("Path", source.Path, $"the certificate in {source.Path} has a key type ({algorithm}) that is not loaded from PEM; use RSA or ECDSA, or a .pfx file");
            return null;
        }

        using AsymmetricAlgorithm? key = ImportKey(algorithm, keyText, encrypted ? source.Password : null, out var failure);
        if (key is null)
        {
            if (encrypted && failure is CryptographicException)
            {
                problem = new("Password", keyFile, $"wrong password for the private key in {keyFile}");
                return null;
            }

            // A key of the other type is a key for another certificate.
            var other = algorithm == RsaAlgorithm ? EcAlgorithm : RsaAlgorithm;
            using var otherKey = ImportKey(other, keyText, encrypted ? source.Password : null, out _);
            problem = otherKey is not null
                ? new(keyKey, keyFile, MismatchReason(source, keyFile))
                : new(keyKey, keyFile, $"{keyFile} contains no readable private key");
            return null;
        }

        try
        {
            var combined = key is RSA rsa ? leaf.CopyWithPrivateKey(rsa) : leaf.CopyWithPrivateKey((ECDsa)key);
            problem = default;
            return combined;
        }
        catch (ArgumentException)
        {
            problem = new(keyKey, keyFile, MismatchReason(source, keyFile));
            return null;
        }
        catch (CryptographicException e)
        {
            problem = new(keyKey, keyFile, $"the private key in {keyFile} cannot be used ({e.Message})");
            return null;
        }
    }

    private static string MismatchReason(CertificateSource source, string keyFile) =>
        keyFile == source.Path
            ? $"the private key in {keyFile} does not match its certificate"
            : $"the private key in {keyFile} does not match the certificate in {source.Path}";

    private static AsymmetricAlgorithm? ImportKey(string algorithm, string keyText, string? password, out Exception? failure)
    {
        AsymmetricAlgorithm key = algorithm == RsaAlgorithm ? RSA.Create() : ECDsa.Create();
        try
        {
            if (password is null)
            {
                key.ImportFromPem(keyText);
            }
            else
            {
                key.ImportFromEncryptedPem(keyText, password);
            }

            failure = null;
            return key;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            key.Dispose();
            failure = e;
            return null;
        }
    }

    private static bool TryLoadPkcs12(CertificateSource source, byte[] bytes, [NotNullWhen(true)] out LoadedCertificate? loaded, out CertificateProblem problem)
    {
        loaded = null;
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(bytes, source.Password);
        }
        catch (CryptographicException e) when (e.HResult == ErrorInvalidPassword)
        {
            problem = source.Password is null
                ? new("Password", source.Path, $"missing: {source.Path} is password-protected")
                : new("Password", source.Path, $"wrong password for {source.Path}");
            return false;
        }
        catch (CryptographicException)
        {
            problem = new("Path", source.Path, $"{source.Path} is neither a PEM certificate nor a PKCS#12 (.pfx) file");
            return false;
        }

        X509Certificate2? leaf = null;
        var intermediates = new X509Certificate2Collection();
        foreach (var certificate in all)
        {
            if (leaf is null && certificate.HasPrivateKey)
            {
                leaf = certificate;
            }
            else
            {
                intermediates.Add(certificate);
            }
        }

        if (leaf is null)
        {
            foreach (var certificate in all)
            {
                certificate.Dispose();
            }

            problem = new("Path", source.Path, $"{source.Path} has no private key (give KeyPath, or use a .pfx file that holds the key)");
            return false;
        }

        loaded = new LoadedCertificate(leaf, intermediates);
        problem = default;
        return true;
    }

    private static (bool Found, bool Encrypted) FindPrivateKey(string text)
    {
        var rest = text.AsSpan();
        var found = false;
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label];
            if (label.SequenceEqual("ENCRYPTED PRIVATE KEY"))
            {
                return (true, true);
            }

            found |= label.EndsWith("PRIVATE KEY", StringComparison.Ordinal);
            rest = rest[fields.Location.End..];
        }

        return (found, false);
    }

    private static bool IsPem(byte[] bytes) => bytes.AsSpan().IndexOf("-----BEGIN "u8) >= 0;

    private static bool IsForServerAuthentication(X509Certificate2 certificate)
    {
        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509EnhancedKeyUsageExtension { EnhancedKeyUsages.Count: > 0 } usage)
            {
                foreach (var oid in usage.EnhancedKeyUsages)
                {
                    if (oid.Value == ServerAuthentication)
                    {
                        return true;
                    }
                }

                return false;
            }
        }

        return true;
    }
}

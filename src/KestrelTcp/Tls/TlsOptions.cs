using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using static KestrelTcp.Configuration.ConfigurationReading;

namespace KestrelTcp.Tls;

/// <summary>
/// Where a certificate and its private key are on disk (<c>…:Certificate</c>): a PEM certificate with
/// <see cref="KeyPath"/>, a PEM file holding both, or a PKCS#12 (<c>.pfx</c>) file.
/// </summary>
/// <param name="Path">
/// The certificate file, absolute (<see cref="TlsOptions"/>' reader resolves a relative path against the
/// content root). A PEM file may hold intermediate certificates after the leaf; they are sent to clients.
/// </param>
/// <param name="KeyPath">The PEM private key of a PEM certificate; null when <see cref="Path"/> holds the key itself.</param>
/// <param name="Password">The password of the <c>.pfx</c> file, or of an encrypted PEM key; null when there is none.</param>
public sealed record CertificateSource(string Path, string? KeyPath = null, string? Password = null)
{
    /// <summary>Keeps the password out of logs and exception messages.</summary>
    public override string ToString() => $"{nameof(CertificateSource)} {{ Path = {Path}, KeyPath = {KeyPath}, Password = {(Password is null ? "" : "***")} }}";
}

/// <summary>
/// The <c>Tls</c> section of a listener (<c>KestrelTcp:Listeners:{name}:Tls</c>, or <c>KestrelTcp:Http:Tls</c>
/// for the management port). Names follow Kestrel's own endpoint configuration.
/// </summary>
public sealed record TlsOptions
{
    /// <summary>The longest handshake timeout: what <see cref="CancellationTokenSource.CancelAfter(TimeSpan)"/> accepts, about 24.8 days.</summary>
    internal static readonly TimeSpan MaxHandshakeTimeout = TimeSpan.FromMilliseconds(int.MaxValue);

    private const string SupportedProtocols = "Tls12 or Tls13";

    /// <summary>The certificate for clients that ask (SNI) for no name, or for a name not in <see cref="Sni"/>. Required.</summary>
    public required CertificateSource Certificate { get; init; }

    /// <summary>
    /// Certificates by the host name a client asks for (SNI): an exact name (compared case-insensitively),
    /// or <c>*.example.org</c>, which matches exactly one label in front of <c>example.org</c>. An exact name
    /// wins over a wildcard. Default empty: every client gets <see cref="Certificate"/>.
    /// </summary>
    public IReadOnlyDictionary<string, CertificateSource> Sni { get; init; } = new Dictionary<string, CertificateSource>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// The TLS versions offered. Default <see cref="SslProtocols.None"/>: the operating system chooses
    /// (TLS 1.2 and 1.3 on current systems), so a system update that retires a version retires it here too.
    /// Only <c>Tls12</c> and <c>Tls13</c> can be configured: TLS 1.0 and 1.1 are deprecated (RFC 8996).
    /// </summary>
    public SslProtocols SslProtocols { get; init; } = SslProtocols.None;

    /// <summary>
    /// Whether clients are asked for a certificate, as in Kestrel. Default <see cref="ClientCertificateMode.NoCertificate"/>:
    /// most TCP services authenticate in their own protocol, if at all. <see cref="ClientCertificateMode.DelayCertificate"/>
    /// is HTTP-only (renegotiation on request) and not accepted.
    /// </summary>
    public ClientCertificateMode ClientCertificateMode { get; init; } = ClientCertificateMode.NoCertificate;

    /// <summary>
    /// A PEM (or DER) file with the root certificate(s) that client certificates must chain to, absolute.
    /// Default null: the system's trusted roots. Without a <see cref="ClientCertificateMode"/> that asks for
    /// certificates it has no effect.
    /// </summary>
    public string? ClientCertificateAuthority { get; init; }

    /// <summary>
    /// Whether client certificates are checked for revocation (online, CRL/OCSP). Default false: the check
    /// needs the network at handshake time and a private CA often publishes no revocation lists.
    /// </summary>
    public bool CheckCertificateRevocation { get; init; }

    /// <summary>
    /// The ALPN protocol names offered, in order of preference. Default empty: no ALPN at all (a raw TCP
    /// service has no HTTP to offer). When not empty, a client whose ALPN offer shares no name with
    /// it fails the handshake; a client that offers none is served.
    /// </summary>
    public IReadOnlyList<string> ApplicationProtocols { get; init; } = [];

    /// <summary>How long a client has to complete the handshake. Default 10 seconds, Kestrel's default.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Reads a <c>Tls</c> section, resolving file paths against <paramref name="contentRoot"/>, and loads
    /// every certificate, key and authority file, so that each problem becomes a message naming its full
    /// key (<c>KestrelTcp:Listeners:echo-tls:Tls:Certificate:Path: file not found (/app/certs/server.pem)</c>).
    /// Reads on after a problem; every one is added to <paramref name="problems"/>.
    /// </summary>
    /// <returns>Null when the section does not exist: the listener has no TLS.</returns>
    internal static TlsOptions? Read(IConfigurationSection tlsSection, string contentRoot, ICollection<string> problems)
    {
        ArgumentNullException.ThrowIfNull(tlsSection);
        ArgumentNullException.ThrowIfNull(problems);
        if (!tlsSection.Exists())
        {
            return null;
        }

        var certificate = ReadCertificate(tlsSection.GetSection("Certificate"), contentRoot, problems);

        var sni = new Dictionary<string, CertificateSource>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in tlsSection.GetSection("Sni").GetChildren())
        {
            if (!IsSniName(entry.Key))
            {
                problems.Add($"{entry.Path}: '{entry.Key}' is not a host name or a *. wildcard (e.g. a.example.com, *.example.org)");
            }

            sni[entry.Key] = ReadCertificate(entry.GetSection("Certificate"), contentRoot, problems);
        }

        // In the order of the keys in the documented section, so that the problems are listed in that order.
        var sslProtocols = ReadSslProtocols(tlsSection.GetSection("SslProtocols"), problems);
        var clientCertificateMode = ReadEnum(tlsSection.GetSection("ClientCertificateMode"), ClientCertificateMode.NoCertificate, "a client certificate mode", problems,
            ClientCertificateMode.NoCertificate, ClientCertificateMode.AllowCertificate, ClientCertificateMode.RequireCertificate);
        var authority = ReadString(tlsSection, "ClientCertificateAuthority") is { } authorityText ? Path.GetFullPath(authorityText, contentRoot) : null;
        if (authority is not null)
        {
            if (TlsCertificateLoader.TryLoadAuthority(authority, out var roots, out var authorityProblem))
            {
                DisposeAll(roots);
            }
            else
            {
                problems.Add($"{tlsSection.GetSection("ClientCertificateAuthority").Path}: {authorityProblem}");
            }
        }

        var checkRevocation = ReadBool(tlsSection, "CheckCertificateRevocation", false, problems);
        var applicationProtocols = ReadApplicationProtocols(tlsSection.GetSection("ApplicationProtocols"), problems);
        var handshakeTimeout = ReadTimeSpan(tlsSection, "HandshakeTimeout", TimeSpan.FromSeconds(10), problems);
        var timeoutSection = tlsSection.GetSection("HandshakeTimeout");
        if (handshakeTimeout == TimeSpan.Zero)
        {
            problems.Add($"{timeoutSection.Path}: must be more than 0 (e.g. 00:00:10)");
            handshakeTimeout = TimeSpan.FromSeconds(10);
        }
        else if (handshakeTimeout > MaxHandshakeTimeout)
        {
            problems.Add($"{timeoutSection.Path}: {timeoutSection.Value} is too long (at most {MaxHandshakeTimeout:c})");
            handshakeTimeout = TimeSpan.FromSeconds(10);
        }

        return new TlsOptions
        {
            Certificate = certificate,
            Sni = sni,
            SslProtocols = sslProtocols,
            ClientCertificateMode = clientCertificateMode,
            ClientCertificateAuthority = authority,
            CheckCertificateRevocation = checkRevocation,
            ApplicationProtocols = applicationProtocols,
            HandshakeTimeout = handshakeTimeout,
        };
    }

    /// <summary>
    /// True for a host name (dot-separated labels of letters, digits, <c>-</c> and <c>_</c>, 1-63 characters
    /// each, not starting or ending with <c>-</c>, at most 253 characters) or <c>*.</c> followed by one.
    /// International names are written as their <c>xn--</c> form, as clients send them.
    /// </summary>
    internal static bool IsSniName(string name)
    {
        var host = name.StartsWith("*.", StringComparison.Ordinal) ? name.AsSpan(2) : name.AsSpan();
        if (host.Length is 0 or > 253)
        {
            return false;
        }

        foreach (var range in host.Split('.'))
        {
            var label = host[range];
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }

            foreach (var c in label)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_')
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static CertificateSource ReadCertificate(IConfigurationSection section, string contentRoot, ICollection<string> problems)
    {
        var pathText = ReadString(section, "Path");
        var keyPathText = ReadString(section, "KeyPath");
        var password = section.GetSection("Password").Value;
        if (pathText is null)
        {
            problems.Add($"{section.Path}:Path: missing (a PEM certificate with its KeyPath, or a .pfx file with its Password)");
            return new CertificateSource("", null, password);
        }

        var source = new CertificateSource(
            Path.GetFullPath(pathText, contentRoot),
            keyPathText is null ? null : Path.GetFullPath(keyPathText, contentRoot),
            password);
        if (!TlsCertificateLoader.TryLoad(source, out var loaded, out var problem))
        {
            problems.Add($"{section.Path}:{problem.Key}: {problem.Reason}");
        }
        else
        {
            loaded.Dispose();
        }

        return source;
    }

    private static SslProtocols ReadSslProtocols(IConfigurationSection section, ICollection<string> problems)
    {
        // An array ("SslProtocols": [ "Tls12", "Tls13" ]) as in Kestrel's configuration; a single value
        // (KestrelTcp__Listeners__x__Tls__SslProtocols=Tls13) is taken as one name.
        var entries = section.GetChildren().ToList();
        if (entries.Count == 0 && section.Value is { Length: > 0 })
        {
            entries = [section];
        }

        var protocols = SslProtocols.None;
        foreach (var entry in entries)
        {
            var text = entry.Value ?? "";
            if (string.Equals(text, "Tls12", StringComparison.OrdinalIgnoreCase))
            {
                protocols |= SslProtocols.Tls12;
            }
            else if (string.Equals(text, "Tls13", StringComparison.OrdinalIgnoreCase))
            {
                protocols |= SslProtocols.Tls13;
            }
            else
            {
                problems.Add($"{entry.Path}: '{text}' is not a supported TLS version ({SupportedProtocols}; TLS 1.0 and 1.1 are deprecated)");
            }
        }

        return protocols;
    }

    private static List<string> ReadApplicationProtocols(IConfigurationSection section, ICollection<string> problems)
    {
        var entries = section.GetChildren().ToList();
        if (entries.Count == 0 && section.Value is { Length: > 0 })
        {
            entries = [section];
        }

        var names = new List<string>();
        foreach (var entry in entries)
        {
            var text = entry.Value ?? "";
            var length = Encoding.UTF8.GetByteCount(text);
            if (length is 0 or > 255)
            {
                problems.Add($"{entry.Path}: '{text}' is not an ALPN protocol name (1-255 bytes, e.g. h2, http/1.1, imap)");
            }
            else if (!names.Contains(text, StringComparer.Ordinal))
            {
                names.Add(text);
            }
        }

        return names;
    }

    private static void DisposeAll(System.Security.Cryptography.X509Certificates.X509Certificate2Collection certificates)
    {
        foreach (var certificate in certificates)
        {
            certificate.Dispose();
        }
    }

    /// <summary>The configured names as ALPN protocols, for <see cref="SslServerAuthenticationOptions.ApplicationProtocols"/>.</summary>
    internal List<SslApplicationProtocol> GetSslApplicationProtocols() =>
        [.. ApplicationProtocols.Select(name => new SslApplicationProtocol(name))];
}

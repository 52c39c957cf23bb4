using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KestrelTcp.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace KestrelTcp.Tls;

/// <summary>
/// The TLS side of one listener at run time: a certificate per configured name, chosen by the name
/// the client asks for (SNI), and the <see cref="SslServerAuthenticationOptions"/> each handshake gets,
/// built once per certificate. Watches its files and swaps in a certificate that changed on disk.
/// </summary>
/// <remarks>
/// Rotation: every <see cref="PollInterval"/> the certificate, key and authority files are read and
/// compared by content with what was loaded. Comparing contents rather than watching for events or
/// modification times sees every kind of replacement: a Kubernetes secret volume swapping its
/// <c>..data</c> symbolic link, a rename over the file, a copy that keeps the timestamp. A change that
/// loads replaces the certificate for new handshakes at once; open connections keep theirs (their
/// <see cref="SslStream"/> holds its own reference). A change that does not load (the certificate
/// written before its key, a truncated file) keeps the previous certificate and is logged once at
/// Error until the files change again.
/// </remarks>
internal sealed class TlsListener : IDisposable
{
    /// <summary>
    /// How often the files are read: a new certificate is in use at most this long after both of its
    /// files are in place, well within the 10 s the contract promises, for the price of reading a few
    /// kilobytes.
    /// </summary>
    internal static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(2);

    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");
    private static readonly IdnMapping Idn = new();

    private readonly string _listener;
    private readonly ILogger _logger;
    private readonly CertificateSlot[] _slots;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _exact;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _wildcard;
    private readonly AuthoritySlot? _authority;
    private readonly RemoteCertificateValidationCallback? _validateClientCertificate;
    private readonly Lock _gate = new();
    private readonly ITimer _timer;
    private List<SslApplicationProtocol> _applicationProtocols;
    private int _checking;

    /// <summary>Loads every certificate of <paramref name="options"/> and starts watching their files.</summary>
    /// <exception cref="KestrelTcpConfigurationException">A certificate no longer loads (its files changed since the configuration was read).</exception>
    public TlsListener(TlsOptions options, string listenerName, ILogger logger, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(listenerName);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(time);
        Options = options;
        _listener = listenerName;
        _logger = logger;
        _applicationProtocols = options.GetSslApplicationProtocols();
        if (options.ClientCertificateMode != ClientCertificateMode.NoCertificate)
        {
            _validateClientCertificate = ValidateClientCertificate;
        }

        var problems = new List<string>();
        if (options.ClientCertificateAuthority is { } authorityPath)
        {
            if (TlsCertificateLoader.TryReadFile(authorityPath, out var bytes, out var reason)
                && TlsCertificateLoader.TryLoadAuthority(authorityPath, bytes, out var roots, out reason))
            {
                _authority = new AuthoritySlot(authorityPath, bytes, roots);
            }
            else
            {
                problems.Add($"Listener {listenerName}: TLS ClientCertificateAuthority: {reason}");
            }
        }

        var slots = new List<CertificateSlot> { new("Certificate", options.Certificate) };
        var exact = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var wildcard = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, source) in options.Sni)
        {
            if (name.StartsWith("*.", StringComparison.Ordinal))
            {
                wildcard[name[2..]] = slots.Count;
            }
            else
            {
                exact[name] = slots.Count;
            }

            slots.Add(new CertificateSlot($"Sni:{name}", source));
        }

        foreach (var slot in slots)
        {
            if (TlsCertificateLoader.TryRead(slot.Source, out var contents, out var problem)
                && TlsCertificateLoader.TryLoad(slot.Source, contents, out var loaded, out problem)
                && TryCreateState(slot.Source, loaded, out var state, out problem))
            {
                slot.Loaded = contents;
                slot.State = state;
            }
            else
            {
                problems.Add($"Listener {listenerName}: TLS {slot.Name}:{problem.Key}: {problem.Reason}");
            }
        }

        if (problems.Count > 0)
        {
            throw new KestrelTcpConfigurationException(problems);
        }

        _slots = [.. slots];
        _exact = exact.GetAlternateLookup<ReadOnlySpan<char>>();
        _wildcard = wildcard.GetAlternateLookup<ReadOnlySpan<char>>();
        _timer = time.CreateTimer(static state => ((TlsListener)state!).CheckFiles(), this, PollInterval, PollInterval);
    }

    /// <summary>The options the listener was made from.</summary>
    public TlsOptions Options { get; }

    /// <summary>The listener's name, as its logs show it.</summary>
    public string ListenerName => _listener;

    /// <summary>
    /// The options for a handshake whose client asked for <paramref name="serverName"/> (null or empty
    /// without SNI). The same object for every handshake with the same certificate: nothing here or in
    /// <see cref="SslStream"/> writes to it (SslStream copies what it needs, and Kestrel fills in ALPN
    /// only when <see cref="SslServerAuthenticationOptions.ApplicationProtocols"/> is null, which it never is here).
    /// </summary>
    public SslServerAuthenticationOptions GetServerOptions(string? serverName) => _slots[SelectSlot(serverName)].State.Options;

    /// <summary>The certificate a client asking for <paramref name="serverName"/> gets now.</summary>
    public X509Certificate2 GetCertificate(string? serverName) => _slots[SelectSlot(serverName)].State.Context.TargetCertificate;

    /// <summary>
    /// For the HTTP management port: when no <see cref="TlsOptions.ApplicationProtocols"/> are configured,
    /// offer what Kestrel would (<c>h2</c> then <c>http/1.1</c>, as far as <paramref name="protocols"/> allow),
    /// so that HTTP/2 keeps working over TLS. Called while the endpoint is built, before any handshake.
    /// </summary>
    internal void UseHttpApplicationProtocols(HttpProtocols protocols)
    {
        if (Options.ApplicationProtocols.Count > 0)
        {
            return;
        }

        List<SslApplicationProtocol> alpn = [];
        if ((protocols & HttpProtocols.Http2) != 0)
        {
            alpn.Add(SslApplicationProtocol.Http2);
        }

        if ((protocols & HttpProtocols.Http1) != 0)
        {
            alpn.Add(SslApplicationProtocol.Http11);
        }

        lock (_gate)
        {
            _applicationProtocols = alpn;
            foreach (var slot in _slots)
            {
                slot.State = slot.State with { Options = BuildOptions(slot.State.Context) };
            }
        }
    }

    /// <summary>
    /// Reads the files once and takes in what changed; the timer calls it every <see cref="PollInterval"/>.
    /// Never throws; overlapping calls return at once.
    /// </summary>
    public void CheckFiles()
    {
        if (Interlocked.Exchange(ref _checking, 1) == 1)
        {
            return;
        }

        try
        {
            lock (_gate)
            {
                if (_authority is not null && CheckAuthority(_authority))
                {
                    foreach (var slot in _slots)
                    {
                        slot.State = slot.State with { Options = BuildOptions(slot.State.Context) };
                    }
                }

                foreach (var slot in _slots)
                {
                    CheckSlot(slot);
                }
            }
        }
        catch (Exception e)
        {
            TlsLog.FileCheckFailed(_logger, e, _listener);
        }
        finally
        {
            Volatile.Write(ref _checking, 0);
        }
    }

    /// <summary>Stops watching the files. Certificates in use stay usable: open connections hold them.</summary>
    public void Dispose() => _timer.Dispose();

    private int SelectSlot(string? serverName)
    {
        if (string.IsNullOrEmpty(serverName))
        {
            return 0;
        }

        var name = serverName.AsSpan();
        if (!Ascii.IsValid(name))
        {
            // SslStream hands over an international name decoded from its xn-- form; the configuration holds the xn-- form.
            try
            {
                name = Idn.GetAscii(serverName);
            }
            catch (ArgumentException)
            {
                return 0;
            }
        }

        if (_exact.TryGetValue(name, out var index))
        {
            return index;
        }

        // *.example.org stands for exactly one label: a.example.org, not example.org nor a.b.example.org.
        var dot = name.IndexOf('.');
        return dot > 0 && _wildcard.TryGetValue(name[(dot + 1)..], out index) ? index : 0;
    }

    private void CheckSlot(CertificateSlot slot)
    {
        if (!TlsCertificateLoader.TryRead(slot.Source, out var contents, out var problem))
        {
            ReportOnce(slot, problem.Reason, problem);
            return;
        }

        if (contents.SameAs(slot.Loaded))
        {
            // Back to what is in use (a change undone): the next failure is news again.
            slot.Failed = null;
            return;
        }

        if (slot.Failed is CertificateFileContents failed && contents.SameAs(failed))
        {
            return;
        }

        if (!TlsCertificateLoader.TryLoad(slot.Source, contents, out var loaded, out problem))
        {
            ReportOnce(slot, contents, problem);
            return;
        }

        if (!TryCreateState(slot.Source, loaded, out var state, out problem))
        {
            ReportOnce(slot, contents, problem);
            return;
        }

        slot.Loaded = contents;
        slot.Failed = null;
        slot.State = state;
        var certificate = loaded.Leaf;
        TlsLog.CertificateReloaded(_logger, _listener, slot.Source.Path, certificate.Subject, certificate.Thumbprint, certificate.NotAfter.ToUniversalTime());
    }

    private void ReportOnce(CertificateSlot slot, object failedState, CertificateProblem problem)
    {
        var same = failedState switch
        {
            CertificateFileContents contents => slot.Failed is CertificateFileContents previous && contents.SameAs(previous),
            _ => Equals(slot.Failed, failedState),
        };
        if (!same)
        {
            slot.Failed = failedState;
            TlsLog.CertificateReloadFailed(_logger, _listener, problem.File, problem.Reason);
        }
    }

    private bool CheckAuthority(AuthoritySlot authority)
    {
        if (!TlsCertificateLoader.TryReadFile(authority.Path, out var bytes, out var reason))
        {
            if (!Equals(authority.Failed, reason))
            {
                authority.Failed = reason;
                TlsLog.ClientAuthorityReloadFailed(_logger, _listener, authority.Path, reason);
            }

            return false;
        }

        if (bytes.AsSpan().SequenceEqual(authority.Loaded))
        {
            authority.Failed = null;
            return false;
        }

        if (authority.Failed is byte[] failed && bytes.AsSpan().SequenceEqual(failed))
        {
            return false;
        }

        if (!TlsCertificateLoader.TryLoadAuthority(authority.Path, bytes, out var roots, out reason))
        {
            authority.Failed = bytes;
            TlsLog.ClientAuthorityReloadFailed(_logger, _listener, authority.Path, reason);
            return false;
        }

        authority.Loaded = bytes;
        authority.Failed = null;
        authority.Roots = roots;
        TlsLog.ClientAuthorityReloaded(_logger, _listener, authority.Path, roots.Count);
        return true;
    }

    private bool TryCreateState(CertificateSource source, LoadedCertificate loaded,
        [NotNullWhen(true)] out SslServerCertificateState? state, out CertificateProblem problem)
    {
        try
        {
            // offline: the chain is built from the intermediates in the files, never fetched at handshake time.
            var context = SslStreamCertificateContext.Create(loaded.Leaf, loaded.Intermediates, offline: true);
            state = new SslServerCertificateState(context, BuildOptions(context));
            problem = default;
            return true;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException or NotSupportedException)
        {
            loaded.Dispose();
            state = null;
            problem = new CertificateProblem("Path", source.Path, $"the certificate in {source.Path} cannot be used ({e.Message})");
            return false;
        }
    }

    private SslServerAuthenticationOptions BuildOptions(SslStreamCertificateContext context)
    {
        var requestCertificate = Options.ClientCertificateMode != ClientCertificateMode.NoCertificate;
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            EnabledSslProtocols = Options.SslProtocols,
            // Never null: null would make Kestrel offer h2 and http/1.1 (and write to this shared object).
            ApplicationProtocols = _applicationProtocols,
            // No TCP service here needs it, and TLS 1.2 renegotiation started by a client costs the server.
            AllowRenegotiation = false,
            ClientCertificateRequired = requestCertificate,
            RemoteCertificateValidationCallback = _validateClientCertificate,
            CertificateRevocationCheckMode = Options.CheckCertificateRevocation ? X509RevocationMode.Online : X509RevocationMode.NoCheck,
            CertificateChainPolicy = requestCertificate ? BuildChainPolicy() : null,
        };
    }

    private X509ChainPolicy BuildChainPolicy()
    {
        var policy = new X509ChainPolicy
        {
            RevocationMode = Options.CheckCertificateRevocation ? X509RevocationMode.Online : X509RevocationMode.NoCheck,
            RevocationFlag = X509RevocationFlag.ExcludeRoot,
            // The client chooses what its certificate points at: no fetching intermediates from its URLs.
            DisableCertificateDownloads = true,
        };
        policy.ApplicationPolicy.Add(ClientAuthentication);
        if (_authority is not null)
        {
            policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            policy.CustomTrustStore.AddRange(_authority.Roots);
        }

        return policy;
    }

    /// <summary>
    /// <c>AllowCertificate</c> serves a client without a certificate; a client that sends one must chain
    /// to <see cref="TlsOptions.ClientCertificateAuthority"/> (or the system roots) in both modes.
    /// </summary>
    private bool ValidateClientCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        certificate is null
            ? Options.ClientCertificateMode == ClientCertificateMode.AllowCertificate
            : errors == SslPolicyErrors.None;

    private sealed record SslServerCertificateState(SslStreamCertificateContext Context, SslServerAuthenticationOptions Options);

    /// <summary>One configured certificate: what is in use, and what its files held when it was loaded.</summary>
    private sealed class CertificateSlot(string name, CertificateSource source)
    {
        private volatile SslServerCertificateState? _state;

        public string Name { get; } = name;

        public CertificateSource Source { get; } = source;

        public SslServerCertificateState State
        {
            get => _state!;
            set => _state = value;
        }

        public CertificateFileContents? Loaded { get; set; }

        /// <summary>The contents (or the read failure) last logged as not loading, so that it is logged once.</summary>
        public object? Failed { get; set; }
    }

    private sealed class AuthoritySlot(string path, byte[] loaded, X509Certificate2Collection roots)
    {
        public string Path { get; } = path;

        public byte[] Loaded { get; set; } = loaded;

        public X509Certificate2Collection Roots { get; set; } = roots;

        public object? Failed { get; set; }
    }
}

namespace KestrelTcp.Configuration;

/// <summary>Everything under the <c>KestrelTcp</c> configuration section, read and validated at start-up.</summary>
public sealed class KestrelTcpOptions
{
    /// <summary>The configuration section every key lives under.</summary>
    public const string SectionName = "KestrelTcp";

    /// <summary>The HTTP management endpoint.</summary>
    public HttpEndpointOptions Http { get; set; } = new();

    /// <summary>The enabled listeners, in configuration order.</summary>
    public IReadOnlyList<ListenerDefinition> Listeners { get; set; } = [];

    /// <summary>The limits every listener starts from.</summary>
    public ConnectionLimits Limits { get; set; } = ConnectionLimits.Default;

    /// <summary>Shutdown timing.</summary>
    public ShutdownOptions Shutdown { get; set; } = new();

    /// <summary>
    /// The listen backlog of every TCP listener (the <c>listen(N)</c> of the classic servers). Null keeps
    /// Kestrel's default of 512.
    /// </summary>
    public int? Backlog { get; set; }

    /// <summary>
    /// Run socket completions, the transport and handlers on the socket event threads rather than
    /// the thread pool (<c>Transport:InlineScheduling</c>; see <see cref="Hosting.InlineScheduling"/>).
    /// </summary>
    public bool InlineScheduling { get; set; } = true;

    /// <summary>
    /// Which transport serves the TCP listeners (<c>Transport:Kind</c>): KestrelTcp's own (<c>KestrelTcp</c>,
    /// the default; see <see cref="KestrelTcp.Transport.TcpConnection"/>) or Kestrel's socket transport
    /// (<c>Kestrel</c>). The HTTP port and Unix socket listeners always use Kestrel's.
    /// </summary>
    public TransportKind Transport { get; set; } = TransportKind.KestrelTcp;

    /// <summary>Problems found while reading configuration, each naming its key.</summary>
    internal List<string> Problems { get; } = [];
}

/// <summary>The transports a TCP listener can run on.</summary>
public enum TransportKind
{
    /// <summary>KestrelTcp's own socket transport: no pipes per connection, a fraction of the memory per held connection.</summary>
    KestrelTcp,

    /// <summary>Kestrel's socket transport.</summary>
    Kestrel,
}

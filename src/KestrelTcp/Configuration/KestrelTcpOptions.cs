namespace KestrelTcp.Configuration;

/// <summary>
/// Everything under the <c>KestrelTcp</c> configuration section: an immutable snapshot, read and
/// validated once (<see cref="KestrelTcpOptionsReader.Read(IConfiguration, IEnumerable{HandlerRegistration}, string)"/>) while the host is built. Nothing that
/// holds one has to wonder whether it is valid: invalid configuration never becomes one.
/// </summary>
internal sealed record KestrelTcpOptions
{
    /// <summary>The configuration section every key lives under.</summary>
    public const string SectionName = "KestrelTcp";

    /// <summary>The HTTP management endpoint.</summary>
    public HttpEndpointOptions Http { get; init; } = new();

    /// <summary>The enabled listeners, in configuration order.</summary>
    public IReadOnlyList<ListenerDefinition> Listeners { get; init; } = [];

    /// <summary>The limits every listener starts from.</summary>
    public ConnectionLimits Limits { get; init; } = ConnectionLimits.Default;

    /// <summary>Shutdown timing.</summary>
    public ShutdownOptions Shutdown { get; init; } = new();

    /// <summary>
    /// The listen backlog of every TCP listener (the <c>listen(N)</c> of the classic servers). Null keeps
    /// Kestrel's default of 512.
    /// </summary>
    public int? Backlog { get; init; }

    /// <summary>The transport of the TCP listeners (<c>KestrelTcp:Transport</c>).</summary>
    public TransportOptions Transport { get; init; } = new();

    /// <summary>How the server logs (<c>KestrelTcp:Logging</c>).</summary>
    public LoggingOptions Logging { get; init; } = new();
}

/// <summary>The transport of the TCP listeners: <c>KestrelTcp:Transport:*</c>.</summary>
internal sealed record TransportOptions
{
    /// <summary>
    /// Which transport serves the TCP listeners (<c>Kind</c>): KestrelTcp's own (<c>KestrelTcp</c>, the
    /// default: a fraction of the memory per held connection) or Kestrel's socket transport
    /// (<c>Kestrel</c>). The HTTP port, <c>localhost</c> and Unix socket listeners always use Kestrel's.
    /// </summary>
    public TransportKind Kind { get; init; } = TransportKind.KestrelTcp;

    /// <summary>
    /// Run socket completions, the transport and handlers on the socket event threads rather than
    /// the thread pool (<c>InlineScheduling</c>, default true; see <see cref="Hosting.InlineScheduling"/>).
    /// </summary>
    public bool InlineScheduling { get; init; } = true;
}

/// <summary>The transports a TCP listener can run on.</summary>
internal enum TransportKind
{
    /// <summary>KestrelTcp's own socket transport: no pipes per connection, a fraction of the memory per held connection.</summary>
    KestrelTcp,

    /// <summary>Kestrel's socket transport.</summary>
    Kestrel,
}

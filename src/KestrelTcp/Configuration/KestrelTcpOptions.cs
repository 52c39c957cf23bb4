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

    /// <summary>Problems found while reading configuration, each naming its key.</summary>
    internal List<string> Problems { get; } = [];
}

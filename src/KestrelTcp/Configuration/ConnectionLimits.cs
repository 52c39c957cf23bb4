namespace KestrelTcp.Configuration;

/// <summary>
/// Per-listener connection limits. Set once under <c>KestrelTcp:Limits</c> for every listener and
/// overridable inside a listener with the same keys. Every limit counts per listener.
/// </summary>
public sealed record ConnectionLimits
{
    /// <summary>The defaults of <c>appsettings.json</c>.</summary>
    public static ConnectionLimits Default { get; } = new();

    /// <summary>
    /// Open connections allowed at once; 0 is unlimited. Default 10,000: half of the 20,000 file
    /// descriptors a small container usually gets, leaving room for the other listeners.
    /// </summary>
    public int MaxConnections { get; init; } = 10_000;

    /// <summary>
    /// Open connections allowed at once from one remote IP address; 0 (the default) is unlimited,
    /// as xinetd's <c>per_source</c> is when unset.
    /// </summary>
    public int MaxConnectionsPerClient { get; init; }

    /// <summary>
    /// A connection that receives nothing for this long is closed gracefully; zero disables it.
    /// Default five minutes: long enough for an interactive telnet user, short enough that
    /// vanished clients do not pile up.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The longest line, in bytes without its line ending, a line-oriented handler accepts.
    /// Default 8 KiB, nginx's <c>large_client_header_buffers</c> line size.
    /// </summary>
    public int MaxLineLength { get; init; } = 8192;

    /// <summary>
    /// New connections accepted per second; 0 (the default) is unlimited. A token bucket holding one
    /// second's worth: after a quiet second, at most this many are served at once. xinetd's <c>cps</c>.
    /// </summary>
    public int MaxConnectionRate { get; init; }

    /// <summary>New connections accepted per second from one client IP address; 0 (the default) is unlimited.</summary>
    public int MaxConnectionRatePerClient { get; init; }

    /// <summary>
    /// Over <see cref="MaxConnections"/>, hold a new connection (nothing read, nothing written) until an
    /// open one closes, instead of refusing it: what a classic one-client-at-a-time server does with its
    /// listen backlog. Default false: refuse at once, which tells a load balancer to go elsewhere. At most
    /// <see cref="Connections.ConnectionLimiter.MaxWaiting"/> wait per listener; the drain refuses them.
    /// </summary>
    public bool QueueWhenFull { get; init; }
}

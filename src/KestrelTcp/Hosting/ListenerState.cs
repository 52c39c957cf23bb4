namespace KestrelTcp.Hosting;

/// <summary>Where a listener is in its life, as <c>/health</c> reports it.</summary>
internal enum ListenerState
{
    /// <summary>Configured, not bound yet.</summary>
    Starting,

    /// <summary>Bound and accepting connections.</summary>
    Listening,

    /// <summary>Shutting down: refusing new connections, finishing open ones.</summary>
    Draining,

    /// <summary>Every connection finished.</summary>
    Stopped,
}

namespace KestrelTcp.Configuration;

/// <summary>How the server stops on SIGTERM or Ctrl+C (<c>KestrelTcp:Shutdown</c>).</summary>
internal sealed record ShutdownOptions
{
    /// <summary>
    /// How long to keep serving after readiness turns 503, so that a load balancer or a Kubernetes
    /// Service stops routing here first. Default zero: nothing routes by readiness outside Kubernetes.
    /// </summary>
    public TimeSpan Delay { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// How long open connections get to finish before they are aborted. Default ten seconds, what
    /// <c>docker stop</c> waits before it kills.
    /// </summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Faults;

/// <summary>Adds a listener's <c>Faults</c> to its connection pipeline.</summary>
internal static class FaultConnectionExtensions
{
    /// <summary>
    /// Makes the listener's connections misbehave as its <c>Faults</c> say; adds nothing at all when it has
    /// none (no section, or none of its faults set), so such a listener pays nothing for the feature. Goes
    /// right before the handler, after the tracking: a faulted connection is counted, listed, asked to
    /// finish by the drain and closed like any other.
    /// </summary>
    public static IConnectionBuilder UseFaults(this IConnectionBuilder builder, ListenerRuntime listener, TimeProvider time, ILogger logger)
    {
        if (listener.Faults is not { } counters)
        {
            return builder;
        }

        FaultLog.Configured(logger, listener.Name, string.Join(", ", counters.Kinds.Select(FaultKinds.Label)), counters.Options.Probability);
        return builder.Use(next => new FaultMiddleware(next, counters, time, logger).OnConnectionAsync);
    }
}

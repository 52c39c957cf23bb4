using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Connections;

/// <summary>The per-connection middleware of a listener, one <c>Use…</c> each; the order is written once, in <see cref="KestrelEndpointSetup"/>.</summary>
internal static class ListenOptionsConnectionExtensions
{
    /// <summary>Refuses clients the listener's <c>Access</c> rules do not permit; adds nothing when it has none.</summary>
    public static IConnectionBuilder UseAccessRules(this IConnectionBuilder builder, ListenerRuntime listener, ILogger logger) =>
        listener.Definition.Access.IsEmpty
            ? builder
            : builder.Use(next => new ClientAdmissionMiddleware(next, listener, listener.Definition.Access.Permits, RejectReason.AccessDenied, logger).OnConnectionAsync);

    /// <summary>Refuses connections over the listener's connection rates; adds nothing when it has none.</summary>
    public static IConnectionBuilder UseConnectionRates(this IConnectionBuilder builder, ListenerRuntime listener, ILogger logger) =>
        listener.Rates is not { } rates
            ? builder
            : builder.Use(next => new ClientAdmissionMiddleware(next, listener, rates.TryAcquire, RejectReason.RateLimited, logger).OnConnectionAsync);

    /// <summary>Refuses connections over the listener's limits or while it drains; gives the place back when an accepted one ends.</summary>
    public static IConnectionBuilder UseConnectionLimits(this IConnectionBuilder builder, ListenerRuntime listener, ILogger logger) =>
        builder.Use(next => new ConnectionLimitMiddleware(next, listener, logger, LimitHandedToTracking(listener)).OnConnectionAsync);

    /// <summary>Counts, lists, closes and logs each accepted connection (and gives back the limit's place when handed it).</summary>
    public static IConnectionBuilder UseConnectionTracking(this IConnectionBuilder builder, ListenerRuntime listener, KestrelTcpMetrics metrics, ILogger logger, TimeProvider time) =>
        builder.Use(next => new ConnectionTrackingMiddleware(next, listener, metrics, logger, time, LimitHandedToTracking(listener)).OnConnectionAsync);

    /// <summary>
    /// Whether the tracking middleware gives the limit's place back: when it comes right after the limits
    /// (no TLS handshake between them, which can end a connection before it is tracked) and the place
    /// is the same for every client (no per-client limit). See <see cref="ConnectionLimitMiddleware"/>.
    /// </summary>
    internal static bool LimitHandedToTracking(ListenerRuntime listener) =>
        listener.Tls is null && listener.Definition.Limits.MaxConnectionsPerClient == 0;
}

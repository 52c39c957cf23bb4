using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Connections;

/// <summary>
/// How a connection is asked to finish: the drain and the idle timeout raise Kestrel's close request
/// (<see cref="IConnectionLifetimeNotificationFeature.RequestClose"/>), which by itself cancels
/// nothing; this turns it into a canceled read of the pipe the handler reads (the innermost
/// <see cref="ConnectionContext.Transport"/> at that moment, after TLS or any other middleware that
/// replaced it), so a handler waiting for input wakes up and finishes gracefully.
/// </summary>
internal static class ConnectionClosing
{
    /// <summary>Registers the canceled read on the connection's close request; dispose the result when the connection ends.</summary>
    public static CancellationTokenRegistration CancelReadOnCloseRequest(ConnectionContext connection) =>
        connection.Features.Get<IConnectionLifetimeNotificationFeature>() is { } notification
            ? notification.ConnectionClosedRequested.UnsafeRegister(static state => Cancel((ConnectionContext)state!), connection)
            : default;

    // Not on the requester's thread: with inline scheduling the handler's continuation would run
    // right there, and the drain and the idle scan serve every connection of the server.
    private static void Cancel(ConnectionContext connection) =>
        ThreadPool.UnsafeQueueUserWorkItem(static c => c.Transport.Input.CancelPendingRead(), connection, preferLocal: false);
}

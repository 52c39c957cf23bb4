using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Connections;

/// <summary>
/// The outermost middleware of every TCP listener: refuses a connection over the listener's limits,
/// or while the server drains, before anything counts it as accepted. A refused connection gets
/// the handler's busy reply (if it has one) and a graceful close, and is counted by reason. An
/// accepted connection's place is given back by <see cref="ConnectionTrackingMiddleware"/>.
/// </summary>
internal sealed class ConnectionLimitMiddleware(ConnectionDelegate next, ListenerRuntime listener, ILogger logger, TimeProvider time)
{
    public Task OnConnectionAsync(ConnectionContext connection)
    {
        if (listener.IsDraining)
        {
            Reject(RejectReason.ShuttingDown);
            return Task.CompletedTask;
        }

        var refused = listener.Limiter.TryAcquire(ConnectionLimiter.ClientAddress(connection.RemoteEndPoint));
        if (refused != RejectReason.None)
        {
            Reject(refused);
            return listener.Handler is IBusyReply busy
                ? connection.Transport.Output.WriteAsync(busy.BusyReply).AsTask()
                : Task.CompletedTask;
        }

        // Accepted. The tracking middleware, always next (KestrelEndpointSetup), gives the limits
        // back when the connection ends: not awaiting here saves an async frame per open connection.
        return next(connection);
    }

    private void Reject(RejectReason reason)
    {
        listener.Stats.OnRejected(reason);
        var count = listener.RejectionLog.Note(time.GetUtcNow().ToUnixTimeMilliseconds());
        if (count > 0)
        {
            Log.ConnectionsRejected(logger, listener.Name, count, reason);
        }
    }
}

using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Connections;

/// <summary>
/// The outermost middleware of every TCP listener: refuses a connection over the listener's limits,
/// or while the server drains, before anything counts it as accepted. A refused connection gets
/// the handler's busy reply (if it has one) and a graceful close, and is counted by reason. An
/// accepted connection's place is given back here, in this middleware's own <c>finally</c>, or, with
/// <paramref name="handOff"/>, by the tracking middleware that comes right after it
/// (<see cref="ConnectionTrackingMiddleware"/>, <c>releasesLimit</c>): then this one keeps no frame of
/// its own for the connection's life (120 B per held connection). Only without a per-client limit (the
/// place is then the same for every client) and with nothing between the two that can end a connection.
/// </summary>
internal sealed class ConnectionLimitMiddleware(ConnectionDelegate next, ListenerRuntime listener, ILogger logger, bool handOff = false)
{
    public Task OnConnectionAsync(ConnectionContext connection)
    {
        if (listener.IsDraining)
        {
            Reject(RejectReason.ShuttingDown);
            return Task.CompletedTask;
        }

        var refused = listener.Limiter.TryAcquire(connection.RemoteEndPoint, out var client);
        if (refused == RejectReason.MaxConnections && listener.Definition.Limits.QueueWhenFull)
        {
            return WaitAsync(connection);
        }

        if (refused != RejectReason.None)
        {
            Reject(refused);
            // On a TLS listener the handshake has not begun: a plain-text reply would be garbage to the client.
            return listener.Handler is IBusyReply busy && listener.Tls is null
                ? connection.Transport.Output.WriteAsync(busy.BusyReply).AsTask()
                : Task.CompletedTask;
        }

        return handOff ? next(connection) : RunAsync(connection, client);
    }

    // Held, unread, like a connection in a classic server's listen backlog, until an open one closes.
    private async Task WaitAsync(ConnectionContext connection)
    {
        if (!await listener.Limiter.WaitForPlaceAsync())
        {
            Reject(listener.IsDraining ? RejectReason.ShuttingDown : RejectReason.MaxConnections);
            return;
        }

        // A waiting connection counts against MaxConnections only; the per-client limit is not queued.
        var refused = listener.Limiter.TryAcquirePerClient(connection.RemoteEndPoint, out var client);
        if (refused != RejectReason.None || listener.IsDraining)
        {
            listener.Limiter.Release(null);
            Reject(listener.IsDraining ? RejectReason.ShuttingDown : refused);
            return;
        }

        await (handOff ? next(connection) : RunAsync(connection, client));
    }

    private async Task RunAsync(ConnectionContext connection, System.Net.IPAddress? client)
    {
        try
        {
            await next(connection);
        }
        finally
        {
            listener.Limiter.Release(client);
        }
    }

    private void Reject(RejectReason reason) => listener.Refuse(reason, logger);
}

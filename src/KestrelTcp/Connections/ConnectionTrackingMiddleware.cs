using System.Diagnostics;
using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Connections;

/// <summary>
/// Sees every accepted connection of a listener: counts it, wraps its transport to count bytes,
/// keeps it in the listener's open set (where the drain and the idle scan find it), and on the way
/// out records why and how long, logs one event, and gives back
/// the place <see cref="ConnectionLimitMiddleware"/> took under the listener's limits.
/// </summary>
internal sealed class ConnectionTrackingMiddleware(ConnectionDelegate next, ListenerRuntime listener, KestrelTcpMetrics metrics, ILogger logger, TimeProvider time)
{
    public async Task OnConnectionAsync(ConnectionContext connection)
    {
        // The place ConnectionLimitMiddleware took for this connection goes back whatever happens below.
        var client = ConnectionLimiter.ClientAddress(connection.RemoteEndPoint);
        var released = false;
        try
        {
            var transport = connection.Transport;
            var tracked = new TrackedConnection(connection, transport, time, listener.Stats);
            connection.Features.Set<ICloseReasonFeature>(tracked);
            connection.Features.Set(tracked);
            connection.Transport = tracked;
            listener.OnAccepted(tracked);
            try
            {
                await next(connection);
            }
            catch (Exception ex) when (IsClientGone(ex))
            {
                // A reset or a vanished client is ordinary network life, not our fault.
                tracked.SetCloseReason(CloseReason.Client);
            }
            catch (Exception ex)
            {
                tracked.SetCloseReason(CloseReason.Error);
                Log.ConnectionFailed(logger, ex, listener.Name, connection.ConnectionId);
            }
            finally
            {
                tracked.Finished = true;
                connection.Transport = transport;
                if (connection is TcpConnection tcp)
                {
                    tcp.Observer = null;
                }

                // The place first: once the connection shows as closed anywhere, a new one may take it.
                listener.Limiter.Release(client);
                released = true;

                var reason = tracked.CloseReason;
                if (reason == CloseReason.None)
                {
                    reason = tracked.ClientCompleted ? CloseReason.Client : CloseReason.Server;
                }

                var duration = tracked.Duration(time.GetTimestamp());
                listener.OnClosed(tracked, reason, duration.TotalSeconds);
                metrics.RecordDuration(listener, duration.TotalSeconds);

                // Load-balancer probes connect and send nothing: at Debug, they do not flood the log.
                var level = tracked.BytesReceived > 0 ? LogLevel.Information : LogLevel.Debug;
                if (logger.IsEnabled(level))
                {
                    Log.ConnectionClosed(logger, level, listener.Name, connection.ConnectionId, tracked.Remote?.ToString(),
                        duration.TotalMilliseconds, tracked.BytesReceived, tracked.BytesSent, reason);
                }
            }
        }
        finally
        {
            if (!released)
            {
                listener.Limiter.Release(client);
            }
        }
    }

    private static bool IsClientGone(Exception ex) =>
        ex is ConnectionResetException or ConnectionAbortedException or IOException or OperationCanceledException
        || ex.InnerException is System.Net.Sockets.SocketException;
}

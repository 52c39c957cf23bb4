using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Connections;

/// <summary>
/// Sees every accepted connection of a listener: counts it, keeps it in the listener's open set
/// (its transport adds its bytes to the listener's totals from the first byte: <see cref="TransferCountingExtensions.UseTransferCounting"/>), answers the connection's close request
/// (<see cref="TrackedConnection"/>), and on the way out decides the close reason (the one owner
/// of it: a reason recorded earlier by the handler, the idle timeout or the drain wins; otherwise the
/// client's doing or ours), records it with the duration, and logs one event. With
/// <paramref name="releasesLimit"/> it also gives back the place the limit middleware right before it
/// took (its hand-off), last, as that middleware's own <c>finally</c> would.
/// </summary>
internal sealed class ConnectionTrackingMiddleware(
    ConnectionDelegate next, ListenerRuntime listener, KestrelTcpMetrics metrics, ILogger logger, TimeProvider time, bool releasesLimit = false)
{
    public async Task OnConnectionAsync(ConnectionContext connection)
    {
        // One method, one frame for the connection's life: the limit's hand-off adds no frame of its own.
        try
        {
            var transfer = connection.Features.Get<IConnectionTransferFeature>()
                ?? throw new InvalidOperationException($"{nameof(TransferCountingExtensions.UseTransferCounting)} must run before the tracking middleware.");
            var tracked = new TrackedConnection(connection, transfer, time.GetTimestamp());
            listener.OnAccepted(tracked);
            if (listener.IsDraining)
            {
                // Admitted just before the drain began, listed just after it asked every open connection
                // to finish: it is asked now, so that it does not wait for the drain's timeout.
                tracked.RequestClose(CloseReason.Shutdown);
            }

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
                Closed(tracked);
            }
        }
        finally
        {
            if (releasesLimit)
            {
                listener.Limiter.Release(null);
            }
        }
    }

    private void Closed(TrackedConnection tracked)
    {
        tracked.SetCloseReason(tracked.Transfer.ClientClosed ? CloseReason.Client : CloseReason.Server);
        var reason = tracked.CloseReason;
        var duration = time.GetElapsedTime(tracked.StartTimestamp);
        // The duration first: a scrape that sees the close in closed_total also sees it in the histogram.
        metrics.RecordDuration(listener, duration.TotalSeconds);
        listener.OnClosed(tracked, reason);

        // Load-balancer probes connect and send nothing: at Debug, they do not flood the log.
        var received = tracked.Transfer.BytesReceived;
        var level = received > 0 ? LogLevel.Information : LogLevel.Debug;
        if (logger.IsEnabled(level))
        {
            Log.ConnectionClosed(logger, level, listener.Name, tracked.Id, tracked.Remote?.ToString(),
                duration.TotalMilliseconds, received, tracked.Transfer.BytesSent, reason);
        }
    }

    private static bool IsClientGone(Exception ex) =>
        ex is ConnectionResetException or ConnectionAbortedException or IOException or OperationCanceledException
        || ex.InnerException is System.Net.Sockets.SocketException;
}

using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Connections;

/// <summary>
/// Closes a connection that has received nothing for the listener's <c>IdleTimeout</c>. Kestrel has
/// no idle timeout for raw TCP, so this rides its once-a-second connection heartbeat: nothing is
/// done per byte beyond the timestamp the tracked transport already keeps.
/// </summary>
internal sealed class IdleTimeoutMiddleware(ConnectionDelegate next, TimeSpan idleTimeout)
{
    public Task OnConnectionAsync(ConnectionContext connection)
    {
        if (connection.Features.Get<TrackedConnection>() is { } tracked
            && connection.Features.Get<IConnectionHeartbeatFeature>() is { } heartbeat)
        {
            tracked.IdleTimeout = idleTimeout;
            heartbeat.OnHeartbeat(static state => ((TrackedConnection)state).CheckIdle(), tracked);
        }

        return next(connection);
    }
}

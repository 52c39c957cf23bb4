using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Connections;

/// <summary>
/// Refuses a connection over the listener's <c>MaxConnectionRate</c> or the client's
/// <c>MaxConnectionRatePerClient</c>: closed at once, nothing written, counted as <c>rate_limited</c>.
/// Only on listeners with a rate set: the others do not pay for the check.
/// </summary>
internal sealed class ConnectionRateMiddleware(ConnectionDelegate next, ListenerRuntime listener, ConnectionRateLimiter rates, ILogger logger)
{
    public Task OnConnectionAsync(ConnectionContext connection)
    {
        if (!rates.TryAcquire(ConnectionLimiter.ClientAddress(connection.RemoteEndPoint)))
        {
            listener.Refuse(RejectReason.RateLimited, logger);
            return Task.CompletedTask;
        }

        return next(connection);
    }
}

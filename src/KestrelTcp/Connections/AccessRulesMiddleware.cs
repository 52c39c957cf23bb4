using KestrelTcp.Configuration;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Connections;

/// <summary>
/// Refuses a client the listener's <c>Access</c> rules do not permit: closed at once, nothing written,
/// counted as <c>access_denied</c>. It runs after the PROXY protocol header has made the header's
/// source the connection's client, and before the rate and connection limits, so a denied client
/// costs no token and no place.
/// </summary>
internal sealed class AccessRulesMiddleware(ConnectionDelegate next, ListenerRuntime listener, AccessRules rules, ILogger logger)
{
    public Task OnConnectionAsync(ConnectionContext connection)
    {
        if (!rules.Permits(ConnectionLimiter.ClientAddress(connection.RemoteEndPoint)))
        {
            listener.Refuse(RejectReason.AccessDenied, logger);
            return Task.CompletedTask;
        }

        return next(connection);
    }
}

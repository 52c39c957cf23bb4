using System.Net;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Connections;

/// <summary>
/// Refuses a connection whose client (after the PROXY protocol header, if any) a check does not
/// admit: closed at once, nothing written, counted with the check's reason. The listener's
/// <c>Access</c> rules (<c>access_denied</c>) and connection rates (<c>rate_limited</c>) are two of
/// these, in that order and before the connection limits, so a denied client costs no token and a
/// refused one no place. Added only to listeners that configure the check.
/// </summary>
internal sealed class ClientAdmissionMiddleware(ConnectionDelegate next, ListenerRuntime listener, Func<IPAddress?, bool> admits, RejectReason reason, ILogger logger)
{
    public Task OnConnectionAsync(ConnectionContext connection)
    {
        if (!admits(ConnectionLimiter.ClientAddress(connection.RemoteEndPoint)))
        {
            listener.Refuse(reason, logger);
            return Task.CompletedTask;
        }

        return next(connection);
    }
}

using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>
/// RFC 863 discard: everything received is read and dropped until the client closes; nothing is
/// ever written. Each read is released at once (consumed to its end), so a connection holds no more
/// than the transport's read buffer whatever the client sends. Asked to finish (the server shutting
/// down, the idle timeout), the pending read is canceled and the connection closes gracefully:
/// there is nothing to send back, so nothing to drain.
/// </summary>
public sealed class DiscardHandler : ConnectionHandler
{
    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var input = connection.Transport.Input;
        while (true)
        {
            var result = await input.ReadAsync();
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }
}

using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>
/// RFC 862 echo: every byte received goes back unchanged, in order. The received segments are
/// written straight to the output and flushed once per read, so a client that does not read
/// stalls the flush and with it the reading (backpressure). When the client half-closes, or the
/// connection is asked to finish, everything already received is sent back before closing.
/// </summary>
public sealed class EchoHandler : ConnectionHandler
{
    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;

        while (true)
        {
            var result = await input.ReadAsync();
            var buffer = result.Buffer;
            foreach (var segment in buffer)
            {
                output.Write(segment.Span);
            }

            input.AdvanceTo(buffer.End);

            if (!buffer.IsEmpty && (await output.FlushAsync()).IsCompleted)
            {
                return;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }
}

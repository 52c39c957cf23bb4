using System.Buffers;
using System.IO.Pipelines;
using KestrelTcp.Connections;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>
/// RFC 862 echo: every byte received goes back unchanged, in order. What one read returned is sent
/// before the next read (through <see cref="TrackedConnection.SendDirectAsync"/>: from the input
/// buffer straight to the socket), so a client that does not read stalls the send and with it the
/// reading (backpressure). When the client half-closes,
/// everything received is sent back before closing. When the server shuts down, Echo keeps
/// returning what arrives until the client has been quiet for <see cref="DrainQuietPeriod"/>:
/// bytes a client sent just before the signal may still sit in the socket buffers, and closing
/// with them unread would reset the connection and lose the echo already on its way.
/// </summary>
public sealed class EchoHandler : ConnectionHandler
{
    /// <summary>How long a draining connection may stay silent before Echo closes it.</summary>
    public static readonly TimeSpan DrainQuietPeriod = TimeSpan.FromMilliseconds(250);

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        var draining = false;
        var tracked = connection.Features.Get<TrackedConnection>();

        while (true)
        {
            ReadResult result;
            if (!draining)
            {
                result = await input.ReadAsync();
            }
            else
            {
                using var quiet = new CancellationTokenSource(DrainQuietPeriod);
                try
                {
                    result = await input.ReadAsync(quiet.Token);
                }
                catch (OperationCanceledException) when (quiet.IsCancellationRequested)
                {
                    return;
                }
            }

            // Over a socket, straight from the input buffer (no copy); then release the buffer.
            var buffer = result.Buffer;
            var sent = buffer.IsEmpty || await (tracked is not null
                ? tracked.SendDirectAsync(buffer)
                : TrackedConnection.WriteAndFlushAsync(output, buffer));
            input.AdvanceTo(buffer.End);
            if (!sent)
            {
                return;
            }

            if (result.IsCompleted)
            {
                return;
            }

            if (result.IsCanceled)
            {
                // Asked to finish: for shutdown, drain what is still arriving; for idle, there is nothing to drain.
                if (!draining && !connection.IsShutdownRequested())
                {
                    return;
                }

                draining = true;
            }
        }
    }
}

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
        // What lives across an await is kept in the handler's state machine for as long as the
        // connection is open (10,000 held connections keep 10,000 of them): the loop keeps only the
        // reader, the tracked connection and what it needs after a send, not the whole read result.
        var input = connection.Transport.Input;
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
            var end = result.Buffer.End;
            var completed = result.IsCompleted;
            var canceled = result.IsCanceled;
            var sent = result.Buffer.IsEmpty || await (tracked is not null
                ? tracked.SendDirectAsync(result.Buffer)
                : TrackedConnection.WriteAndFlushAsync(connection.Transport.Output, result.Buffer));
            input.AdvanceTo(end);
            if (!sent)
            {
                return;
            }

            if (completed)
            {
                return;
            }

            if (canceled)
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

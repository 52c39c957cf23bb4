using System.Buffers;
using System.IO.Pipelines;
using KestrelTcp.Connections;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>
/// RFC 862 echo: every byte received goes back unchanged, in order. What one read returned is
/// written back (<see cref="PipeWriter.WriteAsync"/>, which KestrelTcp's transport sends straight
/// from the input buffer to the socket) before the next read, so a client that does not read stalls
/// the write and with it the reading (backpressure). When the client half-closes, everything received
/// is sent back before closing. When the server shuts down, Echo keeps returning what arrives until
/// the client has been quiet for <see cref="DrainQuietPeriod"/>: bytes a client sent just before the
/// signal may still sit in the socket buffers, and closing with them unread would reset the
/// connection and lose the echo already on its way.
/// </summary>
public sealed class EchoHandler(TimeProvider timeProvider) : ConnectionHandler
{
    /// <summary>How long a draining connection may stay silent before Echo closes it.</summary>
    public static readonly TimeSpan DrainQuietPeriod = TimeSpan.FromMilliseconds(250);

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        // What lives across an await is kept in the handler's state machine for as long as the
        // connection is open (10,000 held connections keep 10,000 of them): the loop keeps only the
        // pipes and what it needs after a write; the drain, which needs more, is a method of its own.
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        while (true)
        {
            var result = await input.ReadAsync();
            switch (await EchoAsync(input, output, result))
            {
                case ReadOutcome.Ended:
                    return;
                case ReadOutcome.Canceled:
                    // Asked to finish: for shutdown, drain what is still arriving; for idle, there is nothing to drain.
                    if (connection.IsShutdownRequested())
                    {
                        await DrainAsync(input, output);
                    }

                    return;
            }
        }
    }

    /// <summary>Echoes what is still arriving until the client has been quiet for <see cref="DrainQuietPeriod"/> (or ends).</summary>
    private async Task DrainAsync(PipeReader input, PipeWriter output)
    {
        while (true)
        {
            ReadResult result;
            using (var quiet = new CancellationTokenSource(DrainQuietPeriod, timeProvider))
            {
                try
                {
                    result = await input.ReadAsync(quiet.Token);
                }
                catch (OperationCanceledException) when (quiet.IsCancellationRequested)
                {
                    return;
                }
            }

            if (await EchoAsync(input, output, result) == ReadOutcome.Ended)
            {
                return;
            }
        }
    }

    /// <summary>Sends one read back and releases its buffer.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<ReadOutcome> EchoAsync(PipeReader input, PipeWriter output, ReadResult result)
    {
        var sent = result.Buffer.IsEmpty || await WriteAsync(output, result.Buffer);
        input.AdvanceTo(result.Buffer.End);
        return !sent || result.IsCompleted ? ReadOutcome.Ended : result.IsCanceled ? ReadOutcome.Canceled : ReadOutcome.Read;
    }

    /// <summary>Writes the received segments back, in order; false once the client is gone.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> WriteAsync(PipeWriter output, ReadOnlySequence<byte> data)
    {
        if (data.IsSingleSegment)
        {
            return !(await output.WriteAsync(data.First)).IsCompleted;
        }

        foreach (var segment in data)
        {
            output.Write(segment.Span);
        }

        return !(await output.FlushAsync()).IsCompleted;
    }

    private enum ReadOutcome
    {
        Read,
        Canceled,
        Ended,
    }
}

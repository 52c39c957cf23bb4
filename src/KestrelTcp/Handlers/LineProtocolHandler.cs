using System.Buffers;
using System.IO.Pipelines;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>What a line-oriented handler wants after a line.</summary>
public enum LineAction
{
    /// <summary>Keep reading lines.</summary>
    Continue,

    /// <summary>Flush what was written and close the connection.</summary>
    Close,
}

/// <summary>
/// The read loop every line-oriented protocol shares: framing, the line limit, the
/// <c>ERR line too long</c> answer, batching replies into one flush, bounded output, and finishing
/// when the connection is asked to close. A protocol only says what to write on connect, per line,
/// and when asked to close.
/// </summary>
public abstract class LineProtocolHandler : ConnectionHandler
{
    // A batch of pipelined lines flushes once; past this much unflushed output it flushes early so
    // that a client sending many short lines without reading cannot grow the output without bound.
    private const int MaxUnflushedBytes = 64 * 1024;

    private readonly int _maxLineLength;

    /// <summary>Creates the handler for <paramref name="listener"/>, taking its <c>MaxLineLength</c>.</summary>
    protected LineProtocolHandler(ListenerDefinition listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _maxLineLength = listener.Limits.MaxLineLength;
    }

    /// <summary>The answer to a line over the limit, sent before the connection closes.</summary>
    public static ReadOnlyMemory<byte> LineTooLongReply { get; } = "ERR line too long\r\n"u8.ToArray();

    /// <inheritdoc />
    public sealed override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;

        if (OnConnected(connection, output) == LineAction.Close)
        {
            await output.FlushAsync();
            return;
        }

        if ((await output.FlushAsync()).IsCompleted)
        {
            return;
        }

        while (true)
        {
            var result = await input.ReadAsync();
            var action = OnRead(connection, result, input, output, out var consumedAll);
            var flush = await output.FlushAsync();
            if (action == LineAction.Close || flush.IsCompleted || (result.IsCompleted && consumedAll))
            {
                return;
            }
        }
    }

    private LineAction OnRead(ConnectionContext connection, in ReadResult result, PipeReader input, PipeWriter output, out bool consumedAll)
    {
        var buffer = result.Buffer;
        var reader = new SequenceReader<byte>(buffer);
        var yielded = false;
        try
        {
            if (result.IsCanceled)
            {
                OnCloseRequested(connection, output, connection.IsShutdownRequested());
                return LineAction.Close;
            }

            return ProcessLines(connection, ref reader, result.IsCompleted, output, out yielded);
        }
        finally
        {
            // After yielding to flush, complete lines remain: mark only what was parsed as examined
            // so the next read returns them without waiting for more input.
            input.AdvanceTo(reader.Position, yielded ? reader.Position : buffer.End);
            consumedAll = reader.End;
        }
    }

    private LineAction ProcessLines(ConnectionContext connection, ref SequenceReader<byte> reader, bool isFinalBlock, PipeWriter output, out bool yielded)
    {
        yielded = false;
        while (true)
        {
            switch (LineFraming.TryReadLine(ref reader, _maxLineLength, isFinalBlock, out var line))
            {
                case LineStatus.Line:
                    if (OnLine(connection, line, output) == LineAction.Close)
                    {
                        connection.Features.Get<ICloseReasonFeature>()?.SetCloseReason(CloseReason.Server);
                        return LineAction.Close;
                    }

                    if (output.CanGetUnflushedBytes && output.UnflushedBytes > MaxUnflushedBytes)
                    {
                        yielded = !reader.End;
                        return LineAction.Continue;
                    }

                    break;
                case LineStatus.TooLong:
                    output.Write(LineTooLongReply.Span);
                    connection.Features.Get<ICloseReasonFeature>()?.SetCloseReason(CloseReason.LineTooLong);
                    return LineAction.Close;
                default:
                    return LineAction.Continue;
            }
        }
    }

    /// <summary>Writes what the protocol sends on connect (a banner); may close at once.</summary>
    protected virtual LineAction OnConnected(ConnectionContext connection, PipeWriter output) => LineAction.Continue;

    /// <summary>Answers one line (without its line ending). Write to <paramref name="output"/>; the loop flushes.</summary>
    protected abstract LineAction OnLine(ConnectionContext connection, in ReadOnlySequence<byte> line, PipeWriter output);

    /// <summary>
    /// The connection was asked to finish: the server is shutting down (<paramref name="shuttingDown"/>)
    /// or it sat idle too long. Write any last words; the connection then closes gracefully.
    /// </summary>
    protected virtual void OnCloseRequested(ConnectionContext connection, PipeWriter output, bool shuttingDown)
    {
    }
}

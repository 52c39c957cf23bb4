using System.IO.Pipelines;
using KestrelTcp.Configuration;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>
/// RFC 864 character generator, as BSD inetd does it: lines of <see cref="LineLength"/> characters and
/// <c>\r\n</c> taken from the ring of the <see cref="RingLength"/> printable ASCII characters (space to
/// <c>~</c>), line n starting at ring position n mod 95, so the stream repeats every 95 lines.
/// <para>
/// The 95 lines are made once, as one block: a connection only copies spans of it into the pipe
/// (<see cref="PipeWriter.GetSpan"/>/<see cref="PipeWriter.Advance"/>) and flushes every
/// <see cref="FlushBytes"/>, awaiting each flush, so it runs as fast as the client reads and no faster:
/// a client that never reads stalls the handler at the pipe's pause threshold, with the output bounded.
/// Input is read and dropped alongside; the client closing its side (or vanishing), or the connection
/// being asked to finish (shutdown, idle timeout), stops the stream. <c>MaxBytes</c> stops it after exactly
/// that many bytes; <c>BytesPerSecond</c> paces it on the injected <see cref="TimeProvider"/>, a tenth of a
/// second's worth at a time.
/// </para>
/// </summary>
public sealed class ChargenHandler(ListenerDefinition listener, TimeProvider timeProvider) : ConnectionHandler
{
    /// <summary>The printable characters of a line, before its <c>\r\n</c>.</summary>
    public const int LineLength = 72;

    /// <summary>The printable ASCII characters, 0x20 (space) to 0x7E (<c>~</c>): the ring lines are cut from.</summary>
    public const int RingLength = 95;

    /// <summary>Bytes written between two flushes: a few socket sends' worth, far below any pause threshold.</summary>
    public const int FlushBytes = 16 * 1024;

    /// <summary>One line with its line ending.</summary>
    internal const int LineBytes = LineLength + 2;

    /// <summary>Pacing hands out a tenth of a second's worth of bytes at a time: even at 100 ms granularity.</summary>
    internal static readonly TimeSpan PacingInterval = TimeSpan.FromMilliseconds(100);

    // Lines 0 to 94 back to back: the whole stream is this block repeated.
    private static readonly byte[] Cycle = CreateCycle();

    private readonly ChargenOptions _options = listener.GetHandlerOptions<ChargenOptions>();

    /// <summary>The 95 lines, each <see cref="LineLength"/> characters and <c>\r\n</c>, line 0 first.</summary>
    internal static ReadOnlySpan<byte> Lines => Cycle;

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        using var stopped = _options.BytesPerSecond > 0 ? new CancellationTokenSource() : null;
        var discarding = DiscardAsync(input, output, stopped);
        try
        {
            await StreamAsync(output, discarding, stopped?.Token ?? CancellationToken.None);
        }
        finally
        {
            // The stream may end first (MaxBytes, a client that stopped reading): the read is stopped too
            // before the pipes go back to Kestrel.
            input.CancelPendingRead();
            await discarding;
        }
    }

    /// <summary>Copies <paramref name="destination"/>'s length of the stream from <paramref name="position"/> (in the block of 95 lines), moving it on.</summary>
    internal static void Fill(Span<byte> destination, ref int position)
    {
        while (!destination.IsEmpty)
        {
            var source = Cycle.AsSpan(position);
            var count = Math.Min(source.Length, destination.Length);
            source[..count].CopyTo(destination);
            destination = destination[count..];
            position += count;
            if (position == Cycle.Length)
            {
                position = 0;
            }
        }
    }

    private async Task StreamAsync(PipeWriter output, Task discarding, CancellationToken stopped)
    {
        var remaining = _options.MaxBytes == 0 ? long.MaxValue : _options.MaxBytes;
        var pacer = new Pacer(_options.BytesPerSecond, timeProvider);
        var position = 0;
        // The stop is looked at too: its cancellation may resume this loop inline, before the discarding
        // task that canceled it has completed.
        while (remaining > 0 && !discarding.IsCompleted && !stopped.IsCancellationRequested)
        {
            long chunk = Math.Min(remaining, FlushBytes);
            if (_options.BytesPerSecond > 0)
            {
                var allowed = pacer.Available(chunk);
                if (allowed == 0)
                {
                    await Task.Delay(pacer.UntilAvailable(chunk), timeProvider, stopped).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }

                chunk = allowed;
                pacer.Sent(chunk);
            }

            position = Write(output, (int)chunk, position);
            remaining -= chunk;
            // Not canceled by the stop's token: the discarding cancels a pending flush itself, paced or not.
            var flush = await output.FlushAsync(CancellationToken.None);
            if (flush.IsCompleted || flush.IsCanceled)
            {
                return;
            }
        }
    }

    private static int Write(PipeWriter output, int count, int position)
    {
        // Segment by segment as the pipe hands them out: no size hint that the memory pool would meet
        // with an unpooled array.
        while (count > 0)
        {
            var span = output.GetSpan();
            var length = Math.Min(span.Length, count);
            Fill(span[..length], ref position);
            output.Advance(length);
            count -= length;
        }

        return position;
    }

    /// <summary>Reads and drops the input; when it ends (the client closed, or the read was canceled), wakes the stream to stop.</summary>
    private static async Task DiscardAsync(PipeReader input, PipeWriter output, CancellationTokenSource? stopped)
    {
        try
        {
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
        finally
        {
            // Wherever the stream waits: on a flush to a client that does not read, or on the pacing.
            output.CancelPendingFlush();
            stopped?.Cancel();
        }
    }

    private static byte[] CreateCycle()
    {
        var cycle = new byte[RingLength * LineBytes];
        for (var line = 0; line < RingLength; line++)
        {
            var start = line * LineBytes;
            for (var i = 0; i < LineLength; i++)
            {
                cycle[start + i] = (byte)(' ' + ((line + i) % RingLength));
            }

            cycle[start + LineLength] = (byte)'\r';
            cycle[start + LineLength + 1] = (byte)'\n';
        }

        return cycle;
    }

    /// <summary>
    /// Paces a stream to a rate, a tenth of a second's worth at a time: by time t after the start, at
    /// most rate × t has been sent. A client that reads slower than the rate does not earn a burst: at
    /// most two tenths' worth is ever owed (two, not one, so that a timer firing a little late does not
    /// lose the rate what it was late by).
    /// </summary>
    private struct Pacer
    {
        private readonly long _rate;
        private readonly TimeProvider _time;
        private readonly long _start;
        private readonly long _quantum;
        private long _sent;

        public Pacer(long bytesPerSecond, TimeProvider time)
        {
            _rate = bytesPerSecond;
            _time = time;
            _start = bytesPerSecond > 0 ? time.GetTimestamp() : 0;
            _quantum = Math.Max(1, bytesPerSecond / (TimeSpan.TicksPerSecond / PacingInterval.Ticks));
        }

        /// <summary>How much may be written now, at most <paramref name="wanted"/>: 0 until a tenth of a second's worth (or <paramref name="wanted"/>) is due.</summary>
        public long Available(long wanted)
        {
            var earned = Earned(_time.GetElapsedTime(_start));
            var owed = earned - _sent;
            if (owed > 2 * _quantum)
            {
                // Behind (the client read slowly): the time lost is not made up with a burst.
                _sent = earned - (2 * _quantum);
                owed = 2 * _quantum;
            }

            return owed >= Math.Min(wanted, _quantum) ? Math.Min(owed, wanted) : 0;
        }

        public void Sent(long bytes) => _sent += bytes;

        /// <summary>How long until <see cref="Available"/> gives something for <paramref name="wanted"/>.</summary>
        public readonly TimeSpan UntilAvailable(long wanted)
        {
            // Earned(t) = rate * t reaches sent + min(wanted, quantum) at t = (sent + min) / rate.
            var target = (Int128)_sent + Math.Min(wanted, _quantum);
            var dueTicks = ((target * TimeSpan.TicksPerSecond) + _rate - 1) / _rate;
            var wait = dueTicks - _time.GetElapsedTime(_start).Ticks;
            return wait <= 0 ? TimeSpan.FromTicks(1) : TimeSpan.FromTicks((long)Int128.Min(wait, TimeSpan.TicksPerDay));
        }

        private readonly long Earned(TimeSpan elapsed) =>
            (long)Int128.Min((Int128)_rate * elapsed.Ticks / TimeSpan.TicksPerSecond, long.MaxValue);
    }
}

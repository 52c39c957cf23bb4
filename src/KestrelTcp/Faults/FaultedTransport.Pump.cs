using System.Buffers;
using System.IO.Pipelines;

namespace KestrelTcp.Faults;

internal sealed partial class FaultedTransport
{
    /// <summary>
    /// The pump: one piece per read of our pipe, each cut to the current write (latency), a slice, a paced
    /// step and what the byte limit leaves; it waits until the piece is due, sends and flushes it, then
    /// consumes it (so the handler's flush resumes as the pump catches up, not when a whole batch is out).
    /// </summary>
    private async Task<PumpEnd> CopyAsync(PipeReader reader, PipeWriter output)
    {
        var options = _session.Options;
        var limit = options.LimitBytes;
        var rate = options.BandwidthBytesPerSecond;
        var chunk = rate > 0 ? FaultPacing.PacedChunk(rate) : 0;
        long sent = 0;
        var paceAllows = TimeSpan.Zero;
        TimeSpan? lastPiece = null;
        var write = new CurrentWrite();

        while (true)
        {
            var result = await reader.ReadAsync();
            var buffer = result.Buffer;
            if (buffer.IsEmpty)
            {
                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    return PumpEnd.Drained;
                }

                continue;
            }

            var now = _session.Now;
            var due = now;
            long restOfWrite = 0;
            if (_marks is not null)
            {
                write.Advance(_marks, sent, options);
                restOfWrite = write.End - sent;
                due = FaultPacing.Max(due, write.Due);
            }

            var piece = FaultPacing.Piece(buffer.Length, restOfWrite, options.SliceBytes, chunk, limit > 0 ? limit - sent : long.MaxValue);
            if (piece == 0)
            {
                reader.AdvanceTo(buffer.Start);
                return PumpEnd.Limit;
            }

            if (lastPiece is { } last && options.SliceDelay > TimeSpan.Zero)
            {
                due = FaultPacing.Max(due, last + options.SliceDelay);
            }

            if (chunk > 0)
            {
                due = FaultPacing.Max(due, paceAllows);
            }

            if (due > now && !await _session.PumpDelayAsync(due - now, output))
            {
                reader.AdvanceTo(buffer.Start);
                return PumpEnd.Gone;
            }

            foreach (var segment in buffer.Slice(0, piece))
            {
                // An empty write would still take a block of the transport's output, which KestrelTcp's
                // transport would then try to send, and take the empty send for a vanished client.
                if (!segment.IsEmpty)
                {
                    output.Write(segment.Span);
                }
            }

            reader.AdvanceTo(buffer.GetPosition(piece));
            var flushed = await output.FlushAsync();
            sent += piece;
            // The pace counts from when the piece was due, not from when a timer happened to fire: timer
            // lateness does not add up, and a pump that waited on a slow client saves up no credit.
            paceAllows = chunk > 0 ? FaultPacing.PacedStart(due, now) + FaultPacing.Duration(piece, rate) : TimeSpan.Zero;
            lastPiece = _session.Now;
            if (flushed.IsCompleted)
            {
                return PumpEnd.Gone;
            }

            if (limit > 0 && sent >= limit)
            {
                return PumpEnd.Limit;
            }
        }
    }

    /// <summary>The write (flush batch) the pump is delivering, with latency: where it ends and when it is due.</summary>
    private struct CurrentWrite
    {
        private TimeSpan _lastDue;

        public long End { get; private set; }

        public TimeSpan Due { get; private set; }

        /// <summary>Moves on to the batch that holds offset <paramref name="sent"/>, drawing its delay (jitter) once.</summary>
        public void Advance(WriteMarks marks, long sent, FaultOptions options)
        {
            if (sent < End)
            {
                return;
            }

            if (!marks.TryNext(sent, out var mark))
            {
                // Bytes without a mark cannot be (the mark is made before they are readable): sent now if they were.
                End = sent;
                Due = TimeSpan.Zero;
                return;
            }

            var delay = FaultPacing.Delay(options.Latency, options.Jitter, Random.Shared.NextDouble());
            Due = FaultPacing.Delivery(mark.At, delay, _lastDue);
            _lastDue = Due;
            End = mark.End;
        }
    }
}

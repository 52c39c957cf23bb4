namespace KestrelTcp.Faults;

/// <summary>
/// The arithmetic of the output pump, without I/O or clocks: how big the next piece is and when it may
/// go. Times are offsets from the pump's start.
/// </summary>
internal static class FaultPacing
{
    /// <summary>How much of a paced rate goes out at once: the contract asks for 100 ms or finer.</summary>
    public static readonly TimeSpan Granularity = TimeSpan.FromMilliseconds(50);

    /// <summary>The largest single send of the pump: what the fault pipe holds before it pauses the handler, at most.</summary>
    public const int MaxPiece = 64 * 1024;

    /// <summary>Bytes sent per step at <paramref name="bytesPerSecond"/>: one <see cref="Granularity"/>'s worth, at least one byte.</summary>
    public static int PacedChunk(long bytesPerSecond)
    {
        var perStep = bytesPerSecond / (TimeSpan.TicksPerSecond / Granularity.Ticks);
        return (int)Math.Clamp(perStep, 1, MaxPiece);
    }

    /// <summary>How long <paramref name="bytes"/> take at <paramref name="bytesPerSecond"/>, rounded up to the tick.</summary>
    public static TimeSpan Duration(long bytes, long bytesPerSecond)
    {
        var ticks = (decimal)bytes * TimeSpan.TicksPerSecond / bytesPerSecond;
        return TimeSpan.FromTicks((long)Math.Ceiling(ticks));
    }

    /// <summary>The latency of one write: <paramref name="latency"/> ± <paramref name="jitter"/> for a uniform <paramref name="random"/> in [0, 1), never below zero.</summary>
    public static TimeSpan Delay(TimeSpan latency, TimeSpan jitter, double random)
    {
        var ticks = latency.Ticks + (long)(((random * 2) - 1) * jitter.Ticks);
        return TimeSpan.FromTicks(Math.Max(0, ticks));
    }

    /// <summary>
    /// When a write made at <paramref name="writtenAt"/> is delivered: its delay later, but never before
    /// the write ahead of it (<paramref name="previousDelivery"/>), so that jitter never reorders.
    /// </summary>
    public static TimeSpan Delivery(TimeSpan writtenAt, TimeSpan delay, TimeSpan previousDelivery) =>
        Max(writtenAt + delay, previousDelivery);

    /// <summary>
    /// The size of the next piece: what is available, cut to the rest of the current write (with latency),
    /// to a slice, to a paced step and to what the byte limit leaves; 0 means nothing may be sent.
    /// Non-positive limits are "none".
    /// </summary>
    public static int Piece(long available, long restOfWrite, int sliceBytes, int pacedChunk, long limitLeft)
    {
        var piece = Math.Min(available, MaxPiece);
        if (restOfWrite > 0)
        {
            piece = Math.Min(piece, restOfWrite);
        }

        if (sliceBytes > 0)
        {
            piece = Math.Min(piece, sliceBytes);
        }

        if (pacedChunk > 0)
        {
            piece = Math.Min(piece, pacedChunk);
        }

        if (limitLeft != long.MaxValue)
        {
            piece = Math.Min(piece, Math.Max(limitLeft, 0));
        }

        return (int)Math.Max(piece, 0);
    }

    /// <summary>
    /// The earliest a paced piece starts, given when the pace allows the next one: never earlier, and no
    /// credit saved up while idle (a quiet pump does not then burst).
    /// </summary>
    public static TimeSpan PacedStart(TimeSpan paceAllows, TimeSpan now) => Max(paceAllows, now);

    public static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}

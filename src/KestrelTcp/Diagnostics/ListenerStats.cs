using KestrelTcp.Connections;
using KestrelTcp.Transport;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// A listener's counters, the single source every view reads (<c>/metrics</c>, <c>/connections</c>,
/// <c>/health</c> and the <c>KestrelTcp</c> meter), so that they agree. Updated once per connection
/// event, and for bytes once per read and per flush (never per byte), so that the byte counters include
/// open connections and never go backwards: summing the open set at scrape time dipped whenever a
/// connection moved from the open set to the closed totals between the two reads.
/// </summary>
internal sealed class ListenerStats
{
    private readonly long[] _closed = new long[Enum.GetValues<CloseReason>().Length];
    private readonly long[] _rejected = new long[Enum.GetValues<RejectReason>().Length];
    private long _accepted;
    private long _peakOpen;

    public long Accepted => Volatile.Read(ref _accepted);

    /// <summary>The most connections open at once since start (the dashboard's peak).</summary>
    public long PeakOpen => Volatile.Read(ref _peakOpen);

    /// <summary>The listener's byte totals, which each connection's transport adds to as it reads and flushes.</summary>
    public TransferTotals Transfer { get; } = new();

    public long BytesReceived => Transfer.BytesReceived;

    public long BytesSent => Transfer.BytesSent;

    public long Closed(CloseReason reason) => Volatile.Read(ref _closed[(int)reason]);

    public long ClosedTotal
    {
        get
        {
            long total = 0;
            for (var i = 0; i < _closed.Length; i++)
            {
                total += Volatile.Read(ref _closed[i]);
            }

            return total;
        }
    }

    public long Rejected(RejectReason reason) => Volatile.Read(ref _rejected[(int)reason]);

    public void OnAccepted() => Interlocked.Increment(ref _accepted);

    // A read and a compare per accept; the exchange only when a new peak is reached.
    public void NoteOpen(long open)
    {
        for (var peak = Volatile.Read(ref _peakOpen); open > peak; peak = Volatile.Read(ref _peakOpen))
        {
            if (Interlocked.CompareExchange(ref _peakOpen, open, peak) == peak)
            {
                return;
            }
        }
    }

    public void OnRejected(RejectReason reason) => Interlocked.Increment(ref _rejected[(int)reason]);

    public void OnClosed(CloseReason reason) => Interlocked.Increment(ref _closed[(int)reason]);
}

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
    /// <summary>Upper bounds, in seconds, of the connection duration histogram: from a probe to an hour-long session.</summary>
    public static readonly double[] DurationBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600];

    private readonly long[] _closed = new long[Enum.GetValues<CloseReason>().Length];
    private readonly long[] _rejected = new long[Enum.GetValues<RejectReason>().Length];
    private readonly long[] _durationCounts = new long[DurationBuckets.Length + 1];
    private readonly Lock _durationLock = new();
    private long _accepted;
    private double _durationSum;

    public long Accepted => Volatile.Read(ref _accepted);

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

    public void OnRejected(RejectReason reason) => Interlocked.Increment(ref _rejected[(int)reason]);

    public void OnClosed(CloseReason reason, double seconds)
    {
        var bucket = Array.BinarySearch(DurationBuckets, seconds);
        bucket = bucket < 0 ? ~bucket : bucket;
        lock (_durationLock)
        {
            _durationCounts[bucket]++;
            _durationSum += seconds;
        }

        // Counted last, so a reader that sees the close also sees its duration (its bytes were published before).
        Interlocked.Increment(ref _closed[(int)reason]);
    }

    /// <summary>A consistent copy of the duration histogram: per-bucket (not cumulative) counts, sum and count.</summary>
    public (long[] Counts, double Sum, long Count) DurationSnapshot()
    {
        lock (_durationLock)
        {
            var counts = (long[])_durationCounts.Clone();
            long count = 0;
            foreach (var c in counts)
            {
                count += c;
            }

            return (counts, _durationSum, count);
        }
    }
}

namespace KestrelTcp.Dashboard;

/// <summary>One sample of a listener: its open connections then, and its rates over the interval that ended then.</summary>
internal readonly record struct HistorySample(long Open, double AcceptedPerSecond, double BytesReceivedPerSecond, double BytesSentPerSecond);

/// <summary>
/// The recent past of one listener, for the dashboard's charts: a fixed ring of samples, the
/// oldest overwritten once it is full, so that its memory is set when it is created and nothing
/// in it grows with connections or time. The rates are derived here from consecutive totals
/// (the same counters <c>/metrics</c> reads), so the TCP paths do nothing for it.
/// </summary>
internal sealed class ListenerHistory
{
    private readonly HistorySample[] _samples;
    private readonly Lock _lock = new();
    private int _next;
    private int _count;
    private bool _hasBaseline;
    private long _accepted;
    private long _received;
    private long _sent;

    public ListenerHistory(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _samples = new HistorySample[capacity];
    }

    public int Capacity => _samples.Length;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>The newest sample, or an empty one before the first.</summary>
    public HistorySample Latest
    {
        get
        {
            lock (_lock)
            {
                return _count == 0 ? default : _samples[(_next - 1 + _samples.Length) % _samples.Length];
            }
        }
    }

    /// <summary>
    /// Records the listener's totals as they are now, <paramref name="elapsedSeconds"/> after the
    /// previous call. The first call only sets the baseline its rates count from (they are 0).
    /// A total that went down (never, for these counters) counts as no change rather than a negative rate.
    /// Rates are per second, rounded to a tenth.
    /// </summary>
    public void Record(double elapsedSeconds, long open, long accepted, long bytesReceived, long bytesSent)
    {
        lock (_lock)
        {
            var sample = new HistorySample(open, 0, 0, 0);
            if (!_hasBaseline || elapsedSeconds > 0)
            {
                if (_hasBaseline)
                {
                    sample = sample with
                    {
                        AcceptedPerSecond = Rate(accepted - _accepted, elapsedSeconds),
                        BytesReceivedPerSecond = Rate(bytesReceived - _received, elapsedSeconds),
                        BytesSentPerSecond = Rate(bytesSent - _sent, elapsedSeconds),
                    };
                }

                // With no time gone by (a clock that jumped), the change is left for the next sample to count.
                _hasBaseline = true;
                _accepted = accepted;
                _received = bytesReceived;
                _sent = bytesSent;
            }

            _samples[_next] = sample;
            _next = (_next + 1) % _samples.Length;
            _count = Math.Min(_count + 1, _samples.Length);
        }
    }

    /// <summary>A copy of the samples, oldest first.</summary>
    public HistorySample[] Snapshot()
    {
        lock (_lock)
        {
            var copy = new HistorySample[_count];
            var start = (_next - _count + _samples.Length) % _samples.Length;
            for (var i = 0; i < _count; i++)
            {
                copy[i] = _samples[(start + i) % _samples.Length];
            }

            return copy;
        }
    }

    private static double Rate(long delta, double seconds) => delta <= 0 ? 0 : Math.Round(delta / seconds, 1);
}

using KestrelTcp.Hosting;

namespace KestrelTcp.Dashboard;

/// <summary>
/// Keeps the dashboard's history: one timer for the whole server, on the injected
/// <see cref="TimeProvider"/>, that once a second reads each listener's open count and totals
/// (what <c>/metrics</c> reads) into that listener's <see cref="ListenerHistory"/>. Nothing is
/// done per connection, and the memory is <see cref="Capacity"/> samples per listener, whatever
/// the load. It runs from the host's start to its stop, the drain included, so the charts are
/// full when a page opens and keep moving while the server drains.
/// </summary>
internal sealed class DashboardSampler : IDisposable
{
    /// <summary>One sample a second.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>Five minutes of one-second samples.</summary>
    public const int Capacity = 300;

    private readonly KestrelTcpRuntime _runtime;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private ITimer? _timer;
    private long _lastTimestamp;
    private bool _sampled;
    private bool _disposed;

    public DashboardSampler(KestrelTcpRuntime runtime, TimeProvider time)
    {
        _runtime = runtime;
        _time = time;
        Histories = [.. runtime.Listeners.Select(_ => new ListenerHistory(Capacity))];
    }

    /// <summary>One history per listener, in the order of <see cref="KestrelTcpRuntime.Listeners"/>.</summary>
    public IReadOnlyList<ListenerHistory> Histories { get; }

    /// <summary>When <see cref="Start"/> ran (the host had started), as a timestamp of the server's clock; 0 before.</summary>
    public long StartedTimestamp { get; private set; }

    /// <summary>When <see cref="Start"/> ran, as a date; null before.</summary>
    public DateTimeOffset? StartedAt { get; private set; }

    /// <summary>Takes the first sample (the baseline) and starts the timer.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_timer is not null || _disposed)
            {
                return;
            }

            StartedTimestamp = _time.GetTimestamp();
            StartedAt = _time.GetUtcNow();
            SampleLocked();
            _timer = _time.CreateTimer(static state => ((DashboardSampler)state!).Sample(), this, Interval, Interval);
        }
    }

    /// <summary>Records one sample of every listener now (the timer's tick).</summary>
    public void Sample()
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                SampleLocked();
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _timer?.Dispose();
            _timer = null;
        }
    }

    private void SampleLocked()
    {
        var now = _time.GetTimestamp();
        var elapsed = _sampled ? _time.GetElapsedTime(_lastTimestamp, now).TotalSeconds : 0;
        _lastTimestamp = now;
        _sampled = true;
        for (var i = 0; i < _runtime.Listeners.Count; i++)
        {
            var listener = _runtime.Listeners[i];
            Histories[i].Record(elapsed, listener.ActiveConnections, listener.Stats.Accepted, listener.BytesReceived, listener.BytesSent);
        }
    }
}

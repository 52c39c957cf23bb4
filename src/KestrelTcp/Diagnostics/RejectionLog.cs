namespace KestrelTcp.Diagnostics;

/// <summary>
/// Rate-limits the log of refused connections to one event per second per listener, carrying the
/// number refused since the last event, so that a flood cannot flood the log.
/// </summary>
internal sealed class RejectionLog(TimeProvider time)
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private long _pending;

    // A second before the first refusal can be: the first one is always logged.
    private long _lastLogged = time.GetTimestamp() - time.TimestampFrequency;

    /// <summary>Notes one refusal; returns the count to log now, or 0 when the last event was under a second ago.</summary>
    public long Note()
    {
        Interlocked.Increment(ref _pending);
        var now = time.GetTimestamp();
        var last = Volatile.Read(ref _lastLogged);
        if (time.GetElapsedTime(last, now) < Interval || Interlocked.CompareExchange(ref _lastLogged, now, last) != last)
        {
            return 0;
        }

        return Interlocked.Exchange(ref _pending, 0);
    }
}

namespace KestrelTcp.Diagnostics;

/// <summary>
/// Rate-limits the log of refused connections to one event per second per listener, carrying the
/// number refused since the last event, so that a flood cannot flood the log.
/// </summary>
internal sealed class RejectionLog
{
    private long _pending;
    private long _lastLoggedMs = long.MinValue / 2;

    /// <summary>Notes one refusal; returns the count to log now, or 0 when the last event was under a second ago.</summary>
    public long Note(long nowMs)
    {
        Interlocked.Increment(ref _pending);
        var last = Volatile.Read(ref _lastLoggedMs);
        if (nowMs - last < 1000 || Interlocked.CompareExchange(ref _lastLoggedMs, nowMs, last) != last)
        {
            return 0;
        }

        return Interlocked.Exchange(ref _pending, 0);
    }
}

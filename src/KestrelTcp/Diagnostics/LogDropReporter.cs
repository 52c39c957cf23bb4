using Serilog.Sinks.Async;

namespace KestrelTcp.Diagnostics;

/// <summary>Sees the async sink's buffer: how many events it had to drop.</summary>
internal sealed class LogDropMonitor : IAsyncLogEventSinkMonitor
{
    private IAsyncLogEventSinkInspector? _inspector;

    /// <summary>Events dropped so far.</summary>
    public long Dropped => Volatile.Read(ref _inspector)?.DroppedMessagesCount ?? 0;

    /// <summary>Whether an async sink reports to this monitor (not when <c>Serilog:WriteTo</c> replaces the console).</summary>
    public bool IsAttached => Volatile.Read(ref _inspector) is not null;

    void IAsyncLogEventSinkMonitor.StartMonitoring(IAsyncLogEventSinkInspector inspector) => Volatile.Write(ref _inspector, inspector);

    void IAsyncLogEventSinkMonitor.StopMonitoring(IAsyncLogEventSinkInspector inspector) => Interlocked.CompareExchange(ref _inspector, null, inspector);
}

/// <summary>
/// Logging never blocks a connection: the console sits behind Serilog's async sink, which drops
/// events when its buffer is full (a console or pipe slower than a burst of closes). Dropped
/// events are not silent: every few seconds this counts them and, if any were lost, says how many
/// in one Warning event (written once the burst has passed, so it gets through).
/// </summary>
internal sealed class LogDropReporter(LogDropMonitor monitor, ILogger<LogDropReporter> logger, TimeProvider time) : BackgroundService
{
    /// <summary>How often the drop count is checked.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private long _reported;

    /// <summary>Logs the events dropped since the last report, if any; returns how many that was.</summary>
    public long ReportDrops()
    {
        var dropped = monitor.Dropped;
        var delta = dropped - _reported;
        if (delta <= 0)
        {
            return 0;
        }

        _reported = dropped;
        Log.LogEventsDropped(logger, delta, dropped);
        return delta;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                ReportDrops();
            }
        }
        catch (OperationCanceledException)
        {
        }

        ReportDrops();
    }
}

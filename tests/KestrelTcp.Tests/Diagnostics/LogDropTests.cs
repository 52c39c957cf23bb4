using KestrelTcp.Diagnostics;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serilog.Sinks.Async;

namespace KestrelTcp.Tests.Diagnostics;

public class LogDropTests
{
    [Fact]
    public void ReportDrops_OnlyNewDrops_OneWarningWithTheCounts()
    {
        var inspector = new FakeInspector();
        var monitor = new LogDropMonitor();
        ((IAsyncLogEventSinkMonitor)monitor).StartMonitoring(inspector);
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var reporter = new LogDropReporter(monitor, factory.CreateLogger<LogDropReporter>(), new TestClock());

        Assert.Equal(0, reporter.ReportDrops());
        inspector.DroppedMessagesCount = 120;
        Assert.Equal(120, reporter.ReportDrops());
        Assert.Equal(0, reporter.ReportDrops());
        inspector.DroppedMessagesCount = 125;
        Assert.Equal(5, reporter.ReportDrops());

        var warnings = logs.Entries.Where(e => e.EventId.Name == "LogEventsDropped").ToList();
        Assert.Equal(2, warnings.Count);
        Assert.All(warnings, w => Assert.Equal(LogLevel.Warning, w.Level));
        Assert.Equal((120L, 120L), ((long)warnings[0]["Dropped"]!, (long)warnings[0]["Total"]!));
        Assert.Equal((5L, 125L), ((long)warnings[1]["Dropped"]!, (long)warnings[1]["Total"]!));

        ((IAsyncLogEventSinkMonitor)monitor).StopMonitoring(inspector);
        Assert.False(monitor.IsAttached);
    }

    [Fact]
    public async Task ExecuteAsync_EveryInterval_ReportsTheDropsSinceTheLastReport()
    {
        var clock = new TestClock();
        var inspector = new FakeInspector();
        var monitor = new LogDropMonitor();
        ((IAsyncLogEventSinkMonitor)monitor).StartMonitoring(inspector);
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        using var reporter = new LogDropReporter(monitor, factory.CreateLogger<LogDropReporter>(), clock);
        var armed = clock.WhenArmed(LogDropReporter.Interval);
        await reporter.StartAsync(CancellationToken.None);
        await armed; // ExecuteAsync runs on a thread of its own: its timer is armed there
        inspector.DroppedMessagesCount = 7;

        // Its timer runs on the clock it was given: a moment before the interval, nothing; at it, one report.
        clock.Advance(LogDropReporter.Interval - TimeSpan.FromMilliseconds(1));
        Assert.Empty(Warnings(logs));
        clock.Advance(TimeSpan.FromMilliseconds(1));
        await TestServer.WaitUntilAsync(() => Task.FromResult(Warnings(logs).Count == 1), because: "the report at the interval");
        Assert.Equal((7L, 7L), ((long)Warnings(logs)[0]["Dropped"]!, (long)Warnings(logs)[0]["Total"]!));

        // Stopping reports what was dropped since, without waiting for the next interval.
        inspector.DroppedMessagesCount = 9;
        await reporter.StopAsync(CancellationToken.None);
        Assert.Equal(2, Warnings(logs).Count);
        Assert.Equal((2L, 9L), ((long)Warnings(logs)[1]["Dropped"]!, (long)Warnings(logs)[1]["Total"]!));
    }

    private static List<CapturingLoggerProvider.LogEntry> Warnings(CapturingLoggerProvider logs) =>
        [.. logs.Entries.Where(e => e.EventId.Name == "LogEventsDropped")];

    [Fact]
    public async Task Server_ConsoleSinkReportsItsDropsToTheMonitor()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var monitor = server.Services.GetRequiredService<LogDropMonitor>();
        Assert.True(monitor.IsAttached);
        Assert.Equal(0, monitor.Dropped);
    }

    private sealed class FakeInspector : IAsyncLogEventSinkInspector
    {
        public int BufferSize => 10_000;

        public int Count => 0;

        public long DroppedMessagesCount { get; set; }
    }
}

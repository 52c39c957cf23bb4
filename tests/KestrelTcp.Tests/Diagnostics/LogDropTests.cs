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
        var reporter = new LogDropReporter(monitor, factory.CreateLogger<LogDropReporter>(), TimeProvider.System);

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

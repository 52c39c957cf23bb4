using System.Diagnostics.Metrics;
using KestrelTcp.Diagnostics;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace KestrelTcp.Tests.Diagnostics;

/// <summary>The "KestrelTcp" meter (what dotnet-counters and OpenTelemetry read) shows the figures of /metrics.</summary>
public class MeterTests
{
    [Fact]
    public async Task Meter_AfterTraffic_SameFiguresAsMetricsEndpoint()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"), TestServer.Listener("time", "Time"));
        var factory = server.Services.GetRequiredService<IMeterFactory>();
        var observed = new Dictionary<string, double>();
        var durations = new List<(double Seconds, string Listener)>();
        using var meterListener = new MeterListener();
        // Other test servers run in parallel, each with its own meter: listen only to this server's.
        meterListener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == KestrelTcpMetrics.MeterName && instrument.Meter.Scope == factory)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        meterListener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (observed)
            {
                observed[Key(instrument.Name, tags)] = value;
            }
        });
        meterListener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            lock (durations)
            {
                durations.Add((value, Tag(tags, "listener")));
            }
        });
        meterListener.Start();

        await using var open = await server.ConnectAsync("echo");
        await open.SendAsync("kept");
        await open.ReadExactlyAsync(4);
        for (var i = 0; i < 5; i++)
        {
            await using (var echo = await server.ConnectAsync("echo"))
            {
                await echo.SendAsync("abc");
                echo.ShutdownSend();
                await echo.ReadToEndAsync();
            }

            await using var time = await server.ConnectAsync("time");
            await time.ReadToEndAsync();
        }

        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Listeners.Sum(l => l.ActiveConnections) == 1), because: "closes");
        await TestServer.WaitUntilAsync(() => Task.FromResult(Count(durations) == 10), because: "10 durations recorded");
        meterListener.RecordObservableInstruments();
        var metrics = await MetricsSnapshot.ScrapeAsync(server);

        foreach (var (listener, handler) in new[] { ("echo", "Echo"), ("time", "Time") })
        {
            Assert.Equal(metrics.Active(listener, handler), observed[$"kestreltcp.connections.active|handler={handler},listener={listener}"]);
            Assert.Equal(metrics.Accepted(listener, handler), observed[$"kestreltcp.connections.accepted|handler={handler},listener={listener}"]);
            Assert.Equal(metrics.BytesReceived(listener), observed[$"kestreltcp.bytes.received|listener={listener}"]);
            Assert.Equal(metrics.BytesSent(listener), observed[$"kestreltcp.bytes.sent|listener={listener}"]);
            foreach (var reason in new[] { "client", "server", "idle_timeout", "line_too_long", "shutdown", "error" })
            {
                Assert.Equal(metrics.Closed(listener, reason), observed[$"kestreltcp.connections.closed|listener={listener},reason={reason}"]);
            }

            foreach (var reason in new[] { "max_connections", "max_connections_per_client", "shutting_down" })
            {
                Assert.Equal(metrics.Rejected(listener, reason), observed[$"kestreltcp.connections.rejected|listener={listener},reason={reason}"]);
            }

            lock (durations)
            {
                var mine = durations.Where(d => d.Listener == listener).Select(d => d.Seconds).ToList();
                Assert.Equal(metrics.DurationCount(listener), mine.Count);
                Assert.Equal(metrics.DurationSum(listener), mine.Sum(), 9);
            }
        }

        Assert.Equal(1, observed["kestreltcp.connections.active|handler=Echo,listener=echo"]);
        Assert.Equal(5 * 3 + 4, observed["kestreltcp.bytes.received|listener=echo"]);
    }

    private static int Count(List<(double, string)> durations)
    {
        lock (durations)
        {
            return durations.Count;
        }
    }

    private static string Key(string name, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var list = new List<string>();
        foreach (var tag in tags)
        {
            list.Add($"{tag.Key}={tag.Value}");
        }

        list.Sort(StringComparer.Ordinal);
        return name + "|" + string.Join(",", list);
    }

    private static string Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string name)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == name)
            {
                return tag.Value?.ToString() ?? "";
            }
        }

        return "";
    }
}

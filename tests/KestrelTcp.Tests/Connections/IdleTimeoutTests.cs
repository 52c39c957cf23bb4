using System.Diagnostics;
using KestrelTcp.Tests.Hosting;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Connections;

/// <summary>IdleTimeout over real sockets. It rides Kestrel's ~1 s heartbeat, so a 1 s timeout closes within about 1–3 s.</summary>
public class IdleTimeoutTests
{
    private const string Closed = "kestreltcp_connections_closed_total";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(6);

    [Fact]
    public async Task IdleTimeout_EchoReceivesNothing_ClosedGracefullyAndCountedAsIdle()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:01")));
        await using var client = await server.ConnectAsync("echo");
        var idle = Stopwatch.StartNew();

        Assert.True(await client.IsClosedGracefullyAsync(Bound), "closed by reset, not FIN");
        Assert.InRange(idle.Elapsed, TimeSpan.FromSeconds(0.9), Bound);
        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, Closed, ("listener", "echo"), ("reason", "idle_timeout")));
        Assert.Equal(1, PrometheusText.Sum(metrics, Closed, "echo"));
    }

    [Fact]
    public async Task IdleTimeout_GreetingSilentAfterBanner_BannerThenFinAndNothingElse()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting", ("IdleTimeout", "00:00:01")));
        await using var client = await server.ConnectAsync("greeting");

        var all = await client.ReadToEndTextAsync(Bound);

        Assert.StartsWith("Welcome! You have connected to 127.0.0.1 on port ", all);
        Assert.EndsWith("\r\n", all);
        Assert.Equal(1, all.Count(c => c == '\n'));
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync(Closed, ("listener", "greeting"), ("reason", "idle_timeout")));
    }

    [Fact]
    public async Task IdleTimeout_TrafficMoreOftenThanTheTimeout_KeepsTheConnectionOpen()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:01")));
        await using var client = await server.ConnectAsync("echo");

        var open = Stopwatch.StartNew();
        while (open.Elapsed < TimeSpan.FromSeconds(2.5))
        {
            await client.SendAsync("x");
            Assert.Equal("x"u8.ToArray(), await client.ReadExactlyAsync(1));
            await Task.Delay(250);
        }

        Assert.Equal(0, await server.MetricAsync(Closed, ("listener", "echo"), ("reason", "idle_timeout")));
        Assert.True(await client.IsClosedGracefullyAsync(Bound));
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync(Closed, ("listener", "echo"), ("reason", "idle_timeout")));
    }

    [Fact]
    public async Task IdleTimeout_SlowlorisFloodOverTheLimit_RefusedOrClosedIdleAndNothingLeaks()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting",
            ("IdleTimeout", "00:00:01"), ("MaxConnections", "10")));

        // Thirty clients each dribbling a line one byte every two seconds, never finishing it.
        var results = await Task.WhenAll(Enumerable.Range(0, 30).Select(async _ =>
        {
            await using var client = await server.ConnectAsync("greeting");
            var first = await client.ReadLineAsync(Bound);
            if (first == "ERR busy\r\n")
            {
                return "busy";
            }

            var dribbling = Stopwatch.StartNew();
            while (dribbling.Elapsed < Bound)
            {
                await client.SendAsync("G");
                try
                {
                    var rest = await client.ReadToEndAsync(TimeSpan.FromSeconds(2));
                    return rest.Length == 0 ? "closed" : "unexpected: " + System.Text.Encoding.UTF8.GetString(rest);
                }
                catch (OperationCanceledException)
                {
                    // Still open two seconds later: dribble the next byte.
                }
            }

            return "still open";
        }));

        Assert.Equal(10, results.Count(r => r == "closed"));
        Assert.Equal(20, results.Count(r => r == "busy"));
        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(10, PrometheusText.Value(metrics, Closed, ("listener", "greeting"), ("reason", "idle_timeout")));
        Assert.Equal(20, PrometheusText.Value(metrics, "kestreltcp_connections_rejected_total", ("listener", "greeting"), ("reason", "max_connections")));
        Assert.Equal(0, PrometheusText.Value(metrics, "kestreltcp_connections_active", ("listener", "greeting"), ("handler", "Greeting")));
    }

    [Fact]
    public async Task IdleTimeout_EchoClientThatNeverReads_AbortedWhenTheHandlerCannotFinish()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:01")));
        await using var client = await server.ConnectAsync("echo");
        client.Socket.Blocking = false;
        await GracefulShutdownTests.PushUntilStalledAsync(client.Socket);

        // Echo is blocked writing to a client that does not read: the canceled read cannot reach it, so it is aborted.
        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("echo")!.OpenCount == 0), Bound, "the stuck connection to be aborted");
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync(Closed, ("listener", "echo"), ("reason", "idle_timeout")));
    }
}

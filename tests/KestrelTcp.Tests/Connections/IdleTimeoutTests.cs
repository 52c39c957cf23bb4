using KestrelTcp.Connections;
using KestrelTcp.Tests.Hosting;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Transport;

namespace KestrelTcp.Tests.Connections;

/// <summary>
/// IdleTimeout over real sockets, on a <see cref="TestClock"/>: the scan runs once a second of the
/// server's clock, inside <see cref="Microsoft.Extensions.Time.Testing.FakeTimeProvider.Advance"/>,
/// so what it decided is known the moment the test has advanced the clock to it.
/// </summary>
public class IdleTimeoutTests
{
    private const string Closed = "kestreltcp_connections_closed_total";
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task IdleTimeout_EchoReceivesNothing_ClosedGracefullyAtTheTimeoutAndCountedAsIdle()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:03")));
        await using var client = await server.ConnectAsync("echo");
        var tracked = Assert.Single(await server.OpenConnectionsAsync("echo"));

        // The scans at 1 s and 2 s of silence leave it alone; the one at 3 s asks it to finish.
        AdvanceSeconds(clock, 2);
        Assert.Equal(CloseReason.None, tracked.CloseReason);
        AdvanceSeconds(clock, 1);
        Assert.Equal(CloseReason.IdleTimeout, tracked.CloseReason);

        Assert.True(await client.IsClosedGracefullyAsync(), "closed by reset, not FIN");
        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, Closed, ("listener", "echo"), ("reason", "idle_timeout")));
        Assert.Equal(1, PrometheusText.Sum(metrics, Closed, "echo"));
        Assert.Equal(3, PrometheusText.Value(metrics, "kestreltcp_connection_duration_seconds_sum", ("listener", "echo")));
    }

    [Fact]
    public async Task IdleTimeout_GreetingSilentAfterBanner_BannerThenFinAndNothingElse()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("greeting", "Greeting", ("IdleTimeout", "00:00:02")));
        await using var client = await server.ConnectAsync("greeting");
        var banner = await client.ReadLineAsync();
        var tracked = Assert.Single(await server.OpenConnectionsAsync("greeting"));

        AdvanceSeconds(clock, 1);
        Assert.Equal(CloseReason.None, tracked.CloseReason);
        AdvanceSeconds(clock, 1);
        Assert.Equal(CloseReason.IdleTimeout, tracked.CloseReason);

        // An idle close says nothing (no "Server shutting down"): the banner was the only line.
        Assert.Equal($"Welcome! You have connected to 127.0.0.1 on port {server.Port("greeting")}\r\n", banner);
        Assert.Empty(await client.ReadToEndAsync());
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync(Closed, ("listener", "greeting"), ("reason", "idle_timeout")));
    }

    [Fact]
    public async Task IdleTimeout_TrafficMoreOftenThanTheTimeout_KeepsTheConnectionOpen()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:03")));
        await using var client = await server.ConnectAsync("echo");
        var tracked = Assert.Single(await server.OpenConnectionsAsync("echo"));

        // A byte every 2 s for 8 s: more than twice the timeout since the connection opened.
        for (var i = 0; i < 4; i++)
        {
            AdvanceSeconds(clock, 2);
            await client.SendAsync("x");
            Assert.Equal("x"u8.ToArray(), await client.ReadExactlyAsync(1));
        }

        Assert.Equal(CloseReason.None, tracked.CloseReason);
        Assert.Equal(0, await server.MetricAsync(Closed, ("listener", "echo"), ("reason", "idle_timeout")));

        // Then silence: the timeout counts from the last byte received, not from the connection's start.
        AdvanceSeconds(clock, 2);
        Assert.Equal(CloseReason.None, tracked.CloseReason);
        AdvanceSeconds(clock, 1);
        Assert.Equal(CloseReason.IdleTimeout, tracked.CloseReason);
        Assert.True(await client.IsClosedGracefullyAsync());
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync(Closed, ("listener", "echo"), ("reason", "idle_timeout")));
    }

    [Fact]
    public async Task IdleTimeout_SlowlorisFloodOverTheLimit_RefusedOrClosedIdleAndNothingLeaks()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("greeting", "Greeting",
            ("IdleTimeout", "00:00:02"), ("MaxConnections", "10")));

        // Thirty clients each start a line with one byte and would dribble the next only after 3 s.
        var clients = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => server.ConnectAsync("greeting")));
        var first = await Task.WhenAll(clients.Select(c => c.ReadLineAsync()));
        Assert.Equal(20, first.Count(line => line == "ERR busy\r\n"));
        var accepted = clients.Where((_, i) => first[i].StartsWith("Welcome!", StringComparison.Ordinal)).ToList();
        Assert.Equal(10, accepted.Count);
        await Task.WhenAll(accepted.Select(c => c.SendAsync("G")));
        var tracked = await server.OpenConnectionsAsync("greeting", 10);
        await TestServer.WaitUntilAsync(() => Task.FromResult(tracked.All(t => t.Transfer.BytesReceived == 1)), because: "every first byte to arrive");

        AdvanceSeconds(clock, 1);
        Assert.All(tracked, t => Assert.Equal(CloseReason.None, t.CloseReason));
        AdvanceSeconds(clock, 1);
        Assert.All(tracked, t => Assert.Equal(CloseReason.IdleTimeout, t.CloseReason));

        var rest = await Task.WhenAll(accepted.Select(c => c.ReadToEndAsync()));
        Assert.All(rest, Assert.Empty);
        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(10, PrometheusText.Value(metrics, Closed, ("listener", "greeting"), ("reason", "idle_timeout")));
        Assert.Equal(10, PrometheusText.Sum(metrics, Closed, "greeting"));
        Assert.Equal(20, PrometheusText.Value(metrics, "kestreltcp_connections_rejected_total", ("listener", "greeting"), ("reason", "max_connections")));
        Assert.Equal(0, PrometheusText.Value(metrics, "kestreltcp_connections_active", ("listener", "greeting"), ("handler", "Greeting")));
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task IdleTimeout_EchoClientThatNeverReads_AbortedAsLongAgainAfterTheCloseRequest()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:02")));
        await using var client = await server.ConnectAsync("echo");
        client.Socket.Blocking = false;
        await GracefulShutdownTests.PushUntilStalledAsync(client.Socket);
        var tracked = Assert.Single(await server.OpenConnectionsAsync("echo"));
        var transport = Assert.IsType<TcpConnection>(tracked.Transfer);

        // At 2 s it is asked to finish; Echo is blocked writing to a client that does not read, so the
        // canceled read cannot reach it. It is aborted 2 s later, not before.
        AdvanceSeconds(clock, 2);
        Assert.Equal(CloseReason.IdleTimeout, tracked.CloseReason);
        Assert.False(transport.IsClosed);
        AdvanceSeconds(clock, 1);
        Assert.False(transport.IsClosed, "aborted before as long again as the timeout");
        AdvanceSeconds(clock, 1);
        Assert.True(transport.IsClosed, "not aborted as long again as the timeout after the close request");

        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync(Closed, ("listener", "echo"), ("reason", "idle_timeout")));
    }

    /// <summary>Advances one second at a time, as the scan's timer would see a real clock pass.</summary>
    internal static void AdvanceSeconds(TestClock clock, int seconds)
    {
        for (var i = 0; i < seconds; i++)
        {
            clock.Advance(Second);
        }
    }
}

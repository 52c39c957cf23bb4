using KestrelTcp.Tests.Hosting;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Connections;

/// <summary>Clients that send without reading: the server must stop reading from them, not buffer without bound.</summary>
public class BackpressureTests
{
    private const long MemoryBudget = 64L * 1024 * 1024;

    [Fact]
    public async Task Echo_TwentyClientsThatNeverRead_ServerStopsReadingAndResidentMemoryGrowsLessThan64MB()
    {
        using var server = await ChildServer.StartAsync(("Serilog:MinimumLevel", "Warning"));
        await using (var warmup = await server.ConnectAsync("echo"))
        {
            await warmup.SendAsync("warm");
            Assert.Equal("warm"u8.ToArray(), await warmup.ReadExactlyAsync(4));
        }

        await server.MetricsAsync();
        var before = server.ResidentBytes();

        var clients = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => server.ConnectAsync("echo")));
        var pushed = await Task.WhenAll(clients.Select(c =>
        {
            c.Socket.Blocking = false;
            return GracefulShutdownTests.PushUntilStalledAsync(c.Socket, limit: 100L * 1024 * 1024, stall: TimeSpan.FromMilliseconds(500));
        }));

        // Every client stalled long before its 100 MB: the server stopped reading from it.
        Assert.All(pushed, p => Assert.True(p < 100L * 1024 * 1024, $"a client pushed {p} bytes without stalling"));
        var received = await ReceivedAsync(server);
        await Task.Delay(300);
        Assert.Equal(received, await ReceivedAsync(server));

        var after = server.ResidentBytes();
        Assert.True(after - before < MemoryBudget,
            $"resident memory grew {(after - before) / 1048576.0:0.0} MB (from {before / 1048576.0:0.0} MB) with {pushed.Sum() / 1048576.0:0.0} MB pushed by 20 clients, {received / 1048576.0:0.0} MB of it read by the server");

        // Other clients are still served.
        await using var other = await server.ConnectAsync("echo");
        await other.SendAsync("still served");
        Assert.Equal("still served"u8.ToArray(), await other.ReadExactlyAsync(12));
        foreach (var client in clients)
        {
            client.Reset();
        }
    }

    [Fact]
    public async Task Greeting_ClientSendsLinesWithoutReading_ServerStopsReadingAndServesOthers()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting"));
        await using var flooder = await server.ConnectAsync("greeting");
        flooder.Socket.Blocking = false;
        var lines = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("a line that wants an answer\n", 2400)));
        var pushed = await GracefulShutdownTests.PushUntilStalledAsync(flooder.Socket, limit: 200L * 1024 * 1024, stall: TimeSpan.FromMilliseconds(500), pattern: lines);
        var stalled = pushed < 200L * 1024 * 1024;

        Assert.True(stalled, $"{pushed} bytes of lines were taken without the server ever pushing back");
        var received = await server.MetricAsync("kestreltcp_bytes_received_total", ("listener", "greeting"));
        await Task.Delay(300);
        Assert.Equal(received, await server.MetricAsync("kestreltcp_bytes_received_total", ("listener", "greeting")));

        await using var other = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await other.ReadLineAsync());
        await other.SendAsync("me\n");
        Assert.Equal("Hello, me!\r\n", await other.ReadLineAsync());
    }

    private static async Task<double> ReceivedAsync(ChildServer server) =>
        PrometheusText.Value(await server.MetricsAsync(), "kestreltcp_bytes_received_total", ("listener", "echo"));
}

using KestrelTcp.Hosting;
using KestrelTcp.Tests.Hosting;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Connections;

/// <summary>Clients that send without reading: the server must stop reading from them, not buffer without bound.</summary>
public class BackpressureTests
{
    private const long MemoryBudget = 64L * 1024 * 1024;

    // What a connection may hold received and not yet answered: the transport's read-ahead bound, with
    // as much again as margin. A server that went on reading would be megabytes past it.
    private const double ReadAhead = 2.0 * KestrelTcpHostingExtensions.MaxReadBufferSize;

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

        // Every client stalled long before its 100 MB: the server stopped reading from it. And what it
        // did read it has written back (Echo counts a write as sent when it hands it to the transport),
        // all but at most what it may read ahead per connection: a server that went on reading into
        // memory would be megabytes past that. An invariant, not a quiet moment waited for.
        Assert.All(pushed, p => Assert.True(p < 100L * 1024 * 1024, $"a client pushed {p} bytes without stalling"));
        var metrics = await server.MetricsAsync();
        var received = PrometheusText.Value(metrics, "kestreltcp_bytes_received_total", ("listener", "echo"));
        var unanswered = received - PrometheusText.Value(metrics, "kestreltcp_bytes_sent_total", ("listener", "echo"));
        Assert.InRange(unanswered, 0, clients.Length * ReadAhead);
        Assert.True(received < pushed.Sum(), $"the server read all {received} bytes pushed: nothing waits in the socket buffers");

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

        // Every line read was answered (a 28-byte line, a 37-byte reply) but at most what the server
        // may read ahead: a server that went on reading without its replies getting out would be far past it.
        var banner = $"Welcome! You have connected to 127.0.0.1 on port {server.Port("greeting")}\r\n".Length;
        var received = await server.MetricAsync("kestreltcp_bytes_received_total", ("listener", "greeting"));
        var replies = (await server.MetricAsync("kestreltcp_bytes_sent_total", ("listener", "greeting")) - banner) / 37;
        Assert.Equal(Math.Floor(replies), replies);
        Assert.InRange(received - (replies * 28), 0, ReadAhead);
        Assert.True(received < pushed, $"the server read all {received} bytes pushed: nothing waits in the socket buffers");

        await using var other = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await other.ReadLineAsync());
        await other.SendAsync("me\n");
        Assert.Equal("Hello, me!\r\n", await other.ReadLineAsync());
    }
}

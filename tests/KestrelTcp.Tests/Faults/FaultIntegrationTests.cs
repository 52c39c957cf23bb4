using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using KestrelTcp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace KestrelTcp.Tests.Faults;

/// <summary>
/// Every fault through the real server, real Kestrel and real sockets on loopback port 0, over both
/// transports: what a TCP client can observe of it, with timing bounds that hold on a loaded machine.
/// Faults measured to the tick are <see cref="FaultMiddlewareTests"/>' part, on a clock the test moves;
/// rates and piece sizes seen by a client are <see cref="FaultTimingTests"/>', run alone.
/// </summary>
public class FaultIntegrationTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task Latency_EchoRoundTrip_TakesAtLeastTheLatency_BytesCountedTrue(string transport)
    {
        await using var server = await StartAsync(transport, "Echo", ("Latency", "00:00:00.200"));
        await using (var client = await server.ConnectAsync("echo"))
        {
            for (var i = 0; i < 3; i++)
            {
                var stopwatch = Stopwatch.StartNew();
                await client.SendAsync($"ping{i}");
                Assert.Equal($"ping{i}", Encoding.ASCII.GetString(await client.ReadExactlyAsync(5)));
                output.WriteLine($"round trip {i}: {stopwatch.Elapsed.TotalMilliseconds:0.0} ms");
                Assert.InRange(stopwatch.Elapsed, 200 * Ms, TimeSpan.FromSeconds(3));
            }
        }

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(15, PrometheusText.Value(metrics, "kestreltcp_bytes_received_total", ("listener", "echo")));
        Assert.Equal(15, PrometheusText.Value(metrics, "kestreltcp_bytes_sent_total", ("listener", "echo")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_faults_total", ("listener", "echo"), ("fault", "latency")));
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task LimitBytes_FinAfterExactlyThatManyBytes(string transport)
    {
        await using var server = await StartAsync(transport, "Echo", ("LimitBytes", "40"));
        await using (var client = await server.ConnectAsync("echo"))
        {
            var data = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 10).Select(i => $"line{i:00}\r\n")));
            Assert.Equal(80, data.Length);
            await client.SendAsync(data);

            // ReadToEnd throws on a reset: this is a FIN, after exactly 40 bytes.
            Assert.Equal(data[..40], await client.ReadToEndAsync());
        }

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(40, PrometheusText.Value(metrics, "kestreltcp_bytes_sent_total", ("listener", "echo")));
        Assert.Equal(80, PrometheusText.Value(metrics, "kestreltcp_bytes_received_total", ("listener", "echo")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_closed_total", ("listener", "echo"), ("reason", "server")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_faults_total", ("listener", "echo"), ("fault", "limit_bytes")));
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task ResetAfterBytes_One_FirstByteGetsAReset(string transport)
    {
        await using var server = await StartAsync(transport, "Echo", ("ResetAfterBytes", "1"));
        await using (var client = await server.ConnectAsync("echo"))
        {
            await client.SendAsync("x");
            Assert.Equal(SocketError.ConnectionReset, await EndOfAsync(client.Socket));
        }

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(0, PrometheusText.Value(metrics, "kestreltcp_bytes_sent_total", ("listener", "echo")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_closed_total", ("listener", "echo"), ("reason", "server")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_faults_total", ("listener", "echo"), ("fault", "reset_after_bytes")));
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task ResetAfter_ResetThatLongAfterTheConnectionOpened(string transport)
    {
        await using var server = await StartAsync(transport, "Echo", ("ResetAfter", "00:00:00.300"));
        var stopwatch = Stopwatch.StartNew();
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("still echoed before the reset");
        Assert.Equal("still echoed before the reset", Encoding.ASCII.GetString(await client.ReadExactlyAsync(29)));

        Assert.Equal(SocketError.ConnectionReset, await EndOfAsync(client.Socket));
        output.WriteLine($"reset after {stopwatch.Elapsed.TotalMilliseconds:0} ms");
        Assert.InRange(stopwatch.Elapsed, 300 * Ms, TimeSpan.FromSeconds(5));
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task ConnectDelay_GreetingBannerComesThatMuchLater(string transport)
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, Transport(transport),
            TestServer.Listener("greeting", "Greeting", ("Faults:ConnectDelay", "00:00:03")));
        var armed = clock.WhenArmed(TimeSpan.FromSeconds(3));
        await using var client = await server.ConnectAsync("greeting");
        await armed;

        Assert.True(await NothingWithinAsync(client.Socket, TimeSpan.FromMilliseconds(200)), "the banner came before its delay");
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.StartsWith("Welcome! You have connected to 127.0.0.1", await client.ReadLineAsync());
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task Timeout_NoDataEitherWay_GracefulCloseAfterTheTime(string transport)
    {
        await using var server = await StartAsync(transport, "Echo", ("Timeout", "00:00:00.500"));
        var stopwatch = Stopwatch.StartNew();
        await using (var client = await server.ConnectAsync("echo"))
        {
            await client.SendAsync("anyone there?");
            Assert.True(await NothingWithinAsync(client.Socket, TimeSpan.FromMilliseconds(250)), "data or a close before the timeout");
            Assert.Empty(await client.ReadToEndAsync());
            output.WriteLine($"FIN after {stopwatch.Elapsed.TotalMilliseconds:0} ms");
            Assert.InRange(stopwatch.Elapsed, 500 * Ms, TimeSpan.FromSeconds(5));
        }

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(0, PrometheusText.Value(metrics, "kestreltcp_bytes_sent_total", ("listener", "echo")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_closed_total", ("listener", "echo"), ("reason", "server")));
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task Timeout_Zero_HeldUntilTheClientLeaves(string transport)
    {
        await using var server = await StartAsync(transport, "Echo", ("Timeout", "00:00:00"));
        await using (var client = await server.ConnectAsync("echo"))
        {
            await client.SendAsync("anyone there?");
            Assert.True(await NothingWithinAsync(client.Socket, TimeSpan.FromMilliseconds(300)), "data or a close from a held connection");
            Assert.Single(await server.OpenConnectionsAsync("echo"));
            client.ShutdownSend();
            Assert.Empty(await client.ReadToEndAsync());
        }

        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync("kestreltcp_connections_closed_total", ("listener", "echo"), ("reason", "client")));
    }

    [Fact]
    public async Task Probability_Half_AppliesToRoughlyHalfOf200Connections()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("time", "Time", ("Faults:Latency", "00:00:00.001"), ("Faults:Probability", "0.5")));
        for (var batch = 0; batch < 10; batch++)
        {
            await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
            {
                await using var client = await server.ConnectAsync("time");
                Assert.EndsWith("\r\n", await client.ReadToEndTextAsync());
            }));
        }

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(200, PrometheusText.Value(metrics, "kestreltcp_connections_accepted_total", ("listener", "time"), ("handler", "Time")));
        output.WriteLine($"faulted: {PrometheusText.Value(metrics, "kestreltcp_faults_total", ("listener", "time"), ("fault", "latency"))} of 200");
        // Binomial(200, 0.5): mean 100, standard deviation 7.1; 70-130 is more than four of them.
        Assert.InRange(PrometheusText.Value(metrics, "kestreltcp_faults_total", ("listener", "time"), ("fault", "latency")), 70, 130);
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task CloseDelay_TimeWritesAtOnceThenClosesThatMuchLater(string transport)
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, Transport(transport),
            TestServer.Listener("time", "Time", ("Faults:CloseDelay", "00:00:03")));
        var armed = clock.WhenArmed(TimeSpan.FromSeconds(3));
        await using var client = await server.ConnectAsync("time");

        Assert.Equal("Wed Jan 29 19:14:15 2014\r\n", await client.ReadLineAsync());
        await armed;
        Assert.True(await NothingWithinAsync(client.Socket, TimeSpan.FromMilliseconds(200)), "closed before the close delay");
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Empty(await client.ReadToEndAsync());
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task ClientThatNeverReads_FaultedEcho_StopsReadingWithBoundedBuffers(string transport)
    {
        await using var server = await StartAsync(transport, "Echo", ("Latency", "00:00:00.050"));
        await using var flooder = await server.ConnectAsync("echo");
        flooder.Socket.Blocking = false;
        var pushed = await Hosting.GracefulShutdownTests.PushUntilStalledAsync(flooder.Socket, limit: 100L * 1024 * 1024, stall: TimeSpan.FromMilliseconds(500));
        Assert.True(pushed < 100L * 1024 * 1024, $"{pushed} bytes taken without the server pushing back");

        // Read and not yet sent: the transport's read-ahead, Echo's one read, our pipe and the pump's one
        // piece (each at most 128 KiB) — a server that buffered the flood would be megabytes past it.
        var metrics = await server.MetricsAsync();
        var received = PrometheusText.Value(metrics, "kestreltcp_bytes_received_total", ("listener", "echo"));
        var sent = PrometheusText.Value(metrics, "kestreltcp_bytes_sent_total", ("listener", "echo"));
        output.WriteLine($"pushed {pushed} bytes before stalling; server received {received}, sent {sent}, holds {received - sent}");
        Assert.InRange(received - sent, 0, 1024 * 1024);
        Assert.True(received < pushed, $"the server read all {received} bytes pushed");

        await using var other = await server.ConnectAsync("echo");
        await other.SendAsync("still served");
        Assert.Equal("still served"u8.ToArray(), await other.ReadExactlyAsync(12));
        flooder.Reset();
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task Drain_FaultedGreeting_CloseRequestReachesTheHandlerThroughTheFaults(string transport)
    {
        await using var server = await StartAsync(transport, "Greeting", ("Latency", "00:00:00.100"), ("SliceBytes", "8"));
        await using var client = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await client.ReadLineAsync());

        var stopped = server.RequestStop();
        Assert.Equal("Server shutting down\r\n", await client.ReadLineAsync());
        Assert.Empty(await client.ReadToEndAsync());
        await stopped.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Metrics_OnlyTheConfiguredFaultsOfListenersWithFaults_FromZero()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("plain", "Echo"),
            TestServer.Listener("faulty", "Echo", ("Faults:Latency", "00:00:00.010"), ("Faults:Jitter", "00:00:00.005"), ("Faults:CloseDelay", "00:00:00.010")),
            TestServer.Listener("inert", "Echo", ("Faults:Probability", "0.5")));
        var metrics = await server.MetricsAsync();

        Assert.Contains("# TYPE kestreltcp_faults_total counter", metrics, StringComparison.Ordinal);
        var samples = PrometheusText.Samples(metrics).Where(s => s.Name == "kestreltcp_faults_total").ToList();
        Assert.Equal(["faulty/close_delay=0", "faulty/latency=0"],
            samples.Select(s => $"{s.Labels["listener"]}/{s.Labels["fault"]}={s.Value}").Order(StringComparer.Ordinal));
        Assert.All(samples, s => Assert.Equal(2, s.Labels.Count));

        // The family passes Prometheus's own linter without a single lint.
        var family = string.Join('\n', metrics.Split('\n').Where(l => l.Contains("kestreltcp_faults", StringComparison.Ordinal))) + "\n";
        Assert.Equal((0, (IReadOnlyList<string>)[]), await Promtool.CheckMetricsAsync(family));
    }

    internal static Dictionary<string, string?> Transport(string kind) => new() { ["KestrelTcp:Transport:Kind"] = kind };

    internal static Task<TestServer> StartAsync(string transport, string handler, params (string Key, string? Value)[] faults) =>
        TestServer.StartAsync(Transport(transport),
            TestServer.Listener(handler.ToLowerInvariant(), handler, [.. faults.Select(f => ($"Faults:{f.Key}", f.Value))]));

    /// <summary>
    /// True when nothing (no byte, no FIN, no reset) arrives within <paramref name="wait"/>: an awaited receive,
    /// canceled, rather than a blocking poll, which would hold one of the few thread-pool threads of a
    /// 2-core machine from the server's timers.
    /// </summary>
    private static async Task<bool> NothingWithinAsync(Socket socket, TimeSpan wait)
    {
        using var cts = new CancellationTokenSource(wait);
        try
        {
            await socket.ReceiveAsync(new byte[1], SocketFlags.Peek, cts.Token);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>How the server ended the connection: null for a FIN (a read of 0), else the socket error of the read (a reset).</summary>
    private static async Task<SocketError?> EndOfAsync(Socket socket)
    {
        var buffer = new byte[1024];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
            }

            return null;
        }
        catch (SocketException ex)
        {
            return ex.SocketErrorCode;
        }
    }
}

using System.Text;
using KestrelTcp.Connections;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Diagnostics;

/// <summary>
/// /metrics against real clients: after connections have come and gone, every counter moved by
/// exactly what happened. Every scrape is also checked against the format's rules.
/// </summary>
public class MetricsTests
{
    private const int N = 20;

    [Fact]
    public async Task Echo_ConnectionsComeAndGo_CountsAndBytesExact()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var before = await MetricsSnapshot.ScrapeAsync(server);

        long sent = 0, received = 0;
        await Task.WhenAll(Enumerable.Range(0, N).Select(async i =>
        {
            await using var client = await server.ConnectAsync("echo");
            var payload = Enumerable.Range(0, 1 + (i * 997)).Select(b => (byte)b).ToArray();
            await client.SendAsync(payload);
            client.ShutdownSend();
            var echoed = await client.ReadToEndAsync();
            Assert.Equal(payload, echoed);
            Interlocked.Add(ref sent, payload.Length);
            Interlocked.Add(ref received, echoed.Length);
        }));

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        AssertCameAndWent(before, after, "echo", "Echo", N, sent, received);
        Assert.Equal(N, after.Closed("echo", "client") - before.Closed("echo", "client"));
    }

    [Fact]
    public async Task Echo_LargeTransferWithBackpressure_BytesExact()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var payload = new byte[3 * 1024 * 1024];
        new Random(42).NextBytes(payload);

        await using (var client = await server.ConnectAsync("echo"))
        {
            var reading = client.ReadToEndAsync(TimeSpan.FromSeconds(20));
            foreach (var chunk in payload.Chunk(64 * 1024))
            {
                await client.SendAsync(chunk);
            }

            client.ShutdownSend();
            Assert.Equal(payload.Length, (await reading).Length);
        }

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Equal(payload.Length, after.BytesReceived("echo"));
        Assert.Equal(payload.Length, after.BytesSent("echo"));
    }

    [Fact]
    public async Task Time_ConnectionsComeAndGo_CountsAndBytesExact()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("time", "Time"));
        var before = await MetricsSnapshot.ScrapeAsync(server);

        long received = 0;
        await Task.WhenAll(Enumerable.Range(0, N).Select(async _ =>
        {
            await using var client = await server.ConnectAsync("time");
            var reply = await client.ReadToEndAsync();
            Assert.NotEmpty(reply);
            Interlocked.Add(ref received, reply.Length);
        }));

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        AssertCameAndWent(before, after, "time", "Time", N, 0, received);
        Assert.Equal(N, after.Closed("time", "server") - before.Closed("time", "server"));
    }

    [Fact]
    public async Task Greeting_ConnectionsComeAndGo_CountsAndBytesExact()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting"));
        var before = await MetricsSnapshot.ScrapeAsync(server);

        long sent = 0, received = 0;
        await Task.WhenAll(Enumerable.Range(0, N).Select(async i =>
        {
            await using var client = await server.ConnectAsync("greeting");
            var text = new StringBuilder();
            text.Append(await client.ReadLineAsync());
            // Lines arrive in pieces, so the handler leaves partial lines unconsumed between reads.
            var line = $"visitor number {i} " + new string('x', i * 300) + "\n";
            foreach (var piece in Encoding.UTF8.GetBytes(line).Chunk(97))
            {
                await client.SendAsync(piece);
            }

            text.Append(await client.ReadLineAsync());
            var last = i % 2 == 0 ? "quit\n" : "";
            if (last.Length > 0)
            {
                await client.SendAsync(last);
            }
            else
            {
                client.ShutdownSend();
            }

            text.Append(await client.ReadToEndTextAsync());
            Interlocked.Add(ref sent, Encoding.UTF8.GetByteCount(line) + last.Length);
            Interlocked.Add(ref received, Encoding.UTF8.GetByteCount(text.ToString()));
        }));

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        AssertCameAndWent(before, after, "greeting", "Greeting", N, sent, received);
        Assert.Equal(N / 2, after.Closed("greeting", "server") - before.Closed("greeting", "server"));
        Assert.Equal(N / 2, after.Closed("greeting", "client") - before.Closed("greeting", "client"));
    }

    [Theory]
    [InlineData("Echo")]
    [InlineData("Greeting")]
    public async Task ClientResetAfterExchange_CountedOnceAsClientWithExactBytes(string handler)
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("l", handler));
        long sent = 0, received = 0;
        for (var i = 0; i < 5; i++)
        {
            var client = await server.ConnectAsync("l");
            if (handler == "Greeting")
            {
                received += Encoding.UTF8.GetByteCount(await client.ReadLineAsync());
            }

            await client.SendAsync("ping\n");
            received += Encoding.UTF8.GetByteCount(await client.ReadLineAsync());
            sent += 5;
            client.Reset();
        }

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        AssertCameAndWent(null, after, "l", handler, 5, sent, received);
        Assert.Equal(5, after.Closed("l", "client"));
    }

    [Fact]
    public async Task Echo_ClientResetMidStreamWhileServerBlockedWriting_CountedOnceAsClient()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        const int Connections = 5;
        var payload = new byte[16 * 1024 * 1024];
        for (var i = 0; i < Connections; i++)
        {
            var listener = server.Runtime.Find("echo")!;
            var echoedBefore = listener.BytesSent;
            var client = await server.ConnectAsync("echo");
            // Send far more than the socket buffers hold without reading: the server blocks in its flush.
            var sending = client.SendAsync(payload);
            // This connection's echo, not an earlier one's: otherwise it could be reset still in the listen
            // backlog, and accepted (and counted active) only after the wait for quiet below.
            await TestServer.WaitUntilAsync(() => Task.FromResult(listener.BytesSent > echoedBefore), because: "the server to start echoing this connection");
            client.Reset();
            try
            {
                await sending;
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                // The reset cut the send short, as intended.
            }
        }

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Equal(Connections, after.Accepted("echo", "Echo"));
        Assert.Equal(0, after.Active("echo", "Echo"));
        Assert.Equal(Connections, after.ClosedTotal("echo"));
        Assert.True(Connections == after.Closed("echo", "client"), $"a reset is the client's doing, not the server's:\n{after.Text}");
        Assert.Equal(Connections, after.DurationCount("echo"));
        // What was read before the reset was counted; the server echoes only what it read.
        Assert.InRange(after.BytesReceived("echo"), 1, Connections * (double)payload.Length);
        Assert.InRange(after.BytesSent("echo"), 1, after.BytesReceived("echo"));
    }

    [Fact]
    public async Task ConnectAndCloseWithoutSending_CountedWithZeroBytesReceived()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"), TestServer.Listener("greeting", "Greeting"));

        for (var i = 0; i < 4; i++)
        {
            await using var fin = await server.ConnectAsync("echo");
            fin.ShutdownSend();
            Assert.Empty(await fin.ReadToEndAsync());
            var reset = await server.ConnectAsync("echo");
            await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("echo")!.OpenCount > 0), because: "the accept");
            reset.Reset();
        }

        var banner = 0;
        for (var i = 0; i < 4; i++)
        {
            await using var client = await server.ConnectAsync("greeting");
            banner = Encoding.UTF8.GetByteCount(await client.ReadLineAsync());
            client.ShutdownSend();
            Assert.Empty(await client.ReadToEndAsync());
        }

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        AssertCameAndWent(null, after, "echo", "Echo", 8, 0, 0);
        Assert.Equal(8, after.Closed("echo", "client"));
        AssertCameAndWent(null, after, "greeting", "Greeting", 4, 0, 4 * banner);
        Assert.Equal(4, after.Closed("greeting", "client"));
    }

    [Fact]
    public async Task Active_WhileConnectionsOpen_EqualsOpenCountThenBackToZero()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"), TestServer.Listener("greeting", "Greeting"));
        var clients = new List<TcpTestClient>();
        for (var i = 0; i < 12; i++)
        {
            var client = await server.ConnectAsync(i % 3 == 0 ? "greeting" : "echo");
            clients.Add(client);
        }

        await TestServer.WaitUntilAsync(async () =>
        {
            var open = await MetricsSnapshot.ScrapeAsync(server);
            return open.Active("echo", "Echo") == 8 && open.Active("greeting", "Greeting") == 4;
        }, because: "8 echo and 4 greeting connections to be active");
        var snapshot = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Equal(8, snapshot.Accepted("echo", "Echo"));
        Assert.Equal(0, snapshot.ClosedTotal("echo"));

        foreach (var client in clients.Take(6))
        {
            await client.DisposeAsync();
        }

        await TestServer.WaitUntilAsync(async () =>
        {
            var open = await MetricsSnapshot.ScrapeAsync(server);
            return open.Active("echo", "Echo") + open.Active("greeting", "Greeting") == 6;
        }, because: "6 connections to remain");

        foreach (var client in clients.Skip(6))
        {
            await client.DisposeAsync();
        }

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        AssertCameAndWent(null, after, "echo", "Echo", 8, 0, 0);
        Assert.Equal(0, after.Active("greeting", "Greeting"));
    }

    [Fact]
    public async Task CloseReason_IdleTimeout_ClosedGracefullyAndLabelled()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("idle", "Echo", ("IdleTimeout", "00:00:01")));
        await using var client = await server.ConnectAsync("idle");
        await client.SendAsync("x");
        Assert.Equal("x", Encoding.UTF8.GetString(await client.ReadExactlyAsync(1)));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await client.IsClosedGracefullyAsync());

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Equal(1, after.Closed("idle", "idle_timeout"));
        Assert.Equal(1, after.ClosedTotal("idle"));
        // The duration is the server clock's: the one second it was advanced.
        Assert.Equal(1.0, after.DurationSum("idle"));
    }

    [Fact]
    public async Task CloseReason_LineTooLong_Labelled()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("short", "Greeting", ("MaxLineLength", "16")));
        await using var client = await server.ConnectAsync("short");
        var banner = await client.ReadLineAsync();
        await client.SendAsync(new string('a', 40) + "\n");
        var rest = await client.ReadToEndTextAsync();
        Assert.Equal("ERR line too long\r\n", rest);

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Equal(1, after.Closed("short", "line_too_long"));
        Assert.Equal(1, after.ClosedTotal("short"));
        Assert.Equal(Encoding.UTF8.GetByteCount(banner + rest), after.BytesSent("short"));
    }

    [Fact]
    public async Task CloseReason_HandlerThrows_LabelledErrorAndCountsStayExact()
    {
        await using var server = await TestServer.StartAsync(
            [TestServer.Listener("boom", "Boom")], s => s.AddKestrelTcpHandler<ThrowingHandler>("Boom"));
        for (var i = 0; i < 3; i++)
        {
            await using var client = await server.ConnectAsync("boom");
            await client.SendAsync("trigger");
            await client.ReadToEndAsync();
        }

        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        AssertCameAndWent(null, after, "boom", "Boom", 3, 3 * 7, 0);
        Assert.Equal(3, after.Closed("boom", "error"));
    }

    [Fact]
    public async Task CloseReason_Shutdown_CountedWhenTheServerStops()
    {
        var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var listener = server.Runtime.Find("echo")!;
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("abc");
        Assert.Equal("abc", Encoding.UTF8.GetString(await client.ReadExactlyAsync(3)));

        // Disposing stops the host: the drain asks the open connection to finish.
        await server.DisposeAsync();

        Assert.True(await client.IsClosedGracefullyAsync());
        Assert.Equal(1, listener.Stats.Closed(CloseReason.Shutdown));
        Assert.Equal(1, listener.Stats.ClosedTotal);
        Assert.Equal(0, listener.ActiveConnections);
        Assert.Equal(3, listener.BytesReceived);
        Assert.Equal(3, listener.BytesSent);
    }

    [Fact]
    public async Task Rejected_OverMaxConnections_CountedOnlyAsRejected()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo", ("MaxConnections", "1")));
        var first = await server.ConnectAsync("echo");
        await first.SendAsync("1");
        await first.ReadExactlyAsync(1);

        await using (var second = await server.ConnectAsync("echo"))
        {
            Assert.Empty(await second.ReadToEndAsync());
        }

        var during = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Equal(1, during.Rejected("echo", "max_connections"));
        Assert.Equal(0, during.Rejected("echo", "max_connections_per_client"));
        Assert.Equal(0, during.Rejected("echo", "shutting_down"));
        Assert.Equal(1, during.Accepted("echo", "Echo"));
        Assert.Equal(1, during.Active("echo", "Echo"));
        Assert.Equal(0, during.ClosedTotal("echo"));

        await first.DisposeAsync();
        await server.WaitForQuietAsync();
        var after = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Equal(1, after.Accepted("echo", "Echo"));
        Assert.Equal(0, after.Active("echo", "Echo"));
        Assert.Equal(1, after.ClosedTotal("echo"));
        Assert.Equal(1, after.Rejected("echo", "max_connections"));
        Assert.Equal(1, after.BytesReceived("echo"));
        Assert.Equal(1, after.BytesSent("echo"));
    }

    [Fact]
    public async Task Counters_ReadWhileConnectionsChurn_NeverGoBackwardsNorNegative()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var listener = server.Runtime.Find("echo")!;
        using var stop = new CancellationTokenSource();
        var problems = new List<string>();
        long samples = 0;
        var watching = Task.Run(() =>
        {
            long lastReceived = 0, lastSent = 0;
            while (!stop.IsCancellationRequested && problems.Count == 0)
            {
                // Read as the views do; a counter that dips looks like a restart to Prometheus' rate().
                var active = listener.ActiveConnections;
                var received = listener.BytesReceived;
                var sent = listener.BytesSent;
                if (active < 0)
                {
                    problems.Add($"active {active}");
                }

                if (received < lastReceived || sent < lastSent)
                {
                    problems.Add($"bytes went back: received {lastReceived} -> {received}, sent {lastSent} -> {sent}");
                }

                (lastReceived, lastSent) = (received, sent);
                Interlocked.Increment(ref samples);
            }
        });

        // A fixed amount of churn, not a stretch of wall-clock time; the watcher must have read
        // the counters while it went on, or the test has checked nothing.
        const int Rounds = 50;
        var connections = 0;
        long sampledDuringChurn = 0;
        for (var round = 0; round < Rounds && problems.Count == 0; round++)
        {
            var before = Interlocked.Read(ref samples);
            await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
            {
                await using var client = await server.ConnectAsync("echo");
                await client.SendAsync("0123456789");
                client.ShutdownSend();
                await client.ReadToEndAsync();
            }));
            connections += 8;
            sampledDuringChurn += Interlocked.Read(ref samples) - before;
        }

        stop.Cancel();
        await watching;
        Assert.Empty(problems);
        Assert.True(sampledDuringChurn > 0, "the watcher never read the counters while connections churned");
        await server.WaitForQuietAsync();
        Assert.Equal(connections * 10L, listener.BytesReceived);
        Assert.Equal(connections * 10L, listener.BytesSent);
    }

    [Fact]
    public async Task Metrics_EveryContractFamily_WithHelpTypeAndEveryLabel()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"), TestServer.Listener("time", "Time"), TestServer.Listener("greeting", "Greeting"));
        await using (var client = await server.ConnectAsync("time"))
        {
            await client.ReadToEndAsync();
        }

        await server.WaitForQuietAsync();
        var response = await server.Http.GetAsync("/metrics");
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        var metrics = await MetricsSnapshot.ScrapeAsync(server);

        var expected = new Dictionary<string, string>
        {
            ["kestreltcp_connections_active"] = "gauge",
            ["kestreltcp_connections_accepted_total"] = "counter",
            ["kestreltcp_connections_rejected_total"] = "counter",
            ["kestreltcp_connections_closed_total"] = "counter",
            ["kestreltcp_bytes_received_total"] = "counter",
            ["kestreltcp_bytes_sent_total"] = "counter",
            ["kestreltcp_connection_duration_seconds"] = "histogram",
        };
        Assert.Equal(expected.Keys.Order(), metrics.Families.Keys.Where(k => k.StartsWith("kestreltcp_", StringComparison.Ordinal)).Order());
        foreach (var (name, type) in expected)
        {
            Assert.Equal(type, metrics.Families[name].Type);
            Assert.False(string.IsNullOrWhiteSpace(metrics.Families[name].Help));
            // The contract's labels and nothing else: no scope labels, no resource labels.
            Assert.All(metrics.Families[name].Samples, s => Assert.Subset(new HashSet<string> { "listener", "handler", "reason", "le" }, s.Labels.Keys.ToHashSet()));
        }

        foreach (var (listener, handler) in new[] { ("echo", "Echo"), ("time", "Time"), ("greeting", "Greeting") })
        {
            metrics.Active(listener, handler);
            metrics.Accepted(listener, handler);
            foreach (var reason in new[] { "client", "server", "idle_timeout", "line_too_long", "shutdown", "error" })
            {
                metrics.Closed(listener, reason);
            }

            foreach (var reason in new[] { "max_connections", "max_connections_per_client", "shutting_down" })
            {
                metrics.Rejected(listener, reason);
            }
        }

        // The histogram of a listener appears with its first close, every contract bucket in order.
        var buckets = metrics.Samples("kestreltcp_connection_duration_seconds_bucket").Where(s => s.Label("listener") == "time").Select(s => s.Label("le")).ToList();
        Assert.Equal(["0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "30", "60", "300", "600", "1800", "3600", "+Inf"], buckets);
        Assert.Equal(1, metrics.DurationCount("time"));
        Assert.Equal(1, metrics.Value("kestreltcp_connection_duration_seconds_bucket", ("listener", "time"), ("le", "+Inf")));
    }

    [Fact]
    public async Task Metrics_KestrelAndRuntimeFamilies_ServedBesideOurs()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var metrics = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Contains("kestrel_active_connections", metrics.Families.Keys);
        Assert.Contains("dotnet_gc_collections_total", metrics.Families.Keys);
        Assert.Contains("dotnet_thread_pool_thread_count_total", metrics.Families.Keys);
        Assert.Contains("dotnet_process_memory_working_set_bytes", metrics.Families.Keys);
    }

    [Fact]
    public async Task Metrics_Promtool_OurFamiliesCleanAndTheRestParses()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"), TestServer.Listener("time", "Time"));
        await using (var client = await server.ConnectAsync("time"))
        {
            await client.ReadToEndAsync();
        }

        await server.WaitForQuietAsync();
        var text = await server.MetricsAsync();

        // The whole exposition parses (exit 1 would be a parse error); only the platform's own names may draw lints.
        var (exitCode, problems) = await Promtool.CheckMetricsAsync(text);
        Assert.True(exitCode is 0 or 3, $"promtool exit {exitCode}: {string.Join("; ", problems)}");
        Assert.DoesNotContain(problems, p => p.StartsWith("kestreltcp_", StringComparison.Ordinal));

        // Our families alone: clean, not a single lint.
        var ours = string.Join('\n', text.Split('\n').Where(l => l.Contains(" kestreltcp_", StringComparison.Ordinal) || l.StartsWith("kestreltcp_", StringComparison.Ordinal))) + "\n";
        Assert.Equal((0, (IReadOnlyList<string>)[]), await Promtool.CheckMetricsAsync(ours));
    }

    [Fact]
    public async Task Metrics_ScrapeAfterEachConnection_ExactEveryTime()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("time", "Time"));
        for (var i = 1; i <= 20; i++)
        {
            await using (var client = await server.ConnectAsync("time"))
            {
                await client.ReadToEndAsync();
            }

            await server.WaitForQuietAsync();
            // No response cache: every scrape shows every connection so far.
            Assert.Equal(i, (await MetricsSnapshot.ScrapeAsync(server)).Accepted("time", "Time"));
        }
    }

    /// <summary>N connections came and went between <paramref name="before"/> (null: a fresh server) and <paramref name="after"/>.</summary>
    internal static void AssertCameAndWent(MetricsSnapshot? before, MetricsSnapshot after, string listener, string handler, int n, long bytesFromClients, long bytesToClients)
    {
        double Delta(Func<MetricsSnapshot, double> read) => read(after) - (before is null ? 0 : read(before));

        Assert.Equal(n, Delta(m => m.Accepted(listener, handler)));
        Assert.Equal(0, after.Active(listener, handler));
        Assert.Equal(n, Delta(m => m.ClosedTotal(listener)));
        Assert.Equal(n, Delta(m => m.DurationCount(listener)));
        Assert.Equal(bytesFromClients, Delta(m => m.BytesReceived(listener)));
        Assert.Equal(bytesToClients, Delta(m => m.BytesSent(listener)));
        Assert.Equal(0, Delta(m => m.Sum("kestreltcp_connections_rejected_total", listener)));
    }
}

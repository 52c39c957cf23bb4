using System.Text;
using KestrelTcp.Connections;
using KestrelTcp.Tests.Hosting;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Connections;

/// <summary>
/// Clients that misbehave at the transport: resets mid-write, silence, junk, half-closes at odd moments.
/// None may crash the server, leak from the live count, be counted as our error, or disturb another client.
/// </summary>
public class FaultToleranceTests
{
    private const string Closed = "kestreltcp_connections_closed_total";

    [Fact]
    public async Task Reset_MidWriteToEcho_CountedAsClientCloseAndBystanderUndisturbed()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        await using var bystander = await server.ConnectAsync("echo");
        await AssertEchoesAsync(bystander, "before");

        // The server is in the middle of writing back to it (it never reads) when the reset lands.
        var faulty = await server.ConnectAsync("echo");
        faulty.Socket.Blocking = false;
        await GracefulShutdownTests.PushUntilStalledAsync(faulty.Socket, limit: 4 * 1024 * 1024, stall: TimeSpan.FromMilliseconds(200));
        faulty.Reset();

        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("echo")!.OpenCount == 1), because: "the reset connection to close");
        await AssertEchoesAsync(bystander, "after");
        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, Closed, ("listener", "echo"), ("reason", "client")));
        Assert.Equal(0, PrometheusText.Value(metrics, Closed, ("listener", "echo"), ("reason", "error")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_active", ("listener", "echo"), ("handler", "Echo")));
    }

    [Fact]
    public async Task Reset_MidLineToGreeting_CountedAsClientClose()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting"));
        var faulty = await server.ConnectAsync("greeting");
        await faulty.SendAsync("half a li");
        faulty.Reset();

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, Closed, ("listener", "greeting"), ("reason", "client")));
        Assert.Equal(0, PrometheusText.Value(metrics, Closed, ("listener", "greeting"), ("reason", "error")));
        await AssertGreetingServesAsync(server);
    }

    [Theory]
    [InlineData("echo", "Echo")]
    [InlineData("greeting", "Greeting")]
    [InlineData("time", "Time")]
    public async Task ConnectSendNothingClose_EveryHandler_ClosedWithoutErrorAndNothingLeaks(string listener, string handler)
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener(listener, handler));
        for (var i = 0; i < 20; i++)
        {
            var client = await server.ConnectAsync(listener);
            if (i % 2 == 0)
            {
                await client.DisposeAsync();
            }
            else
            {
                client.Reset();
            }
        }

        // Quiet alone can hold before the last accepts: wait for all twenty first, or fail.
        var runtime = server.Runtime.Find(listener)!;
        await TestServer.WaitUntilAsync(() => Task.FromResult(runtime.Stats.Accepted == 20), because: "twenty connections to be accepted");
        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(20, PrometheusText.Value(metrics, "kestreltcp_connections_accepted_total", ("listener", listener), ("handler", handler)));
        Assert.Equal(20, PrometheusText.Sum(metrics, Closed, listener));
        Assert.Equal(0, PrometheusText.Value(metrics, Closed, ("listener", listener), ("reason", "error")));
        Assert.Equal(0, PrometheusText.Value(metrics, "kestreltcp_connections_active", ("listener", listener), ("handler", handler)));
    }

    [Fact]
    public async Task BinaryJunk_ToGreeting_OneSanitisedReplyPerLineThenStillServes()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting"));
        await using var client = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await client.ReadLineAsync());

        var junk = new byte[16 * 1024];
        new Random(862).NextBytes(junk);
        for (var i = 100; i < junk.Length; i += 100)
        {
            junk[i] = (byte)'\n'; // lines short enough to be answered
        }

        junk[^1] = (byte)'\n';
        var lines = junk.Count(b => b == '\n');
        await client.SendAsync(junk);
        await client.SendAsync("quit\n");
        client.ShutdownSend();

        var replies = Encoding.UTF8.GetString(await client.ReadToEndAsync()).Split("\r\n");
        Assert.Equal(lines + 2, replies.Length); // the replies, Goodbye!, and what follows the last \r\n
        Assert.All(replies[..lines], reply =>
        {
            Assert.StartsWith("Hello, ", reply);
            Assert.EndsWith("!", reply);
            Assert.DoesNotContain(reply, c => char.IsControl(c) && c != '\t');
        });
        Assert.Equal("Goodbye!", replies[lines]);
        Assert.Equal("", replies[^1]);
        await server.WaitForQuietAsync();
        Assert.Equal(0, await server.MetricAsync(Closed, ("listener", "greeting"), ("reason", "error")));
        await AssertGreetingServesAsync(server);
    }

    [Fact]
    public async Task BinaryJunk_WithoutLineEndingsToGreeting_ErrLineTooLongAndClosed()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting", ("MaxLineLength", "1024")));
        await using var client = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await client.ReadLineAsync());
        var junk = Enumerable.Range(0, 2048).Select(i => (byte)(i % 256 == '\n' ? 0 : i % 256)).ToArray();

        await client.SendAsync(junk);

        Assert.Equal("ERR line too long\r\n", await client.ReadToEndTextAsync());
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync(Closed, ("listener", "greeting"), ("reason", "line_too_long")));
        await AssertGreetingServesAsync(server);
    }

    [Fact]
    public async Task HalfClose_AtOddMoments_EveryHandlerFinishesItsAnswerThenCloses()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"), TestServer.Listener("greeting", "Greeting"), TestServer.Listener("time", "Time"));

        // Echo: at once, with nothing sent; and after a burst that is still being echoed.
        await using (var echo = await server.ConnectAsync("echo"))
        {
            echo.ShutdownSend();
            Assert.Empty(await echo.ReadToEndAsync());
        }

        var burst = new byte[512 * 1024];
        new Random(7).NextBytes(burst);
        await using (var echo = await server.ConnectAsync("echo"))
        {
            var echoed = echo.ReadToEndAsync();
            await echo.SendAsync(burst);
            echo.ShutdownSend();
            Assert.Equal(burst, await echoed);
        }

        // Greeting: before the banner is read; in the middle of a line; after pipelined lines.
        await using (var greeting = await server.ConnectAsync("greeting"))
        {
            greeting.ShutdownSend();
            var all = await greeting.ReadToEndTextAsync();
            Assert.StartsWith("Welcome!", all);
            Assert.Equal(1, all.Count(c => c == '\n'));
        }

        await using (var greeting = await server.ConnectAsync("greeting"))
        {
            await greeting.SendAsync("a\nb\nhal");
            greeting.ShutdownSend();
            var all = await greeting.ReadToEndTextAsync();
            Assert.EndsWith("\r\nHello, a!\r\nHello, b!\r\nHello, hal!\r\n", all);
        }

        // Time: before its one write.
        await using (var time = await server.ConnectAsync("time"))
        {
            time.ShutdownSend();
            Assert.Matches(@"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$", await time.ReadToEndTextAsync());
        }

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        foreach (var listener in new[] { "echo", "greeting", "time" })
        {
            Assert.Equal(0, PrometheusText.Value(metrics, Closed, ("listener", listener), ("reason", "error")));
        }

        Assert.Equal(2, PrometheusText.Value(metrics, Closed, ("listener", "echo"), ("reason", "client")));
    }

    [Fact]
    public async Task Vanish_MidLineWithoutFin_ClosedByIdleTimeout()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("greeting", "Greeting", ("IdleTimeout", "00:00:02")));
        // A client whose host disappears: it never sends a FIN or a reset, it just falls silent.
        await using var gone = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await gone.ReadLineAsync());
        await gone.SendAsync("half a li");
        var tracked = Assert.Single(await server.OpenConnectionsAsync("greeting"));
        await TestServer.WaitUntilAsync(() => Task.FromResult(tracked.Transfer.BytesReceived == 9), because: "the half line to arrive");

        IdleTimeoutTests.AdvanceSeconds(clock, 1);
        Assert.Equal(CloseReason.None, tracked.CloseReason);
        IdleTimeoutTests.AdvanceSeconds(clock, 1);
        Assert.Equal(CloseReason.IdleTimeout, tracked.CloseReason);
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync(Closed, ("listener", "greeting"), ("reason", "idle_timeout")));
    }

    [Fact]
    public async Task MixedFaults_Concurrently_BystanderKeepsEchoingAndCountsBalance()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"), TestServer.Listener("greeting", "Greeting"));
        await using var bystander = await server.ConnectAsync("echo");
        using var stop = new CancellationTokenSource();
        var roundTrips = 0;
        var watching = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await AssertEchoesAsync(bystander, "tick");
                roundTrips++;
            }
        });

        var junk = new byte[8 * 1024];
        new Random(1).NextBytes(junk);
        await Task.WhenAll(Enumerable.Range(0, 60).Select(async i =>
        {
            var client = await server.ConnectAsync(i % 2 == 0 ? "echo" : "greeting");
            switch (i % 6)
            {
                case 0 or 1:
                    await client.SendAsync(junk);
                    client.Reset();
                    break;
                case 2 or 3:
                    await client.SendAsync(junk);
                    client.ShutdownSend();
                    await client.ReadToEndAsync();
                    await client.DisposeAsync();
                    break;
                default:
                    await client.DisposeAsync();
                    break;
            }
        }));

        await stop.CancelAsync();
        await watching;
        Assert.True(roundTrips > 0);
        await bystander.DisposeAsync();
        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        foreach (var (listener, handler) in new[] { ("echo", "Echo"), ("greeting", "Greeting") })
        {
            Assert.Equal(0, PrometheusText.Value(metrics, Closed, ("listener", listener), ("reason", "error")));
            Assert.Equal(0, PrometheusText.Value(metrics, "kestreltcp_connections_active", ("listener", listener), ("handler", handler)));
            Assert.Equal(
                PrometheusText.Value(metrics, "kestreltcp_connections_accepted_total", ("listener", listener), ("handler", handler)),
                PrometheusText.Sum(metrics, Closed, listener));
        }
    }

    private static async Task AssertEchoesAsync(TcpTestClient client, string text)
    {
        await client.SendAsync(text);
        Assert.Equal(text, Encoding.UTF8.GetString(await client.ReadExactlyAsync(text.Length)));
    }

    private static async Task AssertGreetingServesAsync(TestServer server)
    {
        await using var client = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await client.ReadLineAsync());
        await client.SendAsync("still there?\n");
        Assert.Equal("Hello, still there?!\r\n", await client.ReadLineAsync());
    }
}

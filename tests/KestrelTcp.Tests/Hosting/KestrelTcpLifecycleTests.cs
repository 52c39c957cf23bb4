using System.Net;
using KestrelTcp.Connections;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Transport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Tests.Hosting;

/// <summary>
/// The stop of the TCP side, in the real server on a <see cref="TestClock"/>: Shutdown:Delay, the
/// drain and its timeout happen exactly when the server's clock says, and the test moves that clock.
/// The stop is asked for as SIGTERM asks for it (<c>StopApplication</c>); the signal itself, the
/// exit code and the process's output are <see cref="GracefulShutdownTests"/>' part.
/// </summary>
public class KestrelTcpLifecycleTests
{
    private static readonly TimeSpan Poll = KestrelTcpLifecycle.PollInterval;
    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);

    [Fact]
    public async Task Stopping_ShutdownDelay_ServesUntilItsLastMomentThenAsksEveryConnectionToFinish()
    {
        var delay = TimeSpan.FromSeconds(5);
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock,
            new() { ["KestrelTcp:Shutdown:Delay"] = "00:00:05" },
            TestServer.Listener("greeting", "Greeting"));
        var listener = server.Runtime.Find("greeting")!;
        await using var open = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await open.ReadLineAsync());

        var delaying = clock.WhenArmed(delay);
        var stopped = server.RequestStop();
        await delaying;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await server.Http.GetAsync("/health/ready")).StatusCode);

        // A tick before the delay ends: the open connection is answered, a new one accepted and served.
        clock.Advance(delay - Tick);
        Assert.Equal(ListenerState.Listening, listener.State);
        await open.SendAsync("still here\n");
        Assert.Equal("Hello, still here!\r\n", await open.ReadLineAsync());
        await using var late = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await late.ReadLineAsync());
        await late.SendAsync("late\n");
        Assert.Equal("Hello, late!\r\n", await late.ReadLineAsync());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await server.Http.GetAsync("/health/ready")).StatusCode);

        // The delay's end: without the clock moving any further, both are asked to finish and newcomers are refused.
        clock.Advance(Tick);
        Assert.Equal("Server shutting down\r\n", await open.ReadToEndTextAsync());
        Assert.Equal("Server shutting down\r\n", await late.ReadToEndTextAsync());
        Assert.Equal(ListenerState.Draining, listener.State);
        await using (var refused = await server.ConnectAsync("greeting"))
        {
            Assert.Empty(await refused.ReadToEndAsync());
        }

        Assert.Equal(1, await server.MetricAsync("kestreltcp_connections_rejected_total", ("listener", "greeting"), ("reason", "shutting_down")));
        await server.RunClockUntilAsync(stopped);
        Assert.Equal(ListenerState.Stopped, listener.State);
        Assert.Equal(2, listener.Stats.Closed(CloseReason.Shutdown));
    }

    [Fact]
    public async Task Stopping_ConnectionThatCannotFinish_AbortedAtTheDrainTimeoutNotBefore()
    {
        var drainTimeout = TimeSpan.FromSeconds(2); // TestServer's Shutdown:DrainTimeout
        var logs = new LogCapture();
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync([TestServer.Listener("echo", "Echo"), TestServer.Listener("greeting", "Greeting"), TestServer.VerboseLogs], services =>
        {
            services.AddSingleton<TimeProvider>(clock);
            services.AddSingleton<ILoggerProvider>(logs);
        });
        var echoListener = server.Runtime.Find("echo")!;

        await using var greeting = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await greeting.ReadLineAsync());
        await using var echo = await server.ConnectAsync("echo");
        var first = RandomBytes(256 * 1024, 1);
        var sending = echo.SendAsync(first);
        Assert.Equal(first, await echo.ReadExactlyAsync(first.Length));
        await sending;

        // Sends without ever reading: its echo backs up, so it cannot finish when asked.
        await using var stuck = await server.ConnectAsync("echo");
        stuck.Socket.Blocking = false;
        await GracefulShutdownTests.PushUntilStalledAsync(stuck.Socket);
        var open = await server.OpenConnectionsAsync("echo", 2);
        var stuckTransport = Assert.IsType<TcpConnection>(Assert.Single(open, c => c.Remote!.Equals(stuck.Socket.LocalEndPoint)).Transfer);
        var echoTransport = Assert.IsType<TcpConnection>(Assert.Single(open, c => c.Remote!.Equals(echo.Socket.LocalEndPoint)).Transfer);

        var polling = clock.WhenArmed(Poll);
        var stopped = server.RequestStop();
        await polling;

        // Asked to finish: Greeting says so; Echo still returns what arrives after the request (bytes
        // still in the socket buffers) until the client has been quiet for its quiet period.
        Assert.Equal("Server shutting down\r\n", await greeting.ReadToEndTextAsync());
        var second = RandomBytes(256 * 1024, 2);
        sending = echo.SendAsync(second);
        Assert.Equal(second, await echo.ReadExactlyAsync(second.Length));
        await sending;
        // Echo arms its quiet period on this clock when it reads again, after its last echo: only once it
        // waits there may the clock move, or a loaded machine's late continuation would arm it past the
        // drain timeout, and it would never come due.
        await TestServer.WaitUntilAsync(() => Task.FromResult(echoTransport.BytesReceived == first.Length + second.Length && echoTransport.ReadPending),
            because: "Echo to wait, quiet, for more");
        await using (var late = await server.ConnectAsync("echo"))
        {
            Assert.Empty(await late.ReadToEndAsync());
        }

        // One poll at a time up to the drain timeout: the drain looks, and waits, without aborting.
        while (clock.Elapsed < drainTimeout - Poll)
        {
            polling = clock.WhenArmed(Poll);
            clock.Advance(Poll);
            await polling;
            Assert.False(stuckTransport.IsClosed, $"aborted after {clock.Elapsed} of a {drainTimeout} drain");
        }

        // Echo closed after its quiet period; Greeting at once; the stuck one is still open.
        Assert.Empty(await echo.ReadToEndAsync());
        var metrics = await MetricsSnapshot.ScrapeAsync(server);
        Assert.Equal(1, metrics.Closed("greeting", "shutdown"));
        Assert.Equal(1, metrics.Closed("echo", "shutdown"));
        Assert.Equal(1, metrics.Active("echo", "Echo"));
        Assert.Equal(1, metrics.Rejected("echo", "shutting_down"));

        // The drain timeout: the next look aborts it, without the clock moving any further.
        clock.Advance(Poll);
        await TestServer.WaitUntilAsync(() => Task.FromResult(stuckTransport.IsClosed), because: "the abort at the drain timeout");
        Assert.Equal(drainTimeout, clock.Elapsed);

        await server.RunClockUntilAsync(stopped);
        var drained = Assert.Single(logs.Named("DrainCompleted"));
        Assert.Equal(1, drained["Aborted"]);
        Assert.True((double)drained["ElapsedMs"]! >= drainTimeout.TotalMilliseconds, $"drain finished after {drained["ElapsedMs"]} ms");
        Assert.Equal(2, echoListener.Stats.Closed(CloseReason.Shutdown));
        Assert.Equal(0, echoListener.ActiveConnections);
    }

    [Fact]
    public async Task Stopping_NothingOpen_StopsWithoutTheClockMoving()
    {
        var logs = new LogCapture();
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync([TestServer.Listener("time", "Time"), TestServer.VerboseLogs], services =>
        {
            services.AddSingleton<TimeProvider>(clock);
            services.AddSingleton<ILoggerProvider>(logs);
        });
        await using (var time = await server.ConnectAsync("time"))
        {
            Assert.Equal("Wed Jan 29 19:14:15 2014\r\n", await time.ReadToEndTextAsync());
        }

        await server.WaitForQuietAsync();

        // Nothing to wait for: the drain neither sleeps nor polls, so the stop ends on a clock that never moved.
        await server.RequestStop().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.Zero, clock.Elapsed);
        var drained = Assert.Single(logs.Named("DrainCompleted"));
        Assert.Equal(0.0, drained["ElapsedMs"]);
        Assert.Equal(0, drained["Aborted"]);
    }

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

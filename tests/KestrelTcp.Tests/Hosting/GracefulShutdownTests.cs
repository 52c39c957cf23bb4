using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Hosting;

/// <summary>SIGTERM to the real server process: readiness, the drain of each handler, the abort at the drain timeout, the exit code.</summary>
public class GracefulShutdownTests
{
    // Long enough that a round trip inside it holds on a loaded 2-core CI machine.
    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Sigterm_OpenEchoGreetingAndStuckClient_DrainsEveryByteAbortsTheRestAndExitsZero()
    {
        using var server = await ChildServer.StartAsync(
            ("KestrelTcp:Shutdown:Delay", "00:00:03"), ("KestrelTcp:Shutdown:DrainTimeout", "00:00:03"));

        await using var greeting = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await greeting.ReadLineAsync());

        await using var echo = await server.ConnectAsync("echo");
        var echoed = ReadAllAsync(echo.Socket);
        var sent = RandomBytes(2 * 1024 * 1024);
        await echo.SendAsync(sent[..(1024 * 1024)]);

        // Sends without ever reading: its echo backs up, so it cannot finish when asked and must be aborted.
        await using var stuck = await server.ConnectAsync("echo");
        stuck.Socket.Blocking = false;
        await PushUntilStalledAsync(stuck.Socket);

        await echo.SendAsync(sent[(1024 * 1024)..]);
        var stopwatch = Stopwatch.StartNew();
        server.Terminate();

        // Readiness turns 503, liveness stays 200, and during Shutdown:Delay everything still works. The
        // order of the greeting's lines proves it was still the delay: a line read once the drain had
        // begun would get "Server shutting down" instead of its reply. (How long the delay lasts, to the
        // tick, is KestrelTcpLifecycleTests' part, on a clock the test moves.)
        await TestServer.WaitUntilAsync(async () => await server.StatusAsync("/health/ready") == HttpStatusCode.ServiceUnavailable,
            because: "readiness 503 after SIGTERM");
        Assert.Equal(HttpStatusCode.OK, await server.StatusAsync("/health/live"));
        await greeting.SendAsync("still here\n");
        Assert.Equal("Hello, still here!\r\n", await greeting.ReadLineAsync());

        // Then each open connection is asked to finish.
        Assert.Equal("Server shutting down\r\n", await greeting.ReadLineAsync());
        Assert.Empty(await greeting.ReadToEndAsync());
        Assert.True(stopwatch.Elapsed >= Delay, $"drain began after {stopwatch.Elapsed}, before Shutdown:Delay");
        Assert.Equal(sent, await echoed);

        // A newcomer during the drain is closed at once and counted; the stuck client keeps the drain open.
        await using (var late = await server.ConnectAsync("echo"))
        {
            Assert.Empty(await late.ReadToEndAsync());
        }

        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_rejected_total", ("listener", "echo"), ("reason", "shutting_down")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_closed_total", ("listener", "greeting"), ("reason", "shutdown")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_closed_total", ("listener", "echo"), ("reason", "shutdown")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_active", ("listener", "echo"), ("handler", "Echo")));

        var exitCode = await server.WaitForExitAsync(Delay + DrainTimeout + TimeSpan.FromSeconds(5));
        Assert.Equal(0, exitCode);
        Assert.True(stopwatch.Elapsed >= Delay + DrainTimeout, $"exited after {stopwatch.Elapsed}, before the drain timeout ended the stuck client");
        Assert.Contains("1 connection(s) aborted at the drain timeout", server.Output);
        Assert.True(!server.Output.Contains(" ERR] "), server.Output);
        Assert.DoesNotContain(" FTL] ", server.Output);
    }

    [Fact]
    public async Task Sigterm_NoDelayWhileEchoIsStreaming_EveryByteSentBeforeSigtermComesBack()
    {
        using var server = await ChildServer.StartAsync(("KestrelTcp:Shutdown:DrainTimeout", "00:00:05"));
        await using var echo = await server.ConnectAsync("echo");
        var echoed = ReadAllAsync(echo.Socket);
        var sent = RandomBytes(8 * 1024 * 1024);
        foreach (var chunk in sent.Chunk(64 * 1024))
        {
            await echo.SendAsync(chunk);
        }

        // Much of it is still in socket buffers on both sides, unread by the server, when the signal lands.
        server.Terminate();

        var received = await echoed;
        Assert.Equal(sent.Length, received.Length);
        Assert.Equal(sent, received);
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("0 connection(s) aborted at the drain timeout", server.Output);
    }

    [Fact]
    public async Task Sigterm_IdleServer_ExitsZeroAtOnce()
    {
        // Exiting well inside a minute's drain timeout is enough to show it did not wait for it; that the
        // drain does not wait at all is KestrelTcpLifecycleTests' part, on a clock the test moves.
        using var server = await ChildServer.StartAsync(("KestrelTcp:Shutdown:DrainTimeout", "00:01:00"));
        await using (var time = await server.ConnectAsync("time"))
        {
            Assert.EndsWith("\r\n", await time.ReadToEndTextAsync());
        }

        server.Terminate();
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("0 connection(s) aborted at the drain timeout", server.Output);
    }

    private static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        new Random(count).NextBytes(bytes);
        return bytes;
    }

    private static async Task<byte[]> ReadAllAsync(Socket socket)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            if (read == 0)
            {
                return all.ToArray();
            }

            all.Write(buffer, 0, read);
        }
    }

    /// <summary>Writes on a non-blocking socket until the kernel refuses more for a while: every buffer on the way is full.</summary>
    internal static async Task<long> PushUntilStalledAsync(Socket socket, long limit = long.MaxValue, TimeSpan? stall = null, byte[]? pattern = null)
    {
        var chunk = pattern ?? new byte[64 * 1024];
        var quiet = stall ?? TimeSpan.FromMilliseconds(300);
        long pushed = 0;
        var since = Stopwatch.StartNew();
        while (pushed < limit)
        {
            var offset = (int)(pushed % chunk.Length);
            var sent = socket.Send(chunk, offset, (int)Math.Min(chunk.Length - offset, limit - pushed), SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                if (since.Elapsed > quiet)
                {
                    break;
                }

                await Task.Delay(20);
                continue;
            }

            Assert.Equal(SocketError.Success, error);
            pushed += sent;
            since.Restart();
        }

        return pushed;
    }
}

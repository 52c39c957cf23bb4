using System.Buffers;
using System.IO.Pipelines;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using KestrelTcp.Faults;
using KestrelTcp.Handlers;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using static KestrelTcp.Tests.Faults.FaultHarness;

namespace KestrelTcp.Tests.Faults;

/// <summary>
/// The fault middleware and its output pump over in-memory pipes, on a clock the test moves: what the
/// client gets, exactly when, in what pieces, and what the handler sees.
/// </summary>
public class FaultMiddlewareTests
{
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    [Fact]
    public async Task Latency_EachWriteArrivesItsLatencyAfterItsFlush_InOrder()
    {
        var latency = 200 * Ms;
        var second = new TaskCompletionSource();
        var secondWritten = new TaskCompletionSource();
        var harness = new FaultHarness(new FaultOptions { Latency = latency }, async c =>
        {
            await WriteAsync(c, "a");
            await second.Task;
            await WriteAsync(c, "b");
            secondWritten.SetResult();
        });
        var armed = harness.Clock.WhenArmed(latency);
        harness.Start();
        await armed;

        harness.Clock.Advance(100 * Ms);
        Assert.Equal("", harness.Available());
        second.SetResult();
        await secondWritten.Task;

        // "a" at 200 ms; "b", written at 100 ms, is then 100 ms away.
        armed = harness.Clock.WhenArmed(100 * Ms);
        harness.Clock.Advance(100 * Ms);
        Assert.Equal("a", await harness.NextAsync());
        await armed;
        harness.Clock.Advance(99 * Ms);
        Assert.Equal("", harness.Available());
        harness.Clock.Advance(Ms);
        Assert.Equal("b", await harness.RestAsync());
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, harness.Counters.Count(FaultKind.Latency));
    }

    [Fact]
    public async Task Jitter_WritesNeverReordered()
    {
        var harness = new FaultHarness(new FaultOptions { Latency = 100 * Ms, Jitter = 100 * Ms }, async c =>
        {
            for (var i = 0; i < 26; i++)
            {
                await WriteAsync(c, ((char)('a' + i)).ToString());
            }
        }).Start();

        var received = "";
        while (received.Length < 26 && harness.Clock.Elapsed < TimeSpan.FromSeconds(1))
        {
            harness.Clock.Advance(5 * Ms);
            await Task.Delay(1);
            received += harness.Available();
        }

        Assert.Equal("abcdefghijklmnopqrstuvwxyz", received);
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Slices_PiecesOfAtMostSliceBytes_SliceDelayApart()
    {
        var delay = 10 * Ms;
        var harness = new FaultHarness(new FaultOptions { SliceBytes = 4, SliceDelay = delay }, c => WriteAsync(c, "0123456789"));
        var armed = harness.Clock.WhenArmed(delay);
        harness.Start();

        await armed;
        Assert.Equal("0123", await harness.NextAsync());
        armed = harness.Clock.WhenArmed(delay);
        harness.Clock.Advance(delay);
        Assert.Equal("4567", await harness.NextAsync());
        await armed;
        Assert.Equal("", harness.Available());
        harness.Clock.Advance(delay);
        Assert.Equal("89", await harness.RestAsync());
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Bandwidth_FiftyMillisecondsWorthPerStep()
    {
        // 1000 B/s: 50 bytes, then 50 more every 50 ms.
        var step = 50 * Ms;
        var harness = new FaultHarness(new FaultOptions { BandwidthBytesPerSecond = 1000 }, c => WriteAsync(c, new string('x', 175)));
        var armed = harness.Clock.WhenArmed(step);
        harness.Start();
        await armed;

        var sizes = new List<int> { (await harness.NextAsync())!.Length };
        while (sizes.Sum() < 175)
        {
            armed = harness.Clock.WhenArmed(step);
            harness.Clock.Advance(step);
            sizes.Add((await harness.NextAsync())!.Length);
            if (sizes.Sum() < 175)
            {
                await armed;
            }
        }

        Assert.Equal([50, 50, 50, 25], sizes);
        Assert.Equal(150 * Ms, harness.Clock.Elapsed);
        Assert.Null(await harness.NextAsync());
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task LimitBytes_ExactlyThatManyThenTheOutputEnds_HandlerToldToFinish()
    {
        var canceled = new TaskCompletionSource<(bool ReadCanceled, bool WriteCompleted)>();
        var harness = new FaultHarness(new FaultOptions { LimitBytes = 5 }, async c =>
        {
            await WriteAsync(c, "hello world");
            var read = await c.Transport.Input.ReadAsync();
            c.Transport.Input.AdvanceTo(read.Buffer.End);
            var write = await c.Transport.Output.WriteAsync("more"u8.ToArray());
            canceled.SetResult((read.IsCanceled, write.IsCompleted));
        }).Start();

        Assert.Equal("hello", await harness.RestAsync());
        Assert.Equal((true, true), await canceled.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(CloseReason.Server, harness.Connection.CloseReason);
    }

    [Fact]
    public async Task Backpressure_PumpHeldByLatency_HandlerFlushWaitsAtThePauseThreshold()
    {
        var blockedAfter = new TaskCompletionSource<long>();
        var chunk = new byte[16 * 1024];
        var harness = new FaultHarness(new FaultOptions { Latency = TimeSpan.FromSeconds(1) }, async c =>
        {
            long written = 0;
            for (var i = 0; i < 16; i++)
            {
                var flush = c.Transport.Output.WriteAsync(chunk);
                written += chunk.Length;
                if (!flush.IsCompleted)
                {
                    blockedAfter.TrySetResult(written);
                }

                await flush;
            }
        }).Start();

        // Nothing is sent for a second: the handler's flush waits once the pipe holds the threshold.
        Assert.Equal(FaultedTransport.PauseThreshold, await blockedAfter.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(harness.Run.IsCompleted);

        var all = harness.RestAsync();
        await RunClockAsync(harness, all);
        Assert.Equal(16 * chunk.Length, (await all).Length);
    }

    [Fact]
    public async Task Backpressure_ClientNeverReads_HandlerStoppedWithinTheBounds()
    {
        // The pump forces nothing (a limit far away) but goes through our pipe; the client's pipe pauses at 64 KiB.
        var written = 0L;
        var blocked = new TaskCompletionSource();
        var chunk = new byte[16 * 1024];
        var harness = new FaultHarness(new FaultOptions { LimitBytes = long.MaxValue / 2 }, async c =>
        {
            while (!c.ConnectionClosed.IsCancellationRequested)
            {
                var flush = c.Transport.Output.WriteAsync(chunk);
                Interlocked.Add(ref written, chunk.Length);
                if (!flush.IsCompleted)
                {
                    blocked.TrySetResult();
                }

                if ((await flush).IsCompleted)
                {
                    return;
                }
            }
        }).Start();

        await blocked.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(100);
        // The client's pipe (64 KiB and a piece past it), ours (64 KiB and one write past it): never more.
        Assert.InRange(Interlocked.Read(ref written), 64 * 1024, 4 * 64 * 1024);
        Assert.False(harness.Run.IsCompleted);

        harness.Client.Complete();
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1000L)]
    public async Task CloseRequest_ThroughTheWrapper_ReachesTheHandler(long resetAfterBytes)
    {
        var harness = new FaultHarness(new FaultOptions { Latency = 100 * Ms, ResetAfterBytes = resetAfterBytes }, async c =>
        {
            while (true)
            {
                var read = await c.Transport.Input.ReadAsync();
                c.Transport.Input.AdvanceTo(read.Buffer.End);
                if (read.IsCanceled || read.IsCompleted)
                {
                    await WriteAsync(c, "bye");
                    return;
                }
            }
        }).Start();
        await harness.HandlerStarted.Task;
        Assert.NotSame(harness.Original, harness.HandlerTransport);

        harness.Connection.RequestClose();
        var rest = harness.RestAsync();
        await RunClockAsync(harness, rest);
        Assert.Equal("bye", await rest);
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task CloseDelay_WithThePump_OutputDeliveredThenTheCloseWaits()
    {
        var harness = new FaultHarness(new FaultOptions { SliceBytes = 100, CloseDelay = TimeSpan.FromSeconds(3) }, c => WriteAsync(c, "done"));
        var armed = harness.Clock.WhenArmed(TimeSpan.FromSeconds(3));
        harness.Start();

        Assert.Equal("done", await harness.NextAsync());
        await armed;
        Assert.False(harness.Run.IsCompleted);
        var end = harness.NextAsync();
        Assert.False(end.IsCompleted);
        harness.Clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Null(await end);
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task HandlerCompletesItsOutput_PumpDeliversThenEndsTheOutput_HandlerStillReads()
    {
        var handlerRead = new TaskCompletionSource<string>();
        var harness = new FaultHarness(new FaultOptions { Latency = 100 * Ms }, async c =>
        {
            await WriteAsync(c, "last words");
            await c.Transport.Output.CompleteAsync();
            var read = await c.Transport.Input.ReadAsync();
            handlerRead.SetResult(System.Text.Encoding.ASCII.GetString(read.Buffer.ToArray()));
            c.Transport.Input.AdvanceTo(read.Buffer.End);
        }).Start();

        var output = harness.RestAsync();
        await RunClockAsync(harness, output);
        Assert.Equal("last words", await output);
        Assert.False(harness.Run.IsCompleted);

        // A half-close from the server: the client's bytes still reach the handler.
        await harness.Connection.SendAsync("after the end");
        Assert.Equal("after the end", await handlerRead.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task ClientGone_HandlersWritesComplete()
    {
        var ended = new TaskCompletionSource<bool>();
        var harness = new FaultHarness(new FaultOptions { SliceBytes = 4 }, async c =>
        {
            await WriteAsync(c, "1234");
            await c.Transport.Input.ReadAsync();
            // As Echo: the write after the one that found the client gone is told so.
            for (var i = 0; i < 100; i++)
            {
                if ((await c.Transport.Output.WriteAsync("5678"u8.ToArray())).IsCompleted)
                {
                    ended.SetResult(true);
                    return;
                }

                await Task.Delay(10);
            }

            ended.SetResult(false);
        }).Start();
        Assert.Equal("1234", await harness.NextAsync());

        harness.Client.Complete();
        await harness.Connection.SendAsync("x");
        Assert.True(await ended.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task ConnectDelay_HandlerStartsThatMuchLater()
    {
        var harness = new FaultHarness(new FaultOptions { ConnectDelay = TimeSpan.FromSeconds(2) }, c => WriteAsync(c, "banner"));
        var armed = harness.Clock.WhenArmed(TimeSpan.FromSeconds(2));
        harness.Start();
        await armed;
        Assert.False(harness.HandlerStarted.Task.IsCompleted);

        harness.Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromSeconds(2), await harness.HandlerStarted.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("banner", await harness.RestAsync());
        // Nothing to shape on the output: the handler has the transport itself.
        Assert.Same(harness.Original, harness.HandlerTransport);
    }

    [Fact]
    public async Task ConnectDelay_CloseRequestedMeanwhile_HandlerStartsAtOnceAndSeesIt()
    {
        var sawCancel = new TaskCompletionSource<bool>();
        var harness = new FaultHarness(new FaultOptions { ConnectDelay = TimeSpan.FromMinutes(1) }, async c =>
        {
            var read = await c.Transport.Input.ReadAsync();
            sawCancel.SetResult(read.IsCanceled);
        });
        var armed = harness.Clock.WhenArmed(TimeSpan.FromMinutes(1));
        harness.Start();
        await armed;

        harness.Connection.RequestClose();
        Assert.True(await sawCancel.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(TimeSpan.Zero, harness.Clock.Elapsed);
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Timeout_NothingPassesNothingConsumed_ClosedAfterTheTime()
    {
        var harness = new FaultHarness(new FaultOptions { Timeout = TimeSpan.FromSeconds(5) }, _ => throw new InvalidOperationException("the handler never runs"));
        var armed = harness.Clock.WhenArmed(TimeSpan.FromSeconds(5));
        harness.Start();
        await armed;
        await harness.Connection.SendAsync("hello?");

        harness.Clock.Advance(TimeSpan.FromSeconds(4));
        await Task.Delay(50);
        Assert.False(harness.Run.IsCompleted);
        Assert.Equal("", harness.Available());
        harness.Clock.Advance(TimeSpan.FromSeconds(1));
        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Null(await harness.NextAsync());

        // What the client sent is still there, unread: a read after one more byte finds it all.
        await harness.Connection.SendAsync("!");
        var unread = await harness.Original.Input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("hello?!"u8.ToArray(), unread.Buffer.ToArray());
        Assert.False(harness.HandlerStarted.Task.IsCompleted);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Timeout_Zero_HeldUntilTheClientLeavesOrTheDrainAsks(bool clientLeaves)
    {
        var harness = new FaultHarness(new FaultOptions { Timeout = TimeSpan.Zero }, _ => Task.CompletedTask).Start();
        harness.Clock.Advance(TimeSpan.FromDays(1));
        await Task.Delay(50);
        Assert.False(harness.Run.IsCompleted);

        if (clientLeaves)
        {
            harness.Connection.CompleteSending();
        }
        else
        {
            harness.Connection.RequestClose();
        }

        await harness.Run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(harness.HandlerStarted.Task.IsCompleted);
    }

    [Fact]
    public async Task ProbabilityZero_ConnectionUntouchedAndUncounted()
    {
        var options = new FaultOptions { Latency = TimeSpan.FromSeconds(1), Probability = 0 };
        var seen = new List<IDuplexPipe>();
        var harness = new FaultHarness(options, c =>
        {
            seen.Add(c.Transport);
            return Task.CompletedTask;
        });
        for (var i = 0; i < 100; i++)
        {
            await harness.Middleware.OnConnectionAsync(harness.Connection.Context);
        }

        Assert.All(seen, t => Assert.Same(harness.Original, t));
        Assert.Equal(0, harness.Counters.Count(FaultKind.Latency));
    }

    [Fact]
    public void UseFaults_ListenerWithoutFaults_AddsNothing()
    {
        Assert.Equal(0, Uses(null));
        Assert.Equal(0, Uses(new FaultOptions { Probability = 0.5 }));
        Assert.Equal(1, Uses(new FaultOptions { CloseDelay = Ms }));

        static int Uses(FaultOptions? faults)
        {
            var listener = new ListenerRuntime(new ListenerDefinition { Name = "echo", HandlerName = "Echo", Faults = faults },
                new EchoHandler(TimeProvider.System), TimeProvider.System, NullLoggerFactory.Instance);
            var builder = new CountingBuilder();
            Assert.Same(builder, builder.UseFaults(listener, TimeProvider.System, NullLogger.Instance));
            Assert.Equal(faults is null || faults.ConfiguredKinds().Length == 0, listener.Faults is null);
            return builder.Uses;
        }
    }

    /// <summary>Lets the clock run (5 ms at a time) until <paramref name="done"/> completes.</summary>
    private static async Task RunClockAsync(FaultHarness harness, Task done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!done.IsCompleted && DateTime.UtcNow < deadline)
        {
            harness.Clock.Advance(5 * Ms);
            await Task.WhenAny(done, Task.Delay(1));
        }

        await done;
    }

    private sealed class CountingBuilder : IConnectionBuilder
    {
        public int Uses { get; private set; }

        public IServiceProvider ApplicationServices { get; } = new ServiceCollection().BuildServiceProvider();

        public IConnectionBuilder Use(Func<ConnectionDelegate, ConnectionDelegate> middleware)
        {
            Uses++;
            return this;
        }

        public ConnectionDelegate Build() => _ => Task.CompletedTask;
    }
}

using System.Text;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Handlers;

public class EchoHandlerTests
{
    private static readonly TimeSpan JustBeforeQuiet = EchoHandler.DrainQuietPeriod - TimeSpan.FromMilliseconds(1);

    [Fact]
    public async Task OnConnectedAsync_BinaryInManyWrites_EchoedExactlyThenClosedAtEof()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler(new TestClock()));
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        foreach (var chunk in all.Chunk(7))
        {
            await connection.SendAsync(chunk);
        }

        connection.CompleteSending();
        Assert.Equal(all, await connection.ReadAllAsync());
        await run;
    }

    [Fact]
    public async Task OnConnectedAsync_CloseRequested_ReturnsWhatWasReceivedThenClosesAfterTheQuietPeriod()
    {
        var clock = new TestClock();
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler(clock));
        await connection.SendAsync("before shutdown");
        Assert.Equal("before shutdown", await connection.ReadTextAsync(15));
        await connection.SendAsync("late");
        var quiet = clock.WhenArmed(EchoHandler.DrainQuietPeriod);
        connection.RequestClose();
        Assert.Equal("late", await connection.ReadTextAsync(4));
        await quiet;

        // Quiet for a moment less than the period: still open. The period itself: closed.
        clock.Advance(JustBeforeQuiet);
        Assert.False(run.IsCompleted, "closed before the quiet period");
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Empty(await connection.ReadAllAsync());
        await run;
    }

    [Fact]
    public async Task OnConnectedAsync_ShutdownWhileDataStillArriving_EchoesUntilQuietThenCloses()
    {
        var clock = new TestClock();
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler(clock));
        var quiet = clock.WhenArmed(EchoHandler.DrainQuietPeriod);
        connection.RequestClose();
        await quiet;

        // Bytes still arriving after the request (from socket buffers) are echoed, each just inside the
        // quiet period: five of them keep the connection open more than four periods in all.
        for (var i = 0; i < 5; i++)
        {
            clock.Advance(JustBeforeQuiet);
            Assert.False(run.IsCompleted, $"closed before the quiet period, at chunk {i}");
            quiet = clock.WhenArmed(EchoHandler.DrainQuietPeriod);
            await connection.SendAsync($"chunk{i};");
            Assert.Equal($"chunk{i};", await connection.ReadTextAsync(7));
            await quiet;
        }

        clock.Advance(JustBeforeQuiet);
        Assert.False(run.IsCompleted, "closed before the quiet period after the last chunk");
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Empty(await connection.ReadAllAsync());
        await run;
        Assert.Equal(5 * JustBeforeQuiet + EchoHandler.DrainQuietPeriod, clock.Elapsed);
    }

    [Fact]
    public async Task OnConnectedAsync_EmptyConnection_ClosesWithNothingSent()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler(new TestClock()));
        connection.CompleteSending();
        Assert.Empty(await connection.ReadAllAsync());
        await run;
    }
}

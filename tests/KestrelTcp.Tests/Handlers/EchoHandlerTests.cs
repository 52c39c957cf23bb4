using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Handlers;

public class EchoHandlerTests
{
    [Fact]
    public async Task OnConnectedAsync_BinaryInManyWrites_EchoedExactlyThenClosedAtEof()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler(TimeProvider.System));
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
    public async Task OnConnectedAsync_CloseRequested_ReturnsWhatWasReceivedThenCloses()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler(TimeProvider.System));
        await connection.SendAsync("before shutdown");
        Assert.Equal("before shutdown", await connection.ReadTextAsync(15));
        await connection.SendAsync("late");
        connection.RequestClose();
        Assert.Equal("late", System.Text.Encoding.UTF8.GetString(await connection.ReadAllAsync()));
        await run;
    }

    [Fact]
    public async Task OnConnectedAsync_ShutdownWhileDataStillArriving_EchoesUntilQuietThenCloses()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler(TimeProvider.System));
        var reading = connection.ReadAllAsync();
        connection.RequestClose();
        // Bytes still arriving after the request (from socket buffers) are echoed too.
        for (var i = 0; i < 5; i++)
        {
            await connection.SendAsync($"chunk{i};");
            await Task.Delay(20);
        }

        Assert.Equal("chunk0;chunk1;chunk2;chunk3;chunk4;", System.Text.Encoding.UTF8.GetString(await reading));
        await run;
    }

    [Fact]
    public async Task OnConnectedAsync_EmptyConnection_ClosesWithNothingSent()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler(TimeProvider.System));
        connection.CompleteSending();
        Assert.Empty(await connection.ReadAllAsync());
        await run;
    }
}

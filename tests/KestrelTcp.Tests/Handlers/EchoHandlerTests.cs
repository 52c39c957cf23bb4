using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Handlers;

public class EchoHandlerTests
{
    [Fact]
    public async Task OnConnectedAsync_BinaryInManyWrites_EchoedExactlyThenClosedAtEof()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler());
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
        var run = connection.RunAsync(new EchoHandler());
        await connection.SendAsync("before shutdown");
        Assert.Equal("before shutdown", await connection.ReadTextAsync(15));
        await connection.SendAsync("late");
        connection.RequestClose();
        Assert.Equal("late", System.Text.Encoding.UTF8.GetString(await connection.ReadAllAsync()));
        await run;
    }

    [Fact]
    public async Task OnConnectedAsync_EmptyConnection_ClosesWithNothingSent()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new EchoHandler());
        connection.CompleteSending();
        Assert.Empty(await connection.ReadAllAsync());
        await run;
    }
}

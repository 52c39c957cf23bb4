using System.IO.Pipelines;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Handlers;

public class DiscardHandlerTests
{
    [Fact]
    public async Task OnConnectedAsync_DataThenEof_EverythingConsumedNothingWritten()
    {
        // A small pause threshold on the server's input: the client's writes complete only if Discard consumes.
        var connection = new PipeConnection(new PipeOptions(pauseWriterThreshold: 1024, resumeWriterThreshold: 512, useSynchronizationContext: false));
        var run = connection.RunAsync(new DiscardHandler());
        var chunk = new byte[700];
        new Random(7).NextBytes(chunk);
        for (var i = 0; i < 1500; i++)
        {
            await connection.SendAsync(chunk).WaitAsync(TimeSpan.FromSeconds(10));
        }

        connection.CompleteSending();
        Assert.Empty(await connection.ReadAllAsync());
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task OnConnectedAsync_EmptyConnection_ClosesAtEofWithNothingWritten()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new DiscardHandler());
        connection.CompleteSending();
        Assert.Empty(await connection.ReadAllAsync());
        await run;
    }

    [Fact]
    public async Task OnConnectedAsync_CloseRequested_FinishesWithNothingWritten()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(new DiscardHandler());
        await connection.SendAsync("dropped");
        connection.RequestClose();
        Assert.Empty(await connection.ReadAllAsync());
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }
}

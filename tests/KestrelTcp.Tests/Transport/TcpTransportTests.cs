using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Tests.Transport;

/// <summary>
/// KestrelTcp's own transport over real loopback sockets: the reader that receives only when the
/// handler reads, the writer that sends on flush, and the connection's features. Every wait is
/// bounded; the only fixed waits are the short ones that show something does not happen.
/// </summary>
public class TcpTransportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>Long enough for a read or flush that should not complete to show it did not.</summary>
    private static readonly TimeSpan NotHappening = TimeSpan.FromMilliseconds(150);

    // ---- Input

    [Fact]
    public async Task ReadAsync_ClientSends_ExactBytesThenBlockBackInPool()
    {
        await using var loop = await Loopback.OpenAsync();
        var data = RandomBytes(1000, seed: 1);
        await loop.Client.SendAsync(data);

        var result = await ReadAtLeastAsync(loop.Input, data.Length);
        Assert.Equal(data, result.Buffer.ToArray());
        Assert.False(result.IsCompleted);
        var block = Assert.IsType<Block>(result.Buffer.Start.GetObject());
        loop.Input.AdvanceTo(result.Buffer.End);

        // Consumed everything: the block went back to the pool (Return resets it) and is the one
        // the next receive rents (the pool is last-in first-out and this test's own).
        Assert.Equal(0, block.End);
        Assert.Equal(0, loop.Connection.InputBuffered);
        await loop.Client.SendAsync("next"u8.ToArray());
        result = await ReadAtLeastAsync(loop.Input, 4);
        Assert.Equal("next"u8.ToArray(), result.Buffer.ToArray());
        Assert.Same(block, result.Buffer.Start.GetObject());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task ReadAsync_NothingConsumedAllExamined_WaitsForMoreThenReturnsOldAndNew()
    {
        await using var loop = await Loopback.OpenAsync();
        await loop.Client.SendAsync("abc"u8.ToArray());
        var result = await ReadAtLeastAsync(loop.Input, 3);
        Assert.Equal("abc"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);

        var next = loop.Input.ReadAsync().AsTask();
        await AssertPendingAsync(next, "the reader examined everything, so it must wait for new bytes");
        Assert.Equal(3, loop.Connection.InputBuffered);

        await loop.Client.SendAsync("def"u8.ToArray());
        result = await next.WaitAsync(Timeout);
        if (result.Buffer.Length < 6)
        {
            loop.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            result = await ReadAtLeastAsync(loop.Input, 6);
        }

        Assert.Equal("abcdef"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task ReadAsync_ExaminedLessThanEnd_CompletesAtOnceWithTheRest()
    {
        await using var loop = await Loopback.OpenAsync();
        await loop.Client.SendAsync("abcdef"u8.ToArray());
        var result = await ReadAtLeastAsync(loop.Input, 6);
        loop.Input.AdvanceTo(result.Buffer.GetPosition(2), result.Buffer.GetPosition(4));

        var next = loop.Input.ReadAsync();
        Assert.True(next.IsCompleted, "bytes past what was examined are returned without waiting");
        result = await next;
        Assert.Equal("cdef"u8.ToArray(), result.Buffer.ToArray());
        Assert.Equal(4, loop.Connection.InputBuffered);
        loop.Input.AdvanceTo(result.Buffer.End);
        Assert.Equal(0, loop.Connection.InputBuffered);
    }

    [Fact]
    public async Task CancelPendingRead_WhileReadWaits_CanceledThenLaterDataStillRead()
    {
        await using var loop = await Loopback.OpenAsync();
        var read = loop.Input.ReadAsync().AsTask();
        await AssertPendingAsync(read, "nothing was sent");

        loop.Input.CancelPendingRead();
        var result = await read.WaitAsync(Timeout);
        Assert.True(result.IsCanceled);
        Assert.False(result.IsCompleted);
        Assert.True(result.Buffer.IsEmpty);
        loop.Input.AdvanceTo(result.Buffer.Start);

        await loop.Client.SendAsync("after"u8.ToArray());
        result = await ReadAtLeastAsync(loop.Input, 5);
        Assert.False(result.IsCanceled);
        Assert.Equal("after"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task CancelPendingRead_BeforeRead_ThatReadReturnsCanceledAtOnce()
    {
        await using var loop = await Loopback.OpenAsync();
        loop.Input.CancelPendingRead();

        var read = loop.Input.ReadAsync();
        Assert.True(read.IsCompleted, "a cancel requested before the read completes it without waiting");
        var result = await read;
        Assert.True(result.IsCanceled);
        loop.Input.AdvanceTo(result.Buffer.Start);

        // Used up by that read: the next one waits for data again.
        var next = loop.Input.ReadAsync().AsTask();
        await AssertPendingAsync(next, "the cancel was consumed by the previous read");
        await loop.Client.SendAsync("x"u8.ToArray());
        result = await next.WaitAsync(Timeout);
        Assert.False(result.IsCanceled);
        Assert.Equal("x"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task ReadAsync_TokenFires_OperationCanceledThenNextReadWorks()
    {
        await using var loop = await Loopback.OpenAsync();
        using var cts = new CancellationTokenSource();
        var read = loop.Input.ReadAsync(cts.Token).AsTask();
        await AssertPendingAsync(read, "nothing was sent");

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(Timeout));

        await loop.Client.SendAsync("still"u8.ToArray());
        var result = await ReadAtLeastAsync(loop.Input, 5);
        Assert.Equal("still"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadAsync_ClientFin_CompletedWithRemainingData(bool inline)
    {
        await using var loop = await Loopback.OpenAsync(inline: inline);
        await loop.Client.SendAsync("last words"u8.ToArray());
        loop.Client.ShutdownSend();

        // Never consuming, so the completed result must still carry every byte.
        ReadResult result;
        while (true)
        {
            result = await loop.Input.ReadAsync().AsTask().WaitAsync(Timeout);
            if (result.IsCompleted)
            {
                break;
            }

            loop.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }

        Assert.Equal("last words"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);

        // And it stays completed.
        result = await loop.Input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.True(result.IsCompleted);
        Assert.True(result.Buffer.IsEmpty);
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadAsync_ClientReset_ThrowsConnectionReset(bool inline)
    {
        await using var loop = await Loopback.OpenAsync(inline: inline);
        var read = loop.Input.ReadAsync().AsTask();
        await AssertPendingAsync(read, "nothing was sent");

        loop.Client.Reset();
        await Assert.ThrowsAsync<ConnectionResetException>(() => read.WaitAsync(Timeout));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Abort_WhileReadWaits_ReadThrowsTheAbortReasonAndClientSeesTheEnd(bool inline)
    {
        await using var loop = await Loopback.OpenAsync(inline: inline);
        var read = loop.Input.ReadAsync().AsTask();
        await AssertPendingAsync(read, "nothing was sent");

        var reason = new ConnectionAbortedException("x");
        loop.Connection.Abort(reason);
        var thrown = await Assert.ThrowsAsync<ConnectionAbortedException>(() => read.WaitAsync(Timeout));
        Assert.Same(reason, thrown);
        Assert.Equal("x", thrown.Message);

        // Later reads keep failing the same way.
        Assert.Same(reason, await Assert.ThrowsAsync<ConnectionAbortedException>(() => loop.Input.ReadAsync().AsTask().WaitAsync(Timeout)));

        // The client sees its connection end (FIN or reset, both are an end), and nothing else.
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            Assert.Equal(0, await loop.Client.Socket.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token));
        }
        catch (SocketException ex)
        {
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
        }
    }

    /// <summary>
    /// The abort shuts the socket down before closing it, and the pending readiness wait can see that
    /// shutdown as an end of stream: repeated, so the race shows. The read must throw the reason every
    /// time, never return a completed (FIN-like) result.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Abort_WhileReadWaits_NeverSeenAsClientFin(bool inline)
    {
        const int Attempts = 100;
        var seenAsFin = 0;
        for (var i = 0; i < Attempts; i++)
        {
            await using var loop = await Loopback.OpenAsync(inline: inline);
            var observer = new RecordingObserver();
            loop.Connection.Observer = observer;
            var read = loop.Input.ReadAsync().AsTask();
            var reason = new ConnectionAbortedException("x");
            loop.Connection.Abort(reason);
            try
            {
                await read.WaitAsync(Timeout);
                seenAsFin++;
            }
            catch (ConnectionAbortedException ex)
            {
                Assert.Same(reason, ex);
                Assert.Equal(0, observer.ClientCompleted);
            }
        }

        Assert.True(seenAsFin == 0, $"{seenAsFin} of {Attempts} aborted reads returned a completed result instead of throwing the abort reason");
    }

    /// <summary>
    /// Disposing closes the socket under a pending read: the read must end, never be left waiting.
    /// Repeated, so a race between the close and the readiness wait's completion shows.
    /// </summary>
    [Fact]
    public async Task DisposeAsync_WhileReadWaits_ReadEnds()
    {
        const int Attempts = 100;
        for (var i = 0; i < Attempts; i++)
        {
            await using var loop = await Loopback.OpenAsync();
            var read = loop.Input.ReadAsync().AsTask();
            await loop.Connection.DisposeAsync().AsTask().WaitAsync(Timeout);

            var ended = await Task.WhenAny(read, Task.Delay(Timeout));
            Assert.True(ended == read, $"attempt {i}: a read pending while the connection was disposed never completed");
        }
    }

    /// <summary>
    /// How a read pending at dispose ends: a completed result or the close as
    /// <see cref="ConnectionAbortedException"/>, as over Kestrel's transport, never a raw socket
    /// error (closing a socket with an operation pending fails it with ECONNABORTED on Linux).
    /// </summary>
    [Fact]
    public async Task DisposeAsync_WhileReadWaits_EndsAsCloseNotSocketError()
    {
        const int Attempts = 100;
        var leftWaiting = 0;
        for (var i = 0; i < Attempts && leftWaiting < 3; i++)
        {
            await using var loop = await Loopback.OpenAsync();
            var read = loop.Input.ReadAsync().AsTask();
            await loop.Connection.DisposeAsync().AsTask().WaitAsync(Timeout);
            if (await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(1))) != read)
            {
                // Left waiting: DisposeAsync_WhileReadWaits_ReadEnds reports that; a few are enough here.
                leftWaiting++;
                continue;
            }

            try
            {
                Assert.True((await read).IsCompleted);
            }
            catch (Exception ex) when (ex is not ConnectionAbortedException)
            {
                Assert.Fail($"attempt {i}: the read ended with {ex.GetType().Name}: {ex.Message}");
            }
            catch (ConnectionAbortedException)
            {
            }
        }
    }

    [Fact]
    public async Task ReadAsync_ReadAheadFull_StopsReceivingUntilConsumed()
    {
        const int MaxReadBuffer = 4096;
        await using var loop = await Loopback.OpenAsync(maxReadBuffer: MaxReadBuffer);
        var data = RandomBytes(1 << 20, seed: 9);
        var sending = loop.Client.SendAsync(data);

        // A handler that never consumes: read-ahead grows until it reaches the limit, at most one
        // block past it (the receive that crossed it).
        ReadResult result;
        while (true)
        {
            result = await loop.Input.ReadAsync().AsTask().WaitAsync(Timeout);
            Assert.InRange(loop.Connection.InputBuffered, 1, MaxReadBuffer + 65536);
            Assert.Equal(loop.Connection.InputBuffered, result.Buffer.Length);
            loop.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            if (loop.Connection.InputBuffered >= MaxReadBuffer)
            {
                break;
            }
        }

        var buffered = loop.Connection.InputBuffered;
        var blocked = loop.Input.ReadAsync().AsTask();
        await AssertPendingAsync(blocked, "read-ahead is full and all of it examined");
        Assert.Equal(buffered, loop.Connection.InputBuffered);

        loop.Input.CancelPendingRead();
        result = await blocked.WaitAsync(Timeout);
        Assert.True(result.IsCanceled);
        Assert.Equal(data.AsSpan(0, (int)buffered).ToArray(), result.Buffer.ToArray());

        // Consuming lets it receive again, and the stream goes on where it stopped.
        loop.Input.AdvanceTo(result.Buffer.End);
        Assert.Equal(0, loop.Connection.InputBuffered);
        result = await ReadAtLeastAsync(loop.Input, 1);
        Assert.Equal(data.AsSpan((int)buffered, (int)result.Buffer.Length).ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);
        GC.KeepAlive(sending);
    }

    // ---- Output

    [Fact]
    public async Task FlushAsync_ManySmallAdvances_DeliversExactlyThoseBytes()
    {
        await using var loop = await Loopback.OpenAsync();
        var data = RandomBytes(300_000, seed: 3);
        var receiving = loop.Client.ReadExactlyAsync(data.Length);

        // Pieces of uneven sizes, so that some do not fit what is left of a block.
        var random = new Random(4);
        var offset = 0;
        while (offset < data.Length)
        {
            var length = Math.Min(random.Next(1, 5000), data.Length - offset);
            var span = loop.Output.GetSpan(length);
            Assert.True(span.Length >= length);
            data.AsSpan(offset, length).CopyTo(span);
            loop.Output.Advance(length);
            offset += length;
        }

        Assert.Equal(data.Length, loop.Output.UnflushedBytes);
        var flush = await loop.Output.FlushAsync().AsTask().WaitAsync(Timeout);
        Assert.False(flush.IsCompleted);
        Assert.False(flush.IsCanceled);
        Assert.Equal(0, loop.Output.UnflushedBytes);
        Assert.Equal(data, await receiving.WaitAsync(Timeout));
    }

    [Fact]
    public async Task WriteAsync_NothingBuffered_DeliversTheBytes()
    {
        await using var loop = await Loopback.OpenAsync();
        var data = RandomBytes(100_000, seed: 5);
        var receiving = loop.Client.ReadExactlyAsync(data.Length);

        var flush = await loop.Output.WriteAsync(data.AsMemory()).AsTask().WaitAsync(Timeout);
        Assert.False(flush.IsCompleted);
        Assert.Equal(data, await receiving.WaitAsync(Timeout));

        // And after something was buffered, through the buffer, in order.
        loop.Output.GetSpan(1)[0] = (byte)'a';
        loop.Output.Advance(1);
        await loop.Output.WriteAsync("bc"u8.ToArray()).AsTask().WaitAsync(Timeout);
        Assert.Equal("abc"u8.ToArray(), await loop.Client.ReadExactlyAsync(3, Timeout));
    }

    [Fact]
    public async Task FlushAsync_AfterClientReset_EventuallyCompleted()
    {
        await using var loop = await Loopback.OpenAsync();
        await loop.Output.WriteAsync("hello"u8.ToArray()).AsTask().WaitAsync(Timeout);
        Assert.Equal("hello"u8.ToArray(), await loop.Client.ReadExactlyAsync(5, Timeout));

        loop.Client.Reset();
        FlushResult result = default;
        for (var i = 0; i < 50 && !result.IsCompleted; i++)
        {
            loop.Output.Write(new byte[16 * 1024]);
            result = await loop.Output.FlushAsync().AsTask().WaitAsync(Timeout);
        }

        Assert.True(result.IsCompleted, "no flush reported the client gone");

        // It stays completed, and writing more does not fail.
        loop.Output.Write("more"u8);
        Assert.True((await loop.Output.FlushAsync().AsTask().WaitAsync(Timeout)).IsCompleted);
        Assert.Equal(0, loop.Output.UnflushedBytes);
    }

    [Fact]
    public async Task DisposeAsync_WrittenNotFlushed_SentThenFin()
    {
        await using var loop = await Loopback.OpenAsync();
        var data = RandomBytes(200_000, seed: 6);
        loop.Output.Write(data);
        var receiving = loop.Client.ReadToEndAsync(Timeout);

        await loop.Connection.DisposeAsync().AsTask().WaitAsync(Timeout);

        // ReadToEndAsync returns at a FIN and throws at a reset.
        Assert.Equal(data, await receiving.WaitAsync(Timeout));
    }

    [Fact]
    public async Task FlushAsync_ClientNeverReads_WaitsUntilAbortThenCompleted()
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await using var loop = await Loopback.OpenAsync(client: client);
        loop.Connection.Socket.SendBufferSize = 16 * 1024;
        var chunk = RandomBytes(65536, seed: 7);

        Task<FlushResult>? stuck = null;
        for (var i = 0; i < 2000 && stuck is null; i++)
        {
            loop.Output.Write(chunk);
            var flush = loop.Output.FlushAsync().AsTask();
            if (await Task.WhenAny(flush, Task.Delay(NotHappening)) != flush)
            {
                stuck = flush;
            }
            else
            {
                Assert.False((await flush).IsCompleted);
            }
        }

        // Null here means a client that never reads never held a flush back.
        Assert.NotNull(stuck);
        loop.Connection.Abort(new ConnectionAbortedException("no reader"));
        var result = await stuck.WaitAsync(Timeout);
        Assert.True(result.IsCompleted);
    }

    // ---- Connection and features

    [Fact]
    public async Task Features_SocketFeature_IsTheAcceptedSocket()
    {
        await using var loop = await Loopback.OpenAsync();
        var socket = loop.Connection.Features.Get<IConnectionSocketFeature>()!.Socket;
        Assert.Equal(loop.Client.Socket.LocalEndPoint, socket.RemoteEndPoint);
        Assert.Equal(loop.Client.Socket.RemoteEndPoint, socket.LocalEndPoint);
        Assert.Equal(loop.Client.Socket.LocalEndPoint, loop.Connection.RemoteEndPoint);
        Assert.Equal(loop.Listener.EndPoint, loop.Connection.LocalEndPoint);
        Assert.True(socket.NoDelay);

        // The transport's own features are the connection.
        Assert.Same(loop.Connection.Transport, loop.Connection.Features.Get<IConnectionTransportFeature>()!.Transport);
        Assert.Equal(loop.Connection.ConnectionId, loop.Connection.Features.Get<IConnectionIdFeature>()!.ConnectionId);
    }

    [Fact]
    public async Task Features_ArbitraryTypes_RoundTripAndChangeRevision()
    {
        await using var loop = await Loopback.OpenAsync();
        var features = loop.Connection.Features;
        Assert.Null(features.Get<FirstFeature>());

        var revision = features.Revision;
        var first = new FirstFeature();
        features.Set(first);
        Assert.NotEqual(revision, features.Revision);
        Assert.Same(first, features.Get<FirstFeature>());

        revision = features.Revision;
        var second = new SecondFeature();
        features[typeof(SecondFeature)] = second;
        Assert.NotEqual(revision, features.Revision);
        Assert.Same(first, features.Get<FirstFeature>());
        Assert.Same(second, features.Get<SecondFeature>());
        Assert.Contains(features, f => f.Key == typeof(FirstFeature) && ReferenceEquals(f.Value, first));
        Assert.Contains(features, f => f.Key == typeof(SecondFeature) && ReferenceEquals(f.Value, second));

        features.Set<FirstFeature>(null);
        Assert.Null(features.Get<FirstFeature>());
        Assert.Same(second, features.Get<SecondFeature>());
        Assert.DoesNotContain(features, f => f.Key == typeof(FirstFeature));
    }

    [Fact]
    public async Task Items_SetThenGet_SameThroughTheFeature()
    {
        await using var loop = await Loopback.OpenAsync();
        loop.Connection.Items["key"] = "value";
        Assert.Equal("value", loop.Connection.Items["key"]);
        Assert.Same(loop.Connection.Items, loop.Connection.Features.Get<IConnectionItemsFeature>()!.Items);
        Assert.False(loop.Connection.Items.ContainsKey("other"));
    }

    [Fact]
    public async Task ConnectionId_ThirteenBase32Characters_DiffersBetweenConnections()
    {
        await using var loop = await Loopback.OpenAsync();
        await using var other = await TcpTestClient.ConnectAsync(loop.Listener.EndPoint);
        await using var second = (TcpConnection)(await loop.Listener.AcceptAsync().AsTask().WaitAsync(Timeout))!;

        Assert.Matches("^[0-9A-V]{13}$", loop.Connection.ConnectionId);
        Assert.Matches("^[0-9A-V]{13}$", second.ConnectionId);
        Assert.NotEqual(loop.Connection.ConnectionId, second.ConnectionId);
        Assert.Equal(loop.Connection.ConnectionId, loop.Connection.ConnectionId);
    }

    [Fact]
    public async Task ConnectionClosed_Abort_Canceled()
    {
        await using var loop = await Loopback.OpenAsync();
        var before = loop.Connection.ConnectionClosed;
        Assert.False(before.IsCancellationRequested);
        var canceled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = before.Register(() => canceled.TrySetResult());

        loop.Connection.Abort(new ConnectionAbortedException("x"));
        await canceled.Task.WaitAsync(Timeout);

        // Asked for only after the abort: canceled already.
        Assert.True(loop.Connection.ConnectionClosed.IsCancellationRequested);
    }

    [Fact]
    public async Task ConnectionClosed_FirstAskedAfterAbort_AlreadyCanceled()
    {
        await using var loop = await Loopback.OpenAsync();
        loop.Connection.Abort(new ConnectionAbortedException("x"));
        Assert.True(loop.Connection.ConnectionClosed.IsCancellationRequested);
    }

    // ---- Observer

    [Fact]
    public async Task Observer_ReceivesWritesFlushesAndFin_Reported()
    {
        await using var loop = await Loopback.OpenAsync();
        var observer = new RecordingObserver();
        loop.Connection.Observer = observer;

        await loop.Client.SendAsync(RandomBytes(10, seed: 8));
        var result = await ReadAtLeastAsync(loop.Input, 10);
        loop.Input.AdvanceTo(result.Buffer.End);
        Assert.Equal(10, observer.Received);
        Assert.All(observer.Receives, count => Assert.True(count > 0));

        loop.Output.GetSpan(5);
        loop.Output.Advance(5);
        Assert.Equal((5, 0), (observer.Written, observer.Flushes));
        await loop.Output.FlushAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal((5, 1), (observer.Written, observer.Flushes));

        await loop.Output.WriteAsync(new byte[7]).AsTask().WaitAsync(Timeout);
        Assert.Equal((12, 2), (observer.Written, observer.Flushes));
        Assert.Equal(12, (await loop.Client.ReadExactlyAsync(12, Timeout)).Length);
        Assert.Equal(0, observer.ClientCompleted);

        loop.Client.ShutdownSend();
        result = await loop.Input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.True(result.IsCompleted);
        loop.Input.AdvanceTo(result.Buffer.End);
        Assert.Equal(1, observer.ClientCompleted);
        Assert.Equal(10, observer.Received);
    }

    // ---- Factory and listener

    [Fact]
    public async Task BindAsync_ListenerEndPointOnlyCounted_OthersGoToSocketTransport()
    {
        var factory = CreateFactory(maxReadBuffer: 65536, inline: false);
        await using var ours = await factory.BindAsync(new ListenerEndPoint(IPAddress.Loopback, 0));
        Assert.IsType<TcpConnectionListener>(ours);
        Assert.Equal(1, factory.Bound);

        await using var kestrels = await factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.IsNotType<TcpConnectionListener>(kestrels);
        Assert.Equal(1, factory.Bound);
    }

    [Fact]
    public async Task BindAsync_PortInUse_AddressInUseException()
    {
        var factory = CreateFactory(maxReadBuffer: 65536, inline: false);
        await using var first = await factory.BindAsync(new ListenerEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)first.EndPoint).Port;
        await Assert.ThrowsAsync<AddressInUseException>(() => factory.BindAsync(new ListenerEndPoint(IPAddress.Loopback, port)).AsTask());
    }

    [Fact]
    public async Task AcceptAsync_AfterUnbind_ReturnsNull()
    {
        var factory = CreateFactory(maxReadBuffer: 65536, inline: false);
        await using var listener = await factory.BindAsync(new ListenerEndPoint(IPAddress.Loopback, 0));
        var accept = listener.AcceptAsync().AsTask();
        await AssertPendingAsync(accept, "nobody connected");
        await listener.UnbindAsync();
        Assert.Null(await accept.WaitAsync(Timeout));
    }

    // ---- Helpers

    private static TcpTransportFactory CreateFactory(long maxReadBuffer, bool inline) => new(
        Options.Create(new SocketTransportOptions()),
        NullLoggerFactory.Instance,
        new TcpTransportSettings(Backlog: 128, NoDelay: true, MaxReadBufferSize: maxReadBuffer, Inline: inline, BlockSize: 65536, RetainedBlocks: 8));

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>A read, bounded, returning once at least <paramref name="count"/> bytes (or the end) are there.</summary>
    private static Task<ReadResult> ReadAtLeastAsync(PipeReader reader, int count) =>
        reader.ReadAtLeastAsync(count).AsTask().WaitAsync(Timeout);

    private static async Task AssertPendingAsync(Task task, string because)
    {
        await Task.WhenAny(task, Task.Delay(NotHappening));
        Assert.False(task.IsCompleted, $"completed although {because}");
    }

    /// <summary>A listener of a transport of its own (so its block pool is this test's alone), one client and the accepted connection.</summary>
    private sealed class Loopback : IAsyncDisposable
    {
        private Loopback(IConnectionListener listener, TcpTestClient client, TcpConnection connection)
        {
            Listener = listener;
            Client = client;
            Connection = connection;
        }

        public IConnectionListener Listener { get; }

        public TcpTestClient Client { get; }

        public TcpConnection Connection { get; }

        public PipeReader Input => Connection.Transport.Input;

        public PipeWriter Output => Connection.Transport.Output;

        public static async Task<Loopback> OpenAsync(long maxReadBuffer = 1 << 20, bool inline = false, Socket? client = null)
        {
            var listener = await CreateFactory(maxReadBuffer, inline).BindAsync(new ListenerEndPoint(IPAddress.Loopback, 0));
            var connecting = client is null
                ? TcpTestClient.ConnectAsync(listener.EndPoint)
                : TcpTestClient.ConnectAsync(client, listener.EndPoint);
            var connected = await connecting.WaitAsync(Timeout);
            var accepted = await listener.AcceptAsync().AsTask().WaitAsync(Timeout);
            return new Loopback(listener, connected, Assert.IsType<TcpConnection>(accepted));
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            Connection.Abort(new ConnectionAbortedException("Test over."));
            await Connection.DisposeAsync().AsTask().WaitAsync(Timeout);
            await Listener.DisposeAsync();
        }
    }

    private sealed class FirstFeature;

    private sealed class SecondFeature;

    private sealed class RecordingObserver : ITransportObserver
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<int> _receives = new();
        private int _written;
        private int _flushes;
        private int _clientCompleted;

        public IEnumerable<int> Receives => _receives;

        public int Received => _receives.Sum();

        public int Written => Volatile.Read(ref _written);

        public int Flushes => Volatile.Read(ref _flushes);

        public int ClientCompleted => Volatile.Read(ref _clientCompleted);

        public void OnReceived(int bytes) => _receives.Enqueue(bytes);

        public void OnWritten(int bytes) => Interlocked.Add(ref _written, bytes);

        public void OnFlushed() => Interlocked.Increment(ref _flushes);

        public void OnClientCompleted() => Interlocked.Increment(ref _clientCompleted);
    }
}

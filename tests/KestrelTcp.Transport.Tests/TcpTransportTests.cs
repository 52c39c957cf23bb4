using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using KestrelTcp.Transport.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging.Abstractions;

namespace KestrelTcp.Transport.Tests;

/// <summary>
/// KestrelTcp's transport on its own, without Kestrel, over real loopback sockets: the reader that
/// receives only when the handler reads (or watches for the end), the writer that sends on flush,
/// its blocks, the connection's features and the listener. Every wait is bounded; what must not
/// happen yet is checked on the spot (a read that must wait is not completed when it returns).
/// </summary>
public class TcpTransportTests
{
    private static readonly TimeSpan Timeout = Waits.Timeout;

    // ---- Input

    [Fact]
    public async Task ReadAsync_ClientSends_ExactBytesThenBlockBackInPool()
    {
        await using var loop = await Loopback.OpenAsync();
        var data = Pattern.Bytes(0, 1000);
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
        await loop.Client.SendAsync("next");
        result = await ReadAtLeastAsync(loop.Input, 4);
        Assert.Equal("next"u8.ToArray(), result.Buffer.ToArray());
        Assert.Same(block, result.Buffer.Start.GetObject());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task ReadAsync_NothingConsumedAllExamined_WaitsForMoreThenReturnsOldAndNew()
    {
        await using var loop = await Loopback.OpenAsync();
        await loop.Client.SendAsync("abc");
        var result = await ReadAtLeastAsync(loop.Input, 3);
        Assert.Equal("abc"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);

        var next = loop.Input.ReadAsync();
        Assert.False(next.IsCompleted, "the reader examined everything, so it must wait for new bytes");
        Assert.Equal(3, loop.Connection.InputBuffered);

        await loop.Client.SendAsync("def");
        result = await next.Within();
        Assert.Equal("abcdef"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task ReadAsync_ExaminedLessThanEnd_CompletesAtOnceWithTheRest()
    {
        await using var loop = await Loopback.OpenAsync();
        await loop.Client.SendAsync("abcdef");
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
        var read = loop.Input.ReadAsync();
        Assert.False(read.IsCompleted, "nothing was sent");

        loop.Input.CancelPendingRead();
        var result = await read.Within();
        Assert.True(result.IsCanceled);
        Assert.False(result.IsCompleted);
        Assert.True(result.Buffer.IsEmpty);
        loop.Input.AdvanceTo(result.Buffer.Start);

        await loop.Client.SendAsync("after");
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
        var next = loop.Input.ReadAsync();
        Assert.False(next.IsCompleted, "the cancel was consumed by the previous read");
        await loop.Client.SendAsync("x");
        result = await next.Within();
        Assert.False(result.IsCanceled);
        Assert.Equal("x"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public async Task ReadAsync_TokenFires_OperationCanceledThenNextReadWorks()
    {
        await using var loop = await Loopback.OpenAsync();
        using var cts = new CancellationTokenSource();
        var read = loop.Input.ReadAsync(cts.Token);
        Assert.False(read.IsCompleted, "nothing was sent");

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.Within());

        await loop.Client.SendAsync("still");
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
        await loop.Client.SendAsync("last words");
        loop.Client.ShutdownSend();

        // Never consuming, so the completed result must still carry every byte.
        ReadResult result;
        while (true)
        {
            result = await loop.Input.ReadAsync().Within();
            if (result.IsCompleted)
            {
                break;
            }

            loop.Input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }

        Assert.Equal("last words"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);

        // And it stays completed.
        result = await loop.Input.ReadAsync().Within();
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
        var read = loop.Input.ReadAsync();
        Assert.False(read.IsCompleted, "nothing was sent");

        loop.Client.Reset();
        await Assert.ThrowsAsync<ConnectionResetException>(() => read.Within());
        Assert.True(loop.Transfer.ClientClosed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Abort_WhileReadWaits_ReadThrowsTheAbortReasonAndClientSeesAReset(bool inline)
    {
        await using var loop = await Loopback.OpenAsync(inline: inline);
        var read = loop.Input.ReadAsync();
        Assert.False(read.IsCompleted, "nothing was sent");

        var reason = new ConnectionAbortedException("x");
        loop.Connection.Abort(reason);
        var thrown = await Assert.ThrowsAsync<ConnectionAbortedException>(() => read.Within());
        Assert.Same(reason, thrown);
        Assert.Equal("x", thrown.Message);

        // Later reads keep failing the same way.
        Assert.Same(reason, await Assert.ThrowsAsync<ConnectionAbortedException>(() => loop.Input.ReadAsync().Within()));

        // The client sees the reset of an abort (as over Kestrel's transport), and nothing else.
        Assert.Equal(ClientEnd.Reset, await loop.Client.ReadEndAsync());
        Assert.False(loop.Transfer.ClientClosed, "this side ended the connection");
    }

    /// <summary>
    /// The abort closes the socket under the pending readiness wait, which can see that as an end of
    /// stream: repeated, so the race shows. The read must throw the reason every time, never return a
    /// completed (FIN-like) result, and never be left waiting (the bounded wait fails the test).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Abort_WhileReadWaits_NeverSeenAsClientFin(bool inline)
    {
        const int Attempts = 100;
        var seenAsFin = 0;
        await using var transport = CreateFactory(inline: inline);
        await using var listener = await transport.BindAsync();
        for (var i = 0; i < Attempts; i++)
        {
            await using var loop = await Loopback.OpenAsync(listener);
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
                Assert.False(loop.Transfer.ClientClosed);
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
        await using var transport = CreateFactory();
        await using var listener = await transport.BindAsync();
        for (var i = 0; i < Attempts; i++)
        {
            await using var loop = await Loopback.OpenAsync(listener);
            var read = loop.Input.ReadAsync().AsTask();
            await loop.Connection.DisposeAsync().AsTask().WaitAsync(Timeout);

            var ended = await Task.WhenAny(read, Task.Delay(Timeout));
            Assert.True(ended == read, $"attempt {i}: a read pending while the connection was disposed never completed");
        }
    }

    /// <summary>
    /// How a read pending at dispose ends: a completed result or the close as
    /// <see cref="ConnectionAbortedException"/>, as over Kestrel's transport, never a raw socket
    /// error (closing a socket with an operation pending fails it with ECONNABORTED on Linux), and
    /// never not at all.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DisposeAsync_WhileReadWaits_EndsAsCloseNotSocketError(bool inline)
    {
        const int Attempts = 100;
        await using var transport = CreateFactory(inline: inline);
        await using var listener = await transport.BindAsync();
        for (var i = 0; i < Attempts; i++)
        {
            await using var loop = await Loopback.OpenAsync(listener);
            var read = loop.Input.ReadAsync().AsTask();
            await loop.Connection.DisposeAsync().AsTask().WaitAsync(Timeout);
            try
            {
                Assert.True((await read.WaitAsync(Timeout)).IsCompleted);
            }
            catch (ConnectionAbortedException)
            {
            }
            catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"attempt {i}: the read ended with {ex.GetType().Name}: {ex.Message}");
            }
        }
    }

    /// <summary>
    /// While nobody reads and someone watches ConnectionClosed, the reader receives ahead, up to
    /// MaxReadBufferSize (at most one block past it: the receive that crossed it), and no further;
    /// the client's stream then goes on exactly where it stopped once the handler reads.
    /// </summary>
    [Fact]
    public async Task ReadAhead_NobodyReads_StopsAtMaxReadBufferSizeThenTheStreamGoesOnWhereItStopped()
    {
        const int MaxReadBuffer = 4096;
        await using var loop = await Loopback.OpenAsync(maxReadBuffer: MaxReadBuffer, configureClient: socket => socket.SendBufferSize = 16 * 1024);
        loop.Connection.Socket.ReceiveBufferSize = 16 * 1024;
        var data = Pattern.Bytes(0, 1 << 20);
        var sending = loop.Client.SendAsync(data);
        using var watching = loop.Connection.ConnectionClosed.Register(static () => { });

        var buffered = await Waits.SettledAsync(() => loop.Connection.InputBuffered);
        Assert.InRange(buffered, MaxReadBuffer, MaxReadBuffer + 65536);
        Assert.Equal(buffered, loop.Transfer.BytesReceived);
        Assert.False(sending.IsCompleted);

        // What was received ahead comes first, whole, then the rest of the stream.
        var result = await loop.Input.ReadAsync().Within();
        Assert.Equal(data.AsSpan(0, (int)buffered).ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);

        // Consumed: the reader receives ahead again, within the same bound.
        Assert.InRange(loop.Connection.InputBuffered, 0, MaxReadBuffer + 65536);
        var position = (int)buffered;
        while (position < data.Length)
        {
            result = await loop.Input.ReadAsync().Within();
            Assert.Equal(data.AsSpan(position, (int)result.Buffer.Length).ToArray(), result.Buffer.ToArray());
            position += (int)result.Buffer.Length;
            loop.Input.AdvanceTo(result.Buffer.End);
        }

        await sending.Within();
    }

    // ---- Output

    [Fact]
    public async Task FlushAsync_EmptyWriteAfterAFullBlock_SendsAllAndKeepsTheConnection()
    {
        // Filling a block exactly, then an empty write, leaves an empty block in the send queue: a
        // zero-byte send once read as the client being gone.
        await using var loop = await Loopback.OpenAsync();
        var blockSize = new TcpTransportOptions().BlockSize;
        var data = Pattern.Bytes(0, blockSize);
        var receiving = loop.Client.ReceiveExactlyAsync(data.Length + 2);
        WriteFullBlockThenNothing(loop.Output, data);
        var flush = await loop.Output.FlushAsync().Within();
        Assert.False(flush.IsCompleted);

        await loop.Output.WriteAsync("ok"u8.ToArray()).Within();
        var received = await receiving;
        Assert.Equal(data.Concat("ok"u8.ToArray()).ToArray(), received);
    }

    private static void WriteFullBlockThenNothing(System.IO.Pipelines.PipeWriter output, byte[] data)
    {
        data.CopyTo(output.GetSpan(data.Length));
        output.Advance(data.Length);
        output.Write(ReadOnlySpan<byte>.Empty);
        output.GetSpan();
        output.Advance(0);
    }

    [Fact]
    public async Task FlushAsync_ManySmallAdvances_DeliversExactlyThoseBytes()
    {
        await using var loop = await Loopback.OpenAsync();
        var data = Pattern.Bytes(0, 300_000);
        var receiving = loop.Client.ReceiveExactlyAsync(data.Length);

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
        var flush = await loop.Output.FlushAsync().Within();
        Assert.False(flush.IsCompleted);
        Assert.False(flush.IsCanceled);
        Assert.Equal(0, loop.Output.UnflushedBytes);
        Assert.Equal(data, await receiving.Within());
    }

    [Fact]
    public async Task WriteAsync_NothingBuffered_DeliversTheBytes()
    {
        await using var loop = await Loopback.OpenAsync();
        var data = Pattern.Bytes(0, 100_000);
        var receiving = loop.Client.ReceiveExactlyAsync(data.Length);

        var flush = await loop.Output.WriteAsync(data.AsMemory()).Within();
        Assert.False(flush.IsCompleted);
        Assert.Equal(data, await receiving.Within());

        // And after something was buffered, through the buffer, in order.
        loop.Output.GetSpan(1)[0] = (byte)'a';
        loop.Output.Advance(1);
        await loop.Output.WriteAsync("bc"u8.ToArray()).Within();
        Assert.Equal("abc"u8.ToArray(), await loop.Client.ReceiveExactlyAsync(3));
    }

    [Fact]
    public async Task FlushAsync_AfterClientReset_EventuallyCompleted()
    {
        await using var loop = await Loopback.OpenAsync();
        await loop.Output.WriteAsync("hello"u8.ToArray()).Within();
        Assert.Equal("hello"u8.ToArray(), await loop.Client.ReceiveExactlyAsync(5));

        loop.Client.Reset();
        FlushResult result = default;
        for (var i = 0; i < 50 && !result.IsCompleted; i++)
        {
            loop.Output.Write(new byte[16 * 1024]);
            result = await loop.Output.FlushAsync().Within();
        }

        Assert.True(result.IsCompleted, "no flush reported the client gone");
        Assert.True(loop.Transfer.ClientClosed);

        // It stays completed, and writing more does not fail.
        loop.Output.Write("more"u8);
        Assert.True((await loop.Output.FlushAsync().Within()).IsCompleted);
        Assert.Equal(0, loop.Output.UnflushedBytes);
    }

    [Fact]
    public async Task DisposeAsync_WrittenNotFlushed_SentThenFin()
    {
        await using var loop = await Loopback.OpenAsync();
        var data = Pattern.Bytes(0, 200_000);
        loop.Output.Write(data);
        var receiving = loop.Client.ReadToEndAsync();

        await loop.Connection.DisposeAsync().AsTask().WaitAsync(Timeout);

        // ReadToEndAsync returns at a FIN and throws at a reset.
        Assert.Equal(data, await receiving.Within());
    }

    [Fact]
    public async Task FlushAsync_ClientNeverReads_WaitsUntilAbortThenCompleted()
    {
        await using var loop = await Loopback.OpenAsync(configureClient: socket => socket.ReceiveBufferSize = 4096);
        loop.Connection.Socket.SendBufferSize = 16 * 1024;
        var chunk = Pattern.Bytes(0, 65536);

        // Written until a flush stays held; one that completes after a while just means the kernel
        // buffers were not full yet. Null at the end means a client that never reads never held one.
        Task<FlushResult>? stuck = null;
        for (var i = 0; i < 2000 && stuck is null; i++)
        {
            loop.Output.Write(chunk);
            var flush = loop.Output.FlushAsync().AsTask();
            if (await Task.WhenAny(flush, Task.Delay(150)) != flush)
            {
                stuck = flush;
            }
            else
            {
                Assert.False((await flush).IsCompleted);
            }
        }

        Assert.NotNull(stuck);
        loop.Connection.Abort(new ConnectionAbortedException("no reader"));
        var result = await stuck.WaitAsync(Timeout);
        Assert.True(result.IsCompleted);
    }

    /// <summary>
    /// Urgent data (telnet's Synch, any MSG_OOB send): a receive stops short at the urgent mark, with
    /// the bytes after it already in the kernel and no new arrival to signal them. Sent before the
    /// first read, so that one edge reports all three pieces; the read still gets everything but the
    /// out-of-band byte. Without urgent data in the epoll interest the reader waited for an edge that
    /// never came.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ReadAsync_UrgentDataInTheStream_BytesAfterTheMarkStillRead(bool epoll)
    {
        await using var loop = await Loopback.OpenAsync(inline: true, epoll: epoll);
        var client = loop.Client.Socket;
        client.Send("AAAA"u8);
        client.Send("B"u8, SocketFlags.OutOfBand);
        client.Send("CCCC"u8);
        // Let all three reach the server's socket before it reads (a short pause, not a wait for anything).
        await Task.Delay(200);

        var received = new List<byte>();
        while (received.Count < 8)
        {
            var result = await loop.Input.ReadAsync().AsTask().WaitAsync(Timeout);
            received.AddRange(result.Buffer.ToArray());
            loop.Input.AdvanceTo(result.Buffer.End);
        }

        Assert.Equal("AAAACCCC", System.Text.Encoding.ASCII.GetString(received.ToArray()));
    }

    // ---- Connection and features

    /// <summary>
    /// With epoll readiness (the default on Linux) the runtime keeps no asynchronous context for the
    /// socket of a connection that has exchanged bytes and waits for more: that context, its pending
    /// receive and the zero-byte receive's event args were ~620 bytes of every held connection. With
    /// zero-byte receives it is there. Read through the runtime's private field, which must exist, so
    /// that a rename fails here instead of passing.
    /// </summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task IdleConnection_AfterAnExchange_RuntimeSocketContextOnlyWithZeroByteReceives(bool epoll, bool inline)
    {
        await using var loop = await Loopback.OpenAsync(inline: inline, epoll: epoll);
        await loop.Client.SendAsync("ping");
        var result = await ReadAtLeastAsync(loop.Input, 4);
        loop.Input.AdvanceTo(result.Buffer.End);
        await loop.Output.WriteAsync("pong"u8.ToArray());
        Assert.Equal("pong", await loop.Client.ReceiveTextAsync(4));
        var waiting = loop.Input.ReadAsync();
        Assert.False(waiting.IsCompleted, "nothing more was sent");

        Assert.Equal(!epoll, HasRuntimeSocketContext(loop.Connection.Socket));

        // And the wait still ends with the next bytes.
        await loop.Client.SendAsync("more");
        result = await waiting.AsTask().WaitAsync(Timeout);
        Assert.Equal("more"u8.ToArray(), result.Buffer.ToArray());
        loop.Input.AdvanceTo(result.Buffer.End);
    }

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
        Assert.Same(loop.Connection, loop.Connection.Features.Get<IConnectionTransferFeature>());
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
        await using var other = await TestClient.ConnectAsync(loop.Listener.EndPoint);
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
        await canceled.Task.Within();

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

    // ---- Transfer feature (the old observer)

    [Fact]
    public async Task TransferFeature_ReceivesFlushesAndFin_Reported()
    {
        var time = new ManualTime();
        await using var loop = await Loopback.OpenAsync(time: time);
        var transfer = loop.Transfer;
        var totals = new TransferTotals();
        transfer.Totals = totals;
        Assert.Equal(ManualTime.Start, transfer.LastReceivedTimestamp);

        time.Advance(1000);
        await loop.Client.SendAsync(Pattern.Bytes(0, 10));
        var result = await ReadAtLeastAsync(loop.Input, 10);
        loop.Input.AdvanceTo(result.Buffer.End);
        Assert.Equal(10, transfer.BytesReceived);
        Assert.Equal(ManualTime.Start + 1000, transfer.LastReceivedTimestamp);

        // Counted per flush, never per write.
        loop.Output.GetSpan(5);
        loop.Output.Advance(5);
        Assert.Equal(0, transfer.BytesSent);
        await loop.Output.FlushAsync().Within();
        Assert.Equal(5, transfer.BytesSent);

        await loop.Output.WriteAsync(new byte[7]).Within();
        Assert.Equal(12, transfer.BytesSent);
        Assert.Equal(12, (await loop.Client.ReceiveExactlyAsync(12)).Length);
        Assert.False(transfer.ClientClosed);

        time.Advance(500);
        loop.Client.ShutdownSend();
        result = await loop.Input.ReadAsync().Within();
        Assert.True(result.IsCompleted);
        loop.Input.AdvanceTo(result.Buffer.End);
        Assert.True(transfer.ClientClosed);
        Assert.Equal(10, transfer.BytesReceived);
        Assert.Equal(ManualTime.Start + 1000, transfer.LastReceivedTimestamp);
        Assert.Equal((10, 12), (totals.BytesReceived, totals.BytesSent));
    }

    // ---- Factory and listener

    [Fact]
    public async Task BindAsync_TcpListenEndPointOnly_OthersLeftToKestrelsTransport()
    {
        await using var factory = CreateFactory();
        Assert.True(factory.Factory.CanBind(new TcpListenEndPoint(IPAddress.Loopback, 0)));
        Assert.False(factory.Factory.CanBind(new IPEndPoint(IPAddress.Loopback, 0)));
        Assert.False(factory.Factory.CanBind(new UnixDomainSocketEndPoint("/tmp/never-bound.sock")));

        await using var ours = await factory.BindAsync();
        Assert.IsType<TcpConnectionListener>(ours);
        Assert.Equal(1, factory.Factory.Bound);

        var thrown = await Assert.ThrowsAsync<NotSupportedException>(() => factory.Factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 0)).AsTask());
        Assert.Equal("TcpTransportFactory binds TcpListenEndPoints only, not IPEndPoint.", thrown.Message);
        Assert.Equal(1, factory.Factory.Bound);
    }

    [Fact]
    public async Task BindAsync_PortInUse_AddressInUseException()
    {
        await using var factory = CreateFactory();
        await using var first = await factory.BindAsync();
        var port = ((IPEndPoint)first.EndPoint).Port;
        await Assert.ThrowsAsync<AddressInUseException>(() => factory.Factory.BindAsync(new TcpListenEndPoint(IPAddress.Loopback, port)).AsTask());
    }

    [Fact]
    public async Task AcceptAsync_AfterUnbind_ReturnsNull()
    {
        await using var factory = CreateFactory();
        await using var listener = await factory.BindAsync();
        var accept = listener.AcceptAsync();
        Assert.False(accept.IsCompleted, "nobody connected");
        await listener.UnbindAsync();
        Assert.Null(await accept.Within());
    }

    /// <summary>
    /// With epoll readiness the listening socket never joins the runtime's socket engine: its accepts are
    /// the transport's own accept4 calls, and it waits for one report of the transport's epoll set only
    /// when no connection is waiting. The runtime's engine registers a listener for good, edge-triggered,
    /// and its thread then woke for every arriving connection (two context switches per accepted
    /// connection, docs/benchmarks.md round 8). Both ways of accepting are taken here: a connection that
    /// arrives while the accept waits, and a backlog that is already there. Without epoll readiness the
    /// runtime's accept (and so its context) is used, which the check proves it can see.
    /// </summary>
    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public async Task Accept_WithEpollReadiness_ListeningSocketGetsNoRuntimeSocketContext(bool epoll, bool inline)
    {
        await using var factory = CreateFactory(inline: inline, epoll: epoll);
        await using var listener = await factory.BindAsync();
        var clients = new List<TestClient>();
        var accepted = new List<ConnectionContext>();
        try
        {
            var waiting = listener.AcceptAsync();
            Assert.False(waiting.IsCompleted, "nobody connected yet");
            clients.Add(await TestClient.ConnectAsync(listener.EndPoint));
            accepted.Add((await waiting.Within())!);

            for (var i = 0; i < 3; i++)
            {
                clients.Add(await TestClient.ConnectAsync(listener.EndPoint));
            }

            for (var i = 0; i < 3; i++)
            {
                accepted.Add((await listener.AcceptAsync().Within())!);
            }

            // Every accepted connection is whole: its addresses are the client's, and it carries bytes.
            for (var i = 0; i < clients.Count; i++)
            {
                var connection = Assert.IsType<TcpConnection>(accepted[i]);
                Assert.Equal(clients[i].Socket.LocalEndPoint, connection.RemoteEndPoint);
                Assert.Equal(listener.EndPoint, connection.LocalEndPoint);
                await clients[i].SendAsync("hi");
                var read = await ReadAtLeastAsync(connection.Transport.Input, 2);
                Assert.Equal("hi"u8.ToArray(), read.Buffer.ToArray());
                connection.Transport.Input.AdvanceTo(read.Buffer.End);
            }

            Assert.Equal(!epoll, HasRuntimeSocketContext(Assert.IsType<TcpConnectionListener>(listener).Socket));
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }

            foreach (var connection in accepted)
            {
                connection.Abort();
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// The wait for a connection is one report of the epoll set at a time (one-shot, re-armed for each
    /// wait): wait after wait ends with the next client, and two listeners' reports never cross.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AcceptAsync_WaitAfterWait_EachEndsWithItsOwnListenersNextClient(bool inline)
    {
        await using var factory = CreateFactory(inline: inline);
        await using var first = await factory.BindAsync();
        await using var second = await factory.BindAsync();
        for (var round = 0; round < 5; round++)
        {
            var atFirst = first.AcceptAsync();
            var atSecond = second.AcceptAsync();
            Assert.False(atFirst.IsCompleted || atSecond.IsCompleted, "nobody connected yet");

            await using var toSecond = await TestClient.ConnectAsync(second.EndPoint);
            await using var fromSecond = (await atSecond.Within())!;
            Assert.Equal(toSecond.Socket.LocalEndPoint, fromSecond.RemoteEndPoint);
            Assert.False(atFirst.IsCompleted, "the second listener's client is not the first's");

            await using var toFirst = await TestClient.ConnectAsync(first.EndPoint);
            await using var fromFirst = (await atFirst.Within())!;
            Assert.Equal(toFirst.Socket.LocalEndPoint, fromFirst.RemoteEndPoint);
            fromFirst.Abort();
            fromSecond.Abort();
        }
    }

    /// <summary>
    /// A client that resets its connection before the accept (what HAProxy's health checks do) is still
    /// accepted with its address: accept returns it, though getpeername on the reset socket no longer can,
    /// and the PROXY protocol's trusted-proxy check and the logs need it.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AcceptAsync_ClientResetBeforeTheAccept_RemoteEndPointStillTheClients(bool epoll)
    {
        await using var factory = CreateFactory(epoll: epoll);
        await using var listener = await factory.BindAsync();
        EndPoint client;
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(listener.EndPoint);
            client = socket.LocalEndPoint!;
            socket.LingerState = new LingerOption(true, 0);
        }

        await using var accepted = (await listener.AcceptAsync().Within())!;
        Assert.Equal(client, accepted.RemoteEndPoint);
        Assert.Equal(listener.EndPoint, accepted.LocalEndPoint);
        accepted.Abort();
    }

    [Theory]
    [InlineData(new byte[] { 2, 0, 0x1F, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 }, "127.0.0.1:8080")]
    [InlineData(new byte[] { 10, 0, 0x00, 0x50, 0, 0, 0, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0 }, "[fe80::1%3]:80")]
    [InlineData(new byte[] { 10, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3, 0, 0, 0, 0 }, "[::ffff:10.1.2.3]:65535")]
    [InlineData(new byte[] { 1, 0, (byte)'/', (byte)'x' }, null)]
    [InlineData(new byte[] { 2, 0, 0, 80 }, null)]
    public void Parse_SocketAddress_AsAcceptReturnsIt(byte[] address, string? expected) =>
        Assert.Equal(expected, SocketCalls.Parse(address)?.ToString());

    [Fact]
    public async Task AcceptAsync_CanceledWhileWaiting_ReturnsNull_AndTheNextAcceptStillWorks()
    {
        await using var factory = CreateFactory();
        await using var listener = await factory.BindAsync();
        using var cancel = new CancellationTokenSource();
        var waiting = listener.AcceptAsync(cancel.Token);
        Assert.False(waiting.IsCompleted, "nobody connected");
        await cancel.CancelAsync();
        Assert.Null(await waiting.Within());

        var next = listener.AcceptAsync();
        await using var client = await TestClient.ConnectAsync(listener.EndPoint);
        await using var accepted = (await next.Within())!;
        Assert.Equal(client.Socket.LocalEndPoint, accepted.RemoteEndPoint);
        accepted.Abort();
    }

    // ---- Helpers

    /// <summary>
    /// Whether the runtime made its asynchronous context for the socket (its socket engine's state), read
    /// through the runtime's private field, which must exist: a rename fails here instead of passing.
    /// </summary>
    private static bool HasRuntimeSocketContext(Socket socket)
    {
        var field = typeof(SafeSocketHandle).GetField("_asyncContext", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance);
        Assert.NotNull(field);
        return field.GetValue(socket.SafeHandle) is not null;
    }

    private static OwnTransport CreateFactory(long maxReadBuffer = 65536, bool inline = false, TimeProvider? time = null, bool epoll = true) => new(new TcpTransportFactory(
        new TcpTransportOptions
        {
            Backlog = 128,
            NoDelay = true,
            MaxReadBufferSize = maxReadBuffer,
            InlineCompletions = inline,
            EpollReadiness = epoll,
            BlockSize = 65536,
            RetainedBlocks = 8,
            TimeProvider = time ?? TimeProvider.System,
        },
        NullLoggerFactory.Instance));

    /// <summary>A read, bounded, returning once at least <paramref name="count"/> bytes (or the end) are there.</summary>
    private static Task<ReadResult> ReadAtLeastAsync(PipeReader reader, int count) =>
        reader.ReadAtLeastAsync(count).AsTask().WaitAsync(Timeout);

    /// <summary>A transport of the test's own (so its block pool is the test's alone), disposed with it.</summary>
    private sealed class OwnTransport(TcpTransportFactory factory) : IAsyncDisposable
    {
        public TcpTransportFactory Factory { get; } = factory;

        public async Task<IConnectionListener> BindAsync() => await Factory.BindAsync(new TcpListenEndPoint(IPAddress.Loopback, 0));

        public ValueTask DisposeAsync()
        {
            Factory.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A listener (of a transport of its own, unless given one), one client and the accepted connection.</summary>
    private sealed class Loopback : IAsyncDisposable
    {
        private readonly OwnTransport? _ownTransport;

        private Loopback(IConnectionListener listener, TestClient client, TcpConnection connection, OwnTransport? ownTransport)
        {
            Listener = listener;
            Client = client;
            Connection = connection;
            _ownTransport = ownTransport;
        }

        public IConnectionListener Listener { get; }

        public TestClient Client { get; }

        public TcpConnection Connection { get; }

        public IConnectionTransferFeature Transfer => Connection.Features.Get<IConnectionTransferFeature>()!;

        public PipeReader Input => Connection.Transport.Input;

        public PipeWriter Output => Connection.Transport.Output;

        public static async Task<Loopback> OpenAsync(
            long maxReadBuffer = 1 << 20, bool inline = false, Action<Socket>? configureClient = null, TimeProvider? time = null, bool epoll = true)
        {
            var transport = CreateFactory(maxReadBuffer, inline, time, epoll);
            var listener = await transport.BindAsync();
            return await OpenAsync(listener, configureClient, transport);
        }

        public static async Task<Loopback> OpenAsync(IConnectionListener listener, Action<Socket>? configureClient = null, OwnTransport? ownTransport = null)
        {
            var connected = await TestClient.ConnectAsync(listener.EndPoint, configureClient);
            var accepted = await listener.AcceptAsync().AsTask().WaitAsync(Timeout);
            return new Loopback(listener, connected, Assert.IsType<TcpConnection>(accepted), ownTransport);
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            Connection.Abort(new ConnectionAbortedException("Test over."));
            await Connection.DisposeAsync().AsTask().WaitAsync(Timeout);
            if (_ownTransport is not null)
            {
                await Listener.DisposeAsync();
                await _ownTransport.DisposeAsync();
            }
        }
    }

    /// <summary>A clock that moves only when told: the transport's last-receive timestamps come from it.</summary>
    private sealed class ManualTime : TimeProvider
    {
        public const long Start = 1_000_000;

        private long _now = Start;

        public override long TimestampFrequency => 1000;

        public override long GetTimestamp() => Volatile.Read(ref _now);

        public void Advance(long ticks) => Interlocked.Add(ref _now, ticks);
    }

    private sealed class FirstFeature;

    private sealed class SecondFeature;
}

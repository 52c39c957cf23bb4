using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using KestrelTcp.Transport.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Transport.Tests;

/// <summary>
/// The pipe and connection contracts of Kestrel's socket transport, asserted alike over Kestrel's
/// transport (the reference) and KestrelTcp's (with inline completions, as the server runs it, and
/// without), through a real Kestrel server and real loopback sockets. A test that passes on Kestrel
/// and fails on KestrelTcp is a bug in KestrelTcp's transport. The one intended difference is named
/// where it is asserted: Output.Complete() is a half-close on KestrelTcp's transport.
/// </summary>
public class TransportConformanceTests
{
    /// <summary>Small enough that a few reads fill it; the same on both transports.</summary>
    private const int MaxReadBufferSize = 64 * 1024;

    /// <summary>Socket buffers of the tests that fill them: small, so that "full" comes fast and bounds are tight.</summary>
    private const int SmallSocketBuffer = 16 * 1024;

    /// <summary>
    /// What the two sockets' kernel buffers can hold at most with <see cref="SmallSocketBuffer"/> (the
    /// kernel doubles the size asked and cannot retract a window it already advertised): generous,
    /// and still far below the streams the backpressure tests offer.
    /// </summary>
    private const int KernelSlack = 1024 * 1024;

    public static TheoryData<TransportKind> Kinds =>
        [TransportKind.Kestrel, TransportKind.KestrelTcp, TransportKind.KestrelTcpThreadPool, TransportKind.KestrelTcpZeroByteReads];

    public static TheoryData<TransportKind, bool> KindsAndWriteAsync => new()
    {
        { TransportKind.Kestrel, false },
        { TransportKind.Kestrel, true },
        { TransportKind.KestrelTcp, false },
        { TransportKind.KestrelTcp, true },
        { TransportKind.KestrelTcpThreadPool, false },
        { TransportKind.KestrelTcpThreadPool, true },
        { TransportKind.KestrelTcpZeroByteReads, false },
        { TransportKind.KestrelTcpZeroByteReads, true },
    };

    // ---- ReadAsync and its cancellation

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ReadAsync_TokenCanceledBeforeTheCall_ThrowsAndTheConnectionStillWorks(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        using var canceled = new CancellationTokenSource();
        await canceled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connection.Server.Input.ReadAsync(canceled.Token).AsTask());

        await AssertWorksBothWaysAsync(connection);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ReadAsync_TokenCanceledWhileWaiting_ThrowsAndTheConnectionStillWorks(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        using var cts = new CancellationTokenSource();
        var read = connection.Server.Input.ReadAsync(cts.Token);
        Assert.False(read.IsCompleted, "nothing was sent");

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.Within());

        await AssertWorksBothWaysAsync(connection);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task CancelPendingRead_WhileReadWaits_CanceledResultThenDataStillRead(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var input = connection.Server.Input;
        var read = input.ReadAsync();
        Assert.False(read.IsCompleted, "nothing was sent");

        input.CancelPendingRead();
        var result = await read.Within();
        Assert.True(result.IsCanceled);
        Assert.False(result.IsCompleted);
        Assert.True(result.Buffer.IsEmpty);
        input.AdvanceTo(result.Buffer.Start);

        await AssertWorksBothWaysAsync(connection);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task CancelPendingRead_BeforeTheRead_ThatReadCanceledAtOnceAndTheNextWaits(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var input = connection.Server.Input;
        input.CancelPendingRead();

        var read = input.ReadAsync();
        Assert.True(read.IsCompleted, "a cancel asked for before the read completes it without waiting");
        var result = await read;
        Assert.True(result.IsCanceled);
        input.AdvanceTo(result.Buffer.Start);

        var next = input.ReadAsync();
        Assert.False(next.IsCompleted, "the cancel was used up by the read before");
        await connection.Client.SendAsync("x");
        result = await next.Within();
        Assert.False(result.IsCanceled);
        Assert.Equal("x", Text(result.Buffer));
        input.AdvanceTo(result.Buffer.End);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ReadAsync_ClientReset_ThrowsConnectionReset(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var read = connection.Server.Input.ReadAsync();
        Assert.False(read.IsCompleted, "nothing was sent");

        connection.Client.Reset();

        await Assert.ThrowsAsync<ConnectionResetException>(() => read.Within());
    }

    // ---- TryRead and AdvanceTo

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task TryRead_BytesArrived_ReturnsThemWithoutReadAsyncThenTheClientFin(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var input = connection.Server.Input;
        Assert.False(input.TryRead(out _), "nothing was sent");

        await connection.Client.SendAsync("hello");
        ReadResult result = default;
        await Waits.UntilAsync(() => input.TryRead(out result), "TryRead returns the bytes the client sent");
        Assert.Equal("hello", Text(result.Buffer));
        Assert.False(result.IsCompleted);

        // As a Pipe's: bytes examined and not consumed wait for more; bytes not examined come back.
        input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        Assert.False(input.TryRead(out _), "everything was examined and nothing new came");
        await connection.Client.SendAsync("!");
        await Waits.UntilAsync(() => input.TryRead(out result), "TryRead returns the new byte with the old");
        Assert.Equal("hello!", Text(result.Buffer));
        input.AdvanceTo(result.Buffer.Start, result.Buffer.GetPosition(2));
        Assert.True(input.TryRead(out result), "bytes past what was examined are there without waiting");
        Assert.Equal("hello!", Text(result.Buffer));
        input.AdvanceTo(result.Buffer.End);
        Assert.False(input.TryRead(out _), "everything was consumed");

        connection.Client.ShutdownSend();
        await Waits.UntilAsync(() => input.TryRead(out result), "TryRead returns the client's FIN");
        Assert.True(result.IsCompleted);
        Assert.True(result.Buffer.IsEmpty);
        input.AdvanceTo(result.Buffer.End);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task AdvanceTo_ExaminedBeforeTheEnd_NextReadReturnsAtOnceWithTheUnconsumedBytes(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var input = connection.Server.Input;
        await connection.Client.SendAsync("abcdef");
        var result = await input.ReadAtLeastAsync(6).Within();
        Assert.Equal("abcdef", Text(result.Buffer));

        input.AdvanceTo(result.Buffer.GetPosition(2), result.Buffer.GetPosition(4));
        var next = input.ReadAsync();
        Assert.True(next.IsCompleted, "bytes past what was examined are returned without waiting for more");
        result = await next;
        Assert.Equal("cdef", Text(result.Buffer));

        // And again, examining less than everything once more.
        input.AdvanceTo(result.Buffer.Start, result.Buffer.GetPosition(1));
        var again = input.ReadAsync();
        Assert.True(again.IsCompleted, "bytes past what was examined are returned without waiting for more");
        result = await again;
        Assert.Equal("cdef", Text(result.Buffer));
        input.AdvanceTo(result.Buffer.End);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task AdvanceTo_ExaminedToTheEnd_NextReadWaitsThenReturnsTheUnconsumedAndTheNew(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var input = connection.Server.Input;
        await connection.Client.SendAsync("abc");
        var result = await input.ReadAtLeastAsync(3).Within();

        // Consumed one byte, examined all three.
        input.AdvanceTo(result.Buffer.GetPosition(1), result.Buffer.End);
        var next = input.ReadAsync();
        Assert.False(next.IsCompleted, "everything was examined: the read waits for new bytes");
        await connection.Client.SendAsync("def");
        result = await next.Within();
        Assert.Equal("bcdef", Text(result.Buffer));

        // Nothing consumed, everything examined: the same bytes come back only with new ones.
        input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        var again = input.ReadAsync();
        Assert.False(again.IsCompleted, "everything was examined: the read waits for new bytes");
        await connection.Client.SendAsync("g");
        result = await again.Within();
        Assert.Equal("bcdefg", Text(result.Buffer));

        // Consumed into the middle: the rest stays in front of what comes next. (Not ReadAtLeastAsync
        // here: a Pipe's counts only bytes not examined yet, and would wait for three new ones.)
        input.AdvanceTo(result.Buffer.GetPosition(4), result.Buffer.End);
        var last = input.ReadAsync();
        Assert.False(last.IsCompleted, "everything was examined: the read waits for new bytes");
        await connection.Client.SendAsync("h");
        result = await last.Within();
        Assert.Equal("fgh", Text(result.Buffer));
        input.AdvanceTo(result.Buffer.End);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ReadAsync_ClientFinWithDataNotConsumed_DataThenCompletedThenStaysCompleted(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var input = connection.Server.Input;
        await connection.Client.SendAsync("last words");
        connection.Client.ShutdownSend();

        // Never consuming, so the completed result must carry every byte.
        ReadResult result;
        while (true)
        {
            result = await input.ReadAsync().Within();
            if (result.IsCompleted)
            {
                break;
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }

        Assert.Equal("last words", Text(result.Buffer));
        input.AdvanceTo(result.Buffer.GetPosition(5));

        result = await input.ReadAsync().Within();
        Assert.True(result.IsCompleted);
        Assert.Equal("words", Text(result.Buffer));
        input.AdvanceTo(result.Buffer.End);

        result = await input.ReadAsync().Within();
        Assert.True(result.IsCompleted);
        Assert.True(result.Buffer.IsEmpty);
        input.AdvanceTo(result.Buffer.End);

        // The output is still open after the client's FIN.
        await connection.Server.Output.WriteAsync("bye"u8.ToArray()).Within();
        Assert.Equal("bye", await connection.Client.ReceiveTextAsync(3));
    }

    // ---- Writing and flushing

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task FlushAsync_ManyUnevenAdvancesAndWrites_ClientGetsExactlyThoseBytes(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var output = connection.Server.Output;
        const int Total = 600_000;
        var receiving = connection.Client.ReceivePatternAsync(Total);

        var random = new Random(4);
        var position = 0;
        while (position < Total)
        {
            var length = Math.Min(random.Next(1, 20_000), Total - position);
            switch (random.Next(3))
            {
                case 0:
                    // WriteAsync of the caller's memory; the memory is the caller's again on return.
                    var bytes = Pattern.Bytes(position, length);
                    var write = output.WriteAsync(bytes);
                    Array.Clear(bytes);
                    Assert.False((await write.Within()).IsCompleted);
                    break;
                case 1:
                    var span = output.GetSpan(length);
                    Assert.True(span.Length >= length);
                    Pattern.Fill(span[..length], position);
                    output.Advance(length);
                    break;
                default:
                    Pattern.Fill(output.GetSpan(length)[..length], position);
                    output.Advance(length);
                    Assert.False((await output.FlushAsync().Within()).IsCompleted);
                    break;
            }

            position += length;
        }

        await output.FlushAsync().Within();
        Assert.Equal(Total, await receiving.Within());
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task FlushAsync_TokenCanceledBeforeTheCall_ThrowsAndTheBytesGoWithTheNextFlush(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var output = connection.Server.Output;
        using var canceled = new CancellationTokenSource();
        await canceled.CancelAsync();

        output.Write("abc"u8);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => output.FlushAsync(canceled.Token).AsTask());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => output.WriteAsync("def"u8.ToArray(), canceled.Token).AsTask());

        output.Write("ghi"u8);
        Assert.False((await output.FlushAsync().Within()).IsCanceled);
        var received = await connection.Client.ReceiveTextAsync(6);
        Assert.Equal("abcghi", received);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task CancelPendingFlush_BeforeTheFlush_ThatFlushCanceledItsBytesStillSentAndTheNextNot(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var output = connection.Server.Output;
        output.CancelPendingFlush();

        output.Write("abc"u8);
        var result = await output.FlushAsync().Within();
        Assert.True(result.IsCanceled);
        Assert.False(result.IsCompleted);

        // As over a Pipe: the canceled flush still committed what was written.
        Assert.Equal("abc", await connection.Client.ReceiveTextAsync(3));

        output.Write("def"u8);
        result = await output.FlushAsync().Within();
        Assert.False(result.IsCanceled, "the cancel was used up by the flush before");
        Assert.Equal("def", await connection.Client.ReceiveTextAsync(3));
    }

    /// <summary>
    /// A client that does not read holds the flush; the token releases it with
    /// <see cref="OperationCanceledException"/>, <see cref="PipeWriter.CancelPendingFlush"/> releases
    /// the next one as canceled, and nothing written is lost or sent twice: once the client reads,
    /// every byte arrives, in order, then the FIN of Complete().
    /// </summary>
    [Theory]
    [MemberData(nameof(KindsAndWriteAsync))]
    public async Task FlushAsync_HeldByAClientThatDoesNotRead_TokenAndCancelPendingFlushReleaseItNothingLost(TransportKind kind, bool writeAsync)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync(socket => socket.ReceiveBufferSize = SmallSocketBuffer);
        connection.Server.Socket.SendBufferSize = SmallSocketBuffer;
        var output = connection.Server.Output;
        var position = 0L;

        ValueTask<FlushResult> WriteNext(CancellationToken cancellationToken)
        {
            const int Piece = 64 * 1024;
            var start = position;
            position += Piece;
            if (writeAsync)
            {
                return output.WriteAsync(Pattern.Bytes(start, Piece), cancellationToken);
            }

            Pattern.Fill(output.GetSpan(Piece)[..Piece], start);
            output.Advance(Piece);
            return output.FlushAsync(cancellationToken);
        }

        // Write until a flush stays held, then cancel its token. A flush that completes anyway (the
        // socket took the bytes before the cancel) just means the buffers were not full yet.
        OperationCanceledException? canceled = null;
        while (canceled is null)
        {
            Assert.True(position < 64 * 1024 * 1024, "64 MiB went out to a client that reads nothing: no flush was ever held");
            using var cts = new CancellationTokenSource();
            var flush = WriteNext(cts.Token).AsTask();
            if (await Task.WhenAny(flush, Task.Delay(100)) == flush)
            {
                AssertFlushed(await flush);
                continue;
            }

            await cts.CancelAsync();
            try
            {
                AssertFlushed(await flush.Within());
            }
            catch (OperationCanceledException ex)
            {
                canceled = ex;
            }
        }

        // Still full: the next flush waits, and CancelPendingFlush releases it as canceled.
        var held = WriteNext(CancellationToken.None);
        Assert.False(held.IsCompleted, "the client still reads nothing");
        output.CancelPendingFlush();
        var result = await held.Within();
        Assert.True(result.IsCanceled);
        Assert.False(result.IsCompleted);

        // Once the client reads, the last flush completes, and the stream is whole.
        var last = WriteNext(CancellationToken.None);
        Assert.False(last.IsCompleted, "the client still reads nothing");
        var receiving = connection.Client.ReceivePatternAsync(count: null);
        AssertFlushed(await last.Within());
        output.Complete();
        Assert.Equal(position, await receiving.Within());
    }

    // ---- Completing the output, aborting

    /// <summary>
    /// Complete() sends what was written (flushed or not), then a FIN: the client reads all of it and
    /// then 0, not a reset, while the handler still runs. The difference between the transports:
    /// KestrelTcp's keeps the input open (a TCP half-close), so the client can still send and the
    /// handler reads it; Kestrel's closes both directions (its send loop ends with Shutdown(Both)) and
    /// a read then fails with the ConnectionAbortedException of its graceful send-loop end.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task OutputComplete_AfterWrites_ClientGetsThemThenFin_InputStaysOpenOnlyOnKestrelTcp(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var output = connection.Server.Output;
        const int Flushed = 300_000;
        const int NotFlushed = 700_000;
        await output.WriteAsync(Pattern.Bytes(0, Flushed)).Within();
        output.Write(Pattern.Bytes(Flushed, NotFlushed));
        var closed = Fired(connection.Server.Context.ConnectionClosed);

        output.Complete();

        // ReceivePatternAsync(null) returns at a FIN and throws at a reset.
        Assert.Equal(Flushed + NotFlushed, await connection.Client.ReceivePatternAsync(count: null));
        Assert.False(connection.Server.Released.IsCompleted);
        if (!TransportHost.IsKestrelTcp(kind))
        {
            // Both directions closed: the connection is over for Kestrel.
            await closed.Within();
        }

        await connection.Client.SendAsync("after");
        connection.Client.ShutdownSend();
        if (TransportHost.IsKestrelTcp(kind))
        {
            var result = await connection.Server.Input.ReadAtLeastAsync(6).Within();
            Assert.True(result.IsCompleted);
            Assert.Equal("after", Text(result.Buffer));
            connection.Server.Input.AdvanceTo(result.Buffer.End);

            // Over once the client has ended its side too.
            await closed.Within();
        }
        else
        {
            var thrown = await Assert.ThrowsAsync<ConnectionAbortedException>(() => ReadToEndAsync(connection.Server.Input));
            Assert.Equal("The Socket transport's send loop completed gracefully.", thrown.Message);
        }
    }

    /// <summary>
    /// Complete(exception) ends the connection as an abort does: the client sees what it received
    /// before, then a reset, and a read pending in the handler fails with the very exception the
    /// output was completed with (Kestrel's transport completes its input with that shutdown reason).
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task OutputCompleteWithException_PendingReadFailsWithItAndTheClientSeesTheEnd(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        await connection.Server.Output.WriteAsync("abc"u8.ToArray()).Within();
        Assert.Equal("abc", await connection.Client.ReceiveTextAsync(3));
        var closed = Fired(connection.Server.Context.ConnectionClosed);
        var read = connection.Server.Input.ReadAsync();
        Assert.False(read.IsCompleted, "nothing was sent");

        var error = new InvalidOperationException("the handler failed");
        connection.Server.Output.Complete(error);

        var thrown = await Assert.ThrowsAnyAsync<Exception>(() => read.Within());
        Assert.Same(error, thrown);
        Assert.Same(error, await Assert.ThrowsAnyAsync<Exception>(() => connection.Server.Input.ReadAsync().Within()));
        Assert.Equal(ClientEnd.Reset, await connection.Client.ReadEndAsync());
        await closed.Within();
    }

    /// <summary>
    /// Abort() ends the connection with a reset, as Kestrel's transport does by default (its
    /// <c>FinOnError</c> off): the client can tell it from a graceful end. A pending read fails with
    /// the reason, ConnectionClosed fires, and writing goes nowhere without throwing.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Abort_WhileReadWaits_ReadThrowsTheReasonClientSeesResetConnectionClosedFires(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        await AssertWorksBothWaysAsync(connection);
        var closed = Fired(connection.Server.Context.ConnectionClosed);
        var read = connection.Server.Input.ReadAsync();
        Assert.False(read.IsCompleted, "nothing was sent");

        var reason = new ConnectionAbortedException("aborted by the test");
        connection.Server.Context.Abort(reason);

        Assert.Same(reason, await Assert.ThrowsAsync<ConnectionAbortedException>(() => read.Within()));
        Assert.Same(reason, await Assert.ThrowsAsync<ConnectionAbortedException>(() => connection.Server.Input.ReadAsync().Within()));
        Assert.Equal(ClientEnd.Reset, await connection.Client.ReadEndAsync());
        await closed.Within();
        await AssertFlushReportsTheEndAsync(connection.Server.Output);
    }

    /// <summary>An abort with bytes from the client that nobody read (Kestrel's receive loop has them in its pipe, KestrelTcp's are still in the kernel): a reset either way.</summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Abort_ClientBytesUnread_ClientSeesReset(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        await connection.Client.SendAsync("never read");

        // Kestrel's receive loop moves them into its pipe; KestrelTcp's reader has not been asked to.
        await AssertWorksBothWaysAsync(connection);
        await connection.Client.SendAsync("never read either");
        connection.Server.Context.Abort(new ConnectionAbortedException("aborted by the test"));

        Assert.Equal(ClientEnd.Reset, await connection.Client.ReadEndAsync());
    }

    // ---- ConnectionClosed

    public static TheoryData<TransportKind, string> KindsAndClientEnds => new()
    {
        { TransportKind.Kestrel, "fin" },
        { TransportKind.Kestrel, "data+fin" },
        { TransportKind.Kestrel, "reset" },
        { TransportKind.KestrelTcp, "fin" },
        { TransportKind.KestrelTcp, "data+fin" },
        { TransportKind.KestrelTcp, "reset" },
        { TransportKind.KestrelTcpThreadPool, "fin" },
        { TransportKind.KestrelTcpThreadPool, "data+fin" },
        { TransportKind.KestrelTcpThreadPool, "reset" },
        { TransportKind.KestrelTcpZeroByteReads, "fin" },
        { TransportKind.KestrelTcpZeroByteReads, "data+fin" },
        { TransportKind.KestrelTcpZeroByteReads, "reset" },
    };

    /// <summary>A handler that only awaits ConnectionClosed (it never reads) learns that the client left, by FIN or reset.</summary>
    [Theory]
    [MemberData(nameof(KindsAndClientEnds))]
    public async Task ConnectionClosed_ClientEndsWhileTheHandlerDoesNotRead_Fires(TransportKind kind, string end)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = await TransportHost.StartAsync(kind, async context =>
        {
            started.SetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, context.ConnectionClosed);
            }
            catch (OperationCanceledException)
            {
                fired.SetResult();
            }
        });
        await using var client = await TestClient.ConnectAsync(host.EndPoint);
        await started.Task.Within();

        switch (end)
        {
            case "fin":
                client.ShutdownSend();
                break;
            case "data+fin":
                await client.SendAsync(Pattern.Bytes(0, 10_000));
                client.ShutdownSend();
                break;
            default:
                client.Reset();
                break;
        }

        await fired.Task.Within();
    }

    // ---- Backpressure

    /// <summary>
    /// A handler that does not read (it watches ConnectionClosed, as Kestrel's HTTP layer and most
    /// handlers do): the transport receives ahead up to MaxReadBufferSize (plus the receive that
    /// crossed it) and no further, so the client's send is held, getting no further than that plus
    /// what the two kernels buffer. Then the handler reads, and the whole stream arrives in order.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Backpressure_HandlerDoesNotRead_ReadAheadStopsAtMaxReadBufferSizeAndTheClientIsHeld(TransportKind kind)
    {
        const int Total = 8 * 1024 * 1024;
        await using var host = await TransportHost.StartAsync(kind, new TransportHostSettings { MaxReadBufferSize = MaxReadBufferSize });
        await using var connection = await host.ConnectAsync(socket => socket.SendBufferSize = SmallSocketBuffer);
        connection.Server.Socket.ReceiveBufferSize = SmallSocketBuffer;
        using var watching = connection.Server.Context.ConnectionClosed.Register(static () => { });
        var input = connection.Server.Input;

        // Small pieces: Sent counts a piece once the socket took all of it.
        const int Piece = 4096;
        var sending = Task.Run(() => connection.Client.SendPatternAsync(Total, piece: Piece));

        // All of it unexamined, so TryRead shows what the transport holds (and an AdvanceTo to the
        // start leaves it so). It reaches the bound, then nothing moves any more.
        long Held()
        {
            if (!input.TryRead(out var peek))
            {
                return 0;
            }

            input.AdvanceTo(peek.Buffer.Start);
            return peek.Buffer.Length;
        }

        await Waits.UntilAsync(() => Held() >= MaxReadBufferSize, $"the transport holds MaxReadBufferSize ({MaxReadBufferSize} bytes) received ahead");
        await Waits.SettledAsync(() => connection.Client.Sent + Held());
        var sent = connection.Client.Sent;
        Assert.True(input.TryRead(out var held));
        Assert.InRange(held.Buffer.Length, MaxReadBufferSize, MaxReadBufferSize + (64 * 1024));
        Assert.InRange(sent, held.Buffer.Length - Piece, held.Buffer.Length + KernelSlack);
        Assert.False(sending.IsCompleted);
        if (TransportHost.IsKestrelTcp(kind))
        {
            Assert.Equal(held.Buffer.Length, connection.Server.Context.Features.Get<IConnectionTransferFeature>()!.BytesReceived);
        }

        // The handler reads from here on, checking every byte (with buffers that let it go fast).
        connection.Server.Socket.ReceiveBufferSize = 1024 * 1024;
        connection.Client.Socket.SendBufferSize = 1024 * 1024;
        var position = 0L;
        var buffer = held.Buffer;
        while (true)
        {
            foreach (var segment in buffer)
            {
                Pattern.Verify(segment.Span, position);
                position += segment.Length;
            }

            input.AdvanceTo(buffer.End);
            if (position == Total)
            {
                break;
            }

            buffer = (await input.ReadAsync().Within()).Buffer;
        }

        await sending.Within();
    }

    /// <summary>
    /// A read that has examined everything waits for new bytes and gets them, however much is held
    /// examined and not consumed, as over a Pipe (whose backpressure counts bytes not examined): a
    /// handler waiting for the rest of a message larger than MaxReadBufferSize is not left hanging.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ReadAsync_ExaminedEverythingPastMaxReadBufferSize_NewBytesStillComeUntilTheFin(TransportKind kind)
    {
        const int Total = 1024 * 1024;
        await using var host = await TransportHost.StartAsync(kind, new TransportHostSettings { MaxReadBufferSize = MaxReadBufferSize });
        await using var connection = await host.ConnectAsync();
        var input = connection.Server.Input;
        var sending = Task.Run(async () =>
        {
            await connection.Client.SendPatternAsync(Total);
            connection.Client.ShutdownSend();
        });

        ReadResult result;
        while (true)
        {
            result = await input.ReadAsync().Within();
            if (result.IsCompleted)
            {
                break;
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }

        Assert.Equal(Total, result.Buffer.Length);
        var position = 0L;
        foreach (var segment in result.Buffer)
        {
            Pattern.Verify(segment.Span, position);
            position += segment.Length;
        }

        input.AdvanceTo(result.Buffer.End);
        await sending.Within();
    }

    /// <summary>
    /// A writer to a client that does not read is held in its flush: its flushes get no further than
    /// the transport's write buffer plus what the two kernels buffer. Then the client reads, and the
    /// writer finishes.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Backpressure_ClientDoesNotRead_WriterHeldInItsFlushUntilTheClientReads(TransportKind kind)
    {
        const int Total = 8 * 1024 * 1024;
        const int Piece = 64 * 1024;
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync(socket => socket.ReceiveBufferSize = SmallSocketBuffer);
        connection.Server.Socket.SendBufferSize = SmallSocketBuffer;
        var output = connection.Server.Output;
        var flushed = 0L;
        var writing = Task.Run(async () =>
        {
            for (var position = 0L; position < Total; position += Piece)
            {
                Pattern.Fill(output.GetSpan(Piece)[..Piece], position);
                output.Advance(Piece);
                AssertFlushed(await output.FlushAsync());
                Volatile.Write(ref flushed, position + Piece);
            }

            output.Complete();
        });

        var heldAt = await Waits.SettledAsync(() => Volatile.Read(ref flushed));

        // Kestrel's flush returns while up to its MaxWriteBufferSize (64 KiB) waits in its pipe.
        Assert.InRange(heldAt, 0, (2 * Piece) + KernelSlack);
        Assert.False(writing.IsCompleted);

        Assert.Equal(Total, await connection.Client.ReceivePatternAsync(count: null));
        await writing.Within();
    }

    // ---- Large transfers

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Echo_SeveralMegabytesBothWaysAtOnce_ByteExactThenFin(TransportKind kind)
    {
        const int Total = 8 * 1024 * 1024;
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var echo = EchoAsync(connection.Server);

        var receiving = connection.Client.ReceivePatternAsync(count: null, timeout: TimeSpan.FromSeconds(30));
        await connection.Client.SendPatternAsync(Total).Within();
        connection.Client.ShutdownSend();

        Assert.Equal(Total, await receiving.Within());
        Assert.Equal(Total, await echo.Within());
    }

    // ---- Ends the client causes while the handler writes

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task FlushAsync_AfterClientReset_CompletedResultNeverThrows(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var output = connection.Server.Output;
        await output.WriteAsync("hello"u8.ToArray()).Within();
        Assert.Equal("hello", await connection.Client.ReceiveTextAsync(5));

        connection.Client.Reset();

        // The reset is seen by a send (the first may still be taken by the kernel) or by the receive side.
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            output.Write(new byte[16 * 1024]);
            if ((await output.FlushAsync().Within()).IsCompleted)
            {
                break;
            }

            Assert.True(deadline.Elapsed < Waits.Timeout, "no flush reported the client gone");
            await Task.Delay(10);
        }

        // It stays completed, and writing more does not fail.
        output.Write("more"u8);
        Assert.True((await output.FlushAsync().Within()).IsCompleted);
    }

    /// <summary>Writing to a connection this side ended neither throws nor sends: a flush reports the end (over Kestrel's transport once its send loop has stopped).</summary>
    private static async Task AssertFlushReportsTheEndAsync(PipeWriter output)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                output.Write("more"u8);
            }
            catch (InvalidOperationException)
            {
                // Completed with an error: writing is refused, which is an end too.
                return;
            }

            if ((await output.FlushAsync().Within()).IsCompleted)
            {
                return;
            }

            Assert.True(deadline.Elapsed < Waits.Timeout, "no flush reported the end");
            await Task.Delay(10);
        }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task HandlerReturns_WrittenNotFlushed_SentThenFin(TransportKind kind)
    {
        const int Total = 500_000;
        await using var host = await TransportHost.StartAsync(kind, context =>
        {
            context.Transport.Output.Write(Pattern.Bytes(0, Total));
            return Task.CompletedTask;
        });
        await using var client = await TestClient.ConnectAsync(host.EndPoint);

        Assert.Equal(Total, await client.ReceivePatternAsync(count: null));
    }

    // ---- Transfer counts

    /// <summary>The same figures over either transport: KestrelTcp's counts itself, Kestrel's through UseTransferCounting.</summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task TransferFeature_AfterAnExchange_SameCountsAndClientClosedOverEitherTransport(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind, new TransportHostSettings
        {
            ConfigureListen = listen => listen.UseTransferCounting(TimeProvider.System),
        });
        await using var connection = await host.ConnectAsync();
        var transfer = connection.Server.Context.Features.Get<IConnectionTransferFeature>()!;
        var totals = new TransferTotals();
        transfer.Totals = totals;
        Assert.False(transfer.ClientClosed);

        await connection.Client.SendAsync(Pattern.Bytes(0, 100_000));
        connection.Client.ShutdownSend();
        var received = await ReadToEndAsync(connection.Server.Input);
        Assert.Equal(100_000, received.Length);
        await connection.Server.Output.WriteAsync(new byte[12_345]).Within();
        connection.Server.Output.Write(new byte[55]);
        await connection.Server.Output.FlushAsync().Within();
        Assert.Equal(12_400, (await connection.Client.ReceiveExactlyAsync(12_400)).Length);

        Assert.Equal((100_000, 12_400), (transfer.BytesReceived, transfer.BytesSent));
        Assert.Equal((100_000, 12_400), (totals.BytesReceived, totals.BytesSent));
        Assert.True(transfer.ClientClosed);
    }

    // ---- Features the layers above rely on

    /// <summary>
    /// Kestrel's HTTP and TLS layers rent from the connection's pool, and Kestrel's HTTP/1.1 output
    /// rents with no size before a response starts: the pool must answer that with a real buffer.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task MemoryPoolFeature_RentWithoutASize_GivesAUsableBuffer(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var pool = connection.Server.Context.Features.Get<Microsoft.AspNetCore.Connections.Features.IMemoryPoolFeature>()?.MemoryPool;
        Assert.NotNull(pool);
        using var unsized = pool.Rent();
        using var zero = pool.Rent(0);
        using var largest = pool.Rent(pool.MaxBufferSize >= 100_000 ? 100_000 : pool.MaxBufferSize);
        Assert.True(unsized.Memory.Length >= 2048);
        Assert.True(zero.Memory.Length >= 2048);
        Assert.True(largest.Memory.Length >= Math.Min(100_000, pool.MaxBufferSize));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Features_EndPointsIdItemsAndSocket_AsOverKestrel(TransportKind kind)
    {
        await using var host = await TransportHost.StartAsync(kind);
        await using var connection = await host.ConnectAsync();
        var context = connection.Server.Context;
        Assert.Equal(connection.Client.Socket.LocalEndPoint, context.RemoteEndPoint);
        Assert.Equal(connection.Client.Socket.RemoteEndPoint, context.LocalEndPoint);
        Assert.Equal(context.RemoteEndPoint, connection.Server.Socket.RemoteEndPoint);
        Assert.True(connection.Server.Socket.NoDelay);
        Assert.Matches("^[0-9A-V]{13}$", context.ConnectionId);
        context.Items["key"] = "value";
        Assert.Same(context.Items, context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionItemsFeature>()!.Items);
        Assert.Same(context.Transport, context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionTransportFeature>()!.Transport);
        Assert.NotNull(context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature>());
        Assert.NotNull(context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionHeartbeatFeature>());
    }

    // ---- Helpers

    private static void AssertFlushed(FlushResult result)
    {
        Assert.False(result.IsCanceled);
        Assert.False(result.IsCompleted);
    }

    /// <summary>One exchange each way: the connection is still whole.</summary>
    private static async Task AssertWorksBothWaysAsync(Connected connection)
    {
        var input = connection.Server.Input;
        var marker = $"ping {Guid.NewGuid():N}";
        await connection.Client.SendAsync(marker);
        var result = await input.ReadAtLeastAsync(marker.Length).Within();
        Assert.False(result.IsCanceled);
        Assert.EndsWith(marker, Text(result.Buffer), StringComparison.Ordinal);
        input.AdvanceTo(result.Buffer.End);

        await connection.Server.Output.WriteAsync(Encoding.ASCII.GetBytes("pong")).Within();
        Assert.Equal("pong", await connection.Client.ReceiveTextAsync(4));
    }

    private static async Task<byte[]> ReadToEndAsync(PipeReader input)
    {
        while (true)
        {
            var result = await input.ReadAsync().Within();
            if (result.IsCompleted)
            {
                var all = result.Buffer.ToArray();
                input.AdvanceTo(result.Buffer.End);
                return all;
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Echoes each segment straight back until the client's FIN, then completes the output; returns the bytes echoed.</summary>
    private static async Task<long> EchoAsync(ServerConnection server)
    {
        var echoed = 0L;
        while (true)
        {
            var result = await server.Input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                server.Output.Write(segment.Span);
            }

            echoed += result.Buffer.Length;
            server.Input.AdvanceTo(result.Buffer.End);
            var flush = await server.Output.FlushAsync();
            if (result.IsCompleted || flush.IsCompleted)
            {
                server.Output.Complete();
                return echoed;
            }
        }
    }

    private static Task Fired(CancellationToken token)
    {
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.UnsafeRegister(static state => ((TaskCompletionSource)state!).TrySetResult(), fired);
        return fired.Task;
    }

    private static string Text(ReadOnlySequence<byte> buffer) => Encoding.ASCII.GetString(buffer.ToArray());
}

using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using KestrelTcp.Diagnostics;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Connections;

/// <summary>
/// One open connection as the tracking middleware sees it: its transport wrapped to count bytes and
/// note activity, its close reason, and the means to ask it to finish. Bytes are counted in plain
/// fields written only by the connection's own read and write paths; readers elsewhere (metrics,
/// /connections) see values at most one read or write behind.
/// </summary>
internal sealed class TrackedConnection : IDuplexPipe, ICloseReasonFeature, ITransportObserver
{
    private readonly ConnectionContext _context;
    private readonly TimeProvider _time;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly ListenerStats _stats;
    private readonly Socket? _socket;
    private long _publishedSent;
    private int _closeReason;
    private long _idleSignalledAt;
    private TimeSpan _idleTimeout;

    public TrackedConnection(ConnectionContext context, IDuplexPipe transport, TimeProvider time, ListenerStats stats)
    {
        _context = context;
        _time = time;
        _stats = stats;
        if (context is TcpConnection tcp && ReferenceEquals(transport, tcp))
        {
            // KestrelTcp's transport reports what it receives and sends: no wrappers (and no async
            // frame of theirs) per connection.
            tcp.Observer = this;
            _input = transport.Input;
            _output = transport.Output;
        }
        else
        {
            _input = new CountingReader(transport.Input, this);
            _output = new CountingWriter(transport.Output, this);
        }

        // The tracking middleware is the first to wrap the transport, so what this connection
        // sends may go to the socket itself (see SendDirectAsync).
        _socket = context.Features.Get<IConnectionSocketFeature>()?.Socket;
        StartTimestamp = time.GetTimestamp();
        LastReceiveTimestamp = StartTimestamp;
        ConnectedAt = time.GetUtcNow();
        Remote = context.RemoteEndPoint switch
        {
            IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip => new IPEndPoint(ip.Address.MapToIPv4(), ip.Port),
            var other => other,
        };
    }

    public string Id => _context.ConnectionId;

    /// <summary>The client's endpoint; IPv4 clients of a dual-stack socket shown as IPv4.</summary>
    public EndPoint? Remote { get; }

    public DateTimeOffset ConnectedAt { get; }

    public long StartTimestamp { get; }

    public long LastReceiveTimestamp { get; private set; }

    public long BytesReceived { get; private set; }

    public long BytesSent { get; private set; }

    /// <summary>
    /// The client ended its side (FIN), or went away while we wrote (a flush found the transport's
    /// output completed, as after a reset): a close is then the client's doing.
    /// </summary>
    public bool ClientCompleted { get; private set; }

    public bool Finished { get; set; }

    public PipeReader Input => _input;

    /// <summary>Whether <see cref="SendDirectAsync"/> writes to the socket (true over Kestrel's socket transport).</summary>
    public bool SendsDirectly => _socket is not null;

    public PipeWriter Output => _output;

    public CloseReason CloseReason => (CloseReason)Volatile.Read(ref _closeReason);

    public void SetCloseReason(CloseReason reason) => Interlocked.CompareExchange(ref _closeReason, (int)reason, (int)CloseReason.None);

    /// <summary>
    /// Adds bytes written since the last flush to the listener's totals: on each flush, and once when
    /// the connection has finished. Received bytes go to the totals on each read, sent bytes on each flush (a flush
    /// batches many <c>Advance</c> calls), so the totals include open connections, only grow, and
    /// cost one add per read or flush.
    /// </summary>
    public void PublishSent()
    {
        var delta = BytesSent - _publishedSent;
        if (delta != 0)
        {
            _publishedSent += delta;
            _stats.AddBytesSent(delta);
        }
    }

    public TimeSpan IdleFor(long now) => _time.GetElapsedTime(LastReceiveTimestamp, now);

    public TimeSpan Duration(long now) => _time.GetElapsedTime(StartTimestamp, now);

    /// <summary>Asks the handler to finish: its pending or next read returns canceled.</summary>
    public void CancelPendingRead() => _input.CancelPendingRead();

    /// <summary>
    /// Asks the connection to finish because the server is stopping: Kestrel's close request is
    /// raised (for handlers that watch it), and the pending read is canceled, on the thread pool so
    /// that with inline scheduling the drain loop does not run each handler's finish itself.
    /// </summary>
    public void RequestShutdown()
    {
        SetCloseReason(CloseReason.Shutdown);
        _context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
        ThreadPool.UnsafeQueueUserWorkItem(static connection => connection.CancelPendingRead(), this, preferLocal: false);
    }

    public void Abort(string reason) => _context.Abort(new ConnectionAbortedException(reason));

    /// <summary>
    /// Sends <paramref name="data"/> to the client, counted as sent, and completes once all of it is in
    /// the socket's send buffer (so a client that does not read holds the caller here: backpressure).
    /// Over Kestrel's socket transport the bytes go from the caller's buffer (typically the input
    /// pipe's, before <c>AdvanceTo</c>) straight to the socket, skipping the copy into the output pipe
    /// and its send loop, as the C reference's recv-then-send does (docs/benchmarks.md, round 2). A
    /// caller must not also write to <see cref="Output"/>: bytes still queued there could be overtaken.
    /// Elsewhere (in-memory transports) it writes and flushes <see cref="Output"/>.
    /// Returns false once the client is gone (reset, or the connection was aborted).
    /// </summary>
    public ValueTask<bool> SendDirectAsync(in ReadOnlySequence<byte> data)
    {
        if (_socket is null)
        {
            return WriteAndFlushAsync(_output, data);
        }

        var sender = SocketSenderPool.Shared.Rent();
        if (data.IsSingleSegment)
        {
            ValueTask<int> pending;
            try
            {
                pending = sender.SendAsync(_socket, data.First);
            }
            catch (ObjectDisposedException)
            {
                SocketSenderPool.Shared.Return(sender);
                ClientCompleted = true;
                return new ValueTask<bool>(false);
            }

            if (pending.IsCompletedSuccessfully)
            {
                var sent = pending.Result;
                Sent(sent);
                if (sent == data.Length)
                {
                    SocketSenderPool.Shared.Return(sender);
                    return new ValueTask<bool>(true);
                }

                return SendRestAsync(sender, data.Slice(sent), default, false);
            }

            return SendRestAsync(sender, data, pending, true);
        }

        return SendRestAsync(sender, data, default, false);
    }

    /// <summary>Copies <paramref name="data"/> into <paramref name="output"/> and flushes; false once the flush finds the client gone.</summary>
    public static ValueTask<bool> WriteAndFlushAsync(PipeWriter output, in ReadOnlySequence<byte> data)
    {
        ArgumentNullException.ThrowIfNull(output);
        foreach (var segment in data)
        {
            output.Write(segment.Span);
        }

        return FlushAsync(output.FlushAsync());
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> FlushAsync(ValueTask<FlushResult> flush) => !(await flush).IsCompleted;

    /// <summary>The slow path: a send that did not complete at once (<paramref name="first"/>, for the start of a single segment), a partial send, or several segments.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> SendRestAsync(SocketSender sender, ReadOnlySequence<byte> data, ValueTask<int> first, bool hasFirst)
    {
        try
        {
            if (hasFirst)
            {
                var sent = await first;
                Sent(sent);
                data = data.Slice(sent);
            }

            foreach (var segment in data)
            {
                var rest = segment;
                while (!rest.IsEmpty)
                {
                    var sent = await sender.SendAsync(_socket!, rest);
                    if (sent == 0)
                    {
                        throw new SocketException((int)SocketError.ConnectionReset);
                    }

                    Sent(sent);
                    rest = rest[sent..];
                }
            }

            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Reset by the client, or the socket closed under us by an abort: either way nothing more can be sent.
            ClientCompleted = true;
            return false;
        }
        finally
        {
            SocketSenderPool.Shared.Return(sender);
        }
    }

    private void Sent(long bytes)
    {
        BytesSent += bytes;
        PublishSent();
    }

    /// <summary>
    /// Called about once a second by the idle scan (<see cref="Hosting.IdleScan"/>): closes the connection
    /// gracefully once it has received nothing for <paramref name="idleTimeout"/>, and aborts it if the
    /// handler ignores that for as long again.
    /// </summary>
    public void CheckIdle(TimeSpan idleTimeout)
    {
        if (Finished || idleTimeout <= TimeSpan.Zero)
        {
            return;
        }

        var now = _time.GetTimestamp();
        if (_idleSignalledAt == 0)
        {
            if (IdleFor(now) >= idleTimeout)
            {
                _idleSignalledAt = now;
                _idleTimeout = idleTimeout;
                // Not on the scan's thread: with inline scheduling the handler's continuation would
                // run right here, and the scan serves every connection of the server.
                ThreadPool.UnsafeQueueUserWorkItem(static connection => connection.SignalIdle(), this, preferLocal: false);
            }
        }
        else if (_time.GetElapsedTime(_idleSignalledAt, now) >= idleTimeout)
        {
            // The handler did not finish when asked (it is blocked writing to a client that never reads).
            Abort("Idle timeout");
        }
    }

    /// <summary>Ends an idle connection, unless data arrived between the scan's check and now.</summary>
    private void SignalIdle()
    {
        if (Finished)
        {
            return;
        }

        if (IdleFor(_time.GetTimestamp()) < _idleTimeout)
        {
            _idleSignalledAt = 0;
            return;
        }

        SetCloseReason(CloseReason.IdleTimeout);
        CancelPendingRead();
    }

    void ITransportObserver.OnReceived(int bytes)
    {
        BytesReceived += bytes;
        LastReceiveTimestamp = _time.GetTimestamp();
        _stats.AddBytesReceived(bytes);
    }

    void ITransportObserver.OnWritten(int bytes) => BytesSent += bytes;

    void ITransportObserver.OnFlushed() => PublishSent();

    void ITransportObserver.OnClientCompleted() => ClientCompleted = true;

    private void OnRead(in ReadResult result, long unconsumedBefore)
    {
        var fresh = result.Buffer.Length - unconsumedBefore;
        if (fresh > 0)
        {
            BytesReceived += fresh;
            LastReceiveTimestamp = _time.GetTimestamp();
            _stats.AddBytesReceived(fresh);
        }

        if (result.IsCompleted)
        {
            ClientCompleted = true;
        }
    }

    private sealed class CountingReader(PipeReader inner, TrackedConnection owner) : PipeReader
    {
        private ReadOnlySequence<byte> _last;
        private long _unconsumed;

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var pending = inner.ReadAsync(cancellationToken);
            if (pending.IsCompletedSuccessfully)
            {
                var result = pending.Result;
                Observe(result);
                return new ValueTask<ReadResult>(result);
            }

            return AwaitRead(pending);
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            Observe(result);
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            _unconsumed = _last.Slice(consumed).Length;
            _last = default;
            inner.AdvanceTo(consumed, examined);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<ReadResult> AwaitRead(ValueTask<ReadResult> pending)
        {
            var result = await pending;
            Observe(result);
            return result;
        }

        private void Observe(in ReadResult result)
        {
            _last = result.Buffer;
            owner.OnRead(result, _unconsumed);
        }
    }

    private sealed class CountingWriter(PipeWriter inner, TrackedConnection owner) : PipeWriter
    {
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes)
        {
            owner.BytesSent += bytes;
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            owner.PublishSent();
            return Observe(inner.FlushAsync(cancellationToken));
        }

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            owner.BytesSent += source.Length;
            owner.PublishSent();
            return Observe(inner.WriteAsync(source, cancellationToken));
        }

        // A completed flush means the transport stopped sending: the client reset or vanished while a
        // handler wrote. Handlers then return normally, so this is the only place that sees it.
        private ValueTask<FlushResult> Observe(ValueTask<FlushResult> pending)
        {
            if (pending.IsCompletedSuccessfully)
            {
                var result = pending.Result;
                Observe(result);
                return new ValueTask<FlushResult>(result);
            }

            return AwaitFlush(pending);
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<FlushResult> AwaitFlush(ValueTask<FlushResult> pending)
        {
            var result = await pending;
            Observe(result);
            return result;
        }

        private void Observe(in FlushResult result)
        {
            if (result.IsCompleted)
            {
                owner.ClientCompleted = true;
            }
        }

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }
}

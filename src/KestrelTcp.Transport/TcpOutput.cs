// Longer than this repository's 300 lines on purpose: one state machine (writes, the send queue, the one send routine, flush waits and cancels, completion and the FIN) whose state
// lives under one lock; split across files, each part would have to reach into the others' fields.
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace KestrelTcp.Transport;

/// <summary>
/// What a KestrelTcp transport connection sends, as a <see cref="PipeWriter"/> whose flush sends to
/// the socket. Written bytes sit in pooled blocks until a flush commits them to the send queue; the
/// flush completes once the socket has taken all of them, so a client that does not read holds the
/// handler in its flush (backpressure), and at most what the handler wrote before flushing is held.
/// <para>
/// One send routine (<see cref="Send"/>) empties the queue: a non-blocking send of each block, and
/// only what the socket cannot take at once goes out through a pooled asynchronous sender. A flush
/// that waits can be released by its token or <see cref="CancelPendingFlush"/>; the queued bytes
/// still go out, as the bytes of a <see cref="Pipe"/> do. <c>WriteAsync</c> with nothing queued sends
/// straight from the caller's memory and copies only what the socket did not take, so the caller's
/// memory is never used after the call returns. <see cref="Complete"/> sends what was written, then a
/// FIN, and leaves the input readable (a TCP half-close); with an exception it closes the connection.
/// A flush that finds the client gone returns <c>IsCompleted</c>, as over Kestrel's transport.
/// </para>
/// </summary>
internal sealed class TcpOutput(TcpConnection connection) : PipeWriter
{
    private static readonly FlushResult Flushed = new(isCanceled: false, isCompleted: false);
    private static readonly FlushResult Closed = new(isCanceled: false, isCompleted: true);
    private static readonly FlushResult Canceled = new(isCanceled: true, isCompleted: false);

    // Written and not flushed: only the writer's thread touches these.
    private Block? _head;
    private Block? _tail;
    private long _unflushed;

    // The send queue and the send state, under lock (this).
    private Block? _queue;
    private int _queueStart;
    private Block? _queueTail;
    private bool _sending;          // one party (a flush, a write, a completion) runs Send
    private bool _flushWaiting;     // a flush waits on _waiter
    private bool _cancelRequested;  // CancelPendingFlush with no flush waiting: the next one returns canceled
    private bool _closed;           // the client is gone or the connection closed: nothing more can be sent
    private bool _completed;
    private bool _finPending;       // completed without error: a FIN once the queue is sent
    // Made the first time a flush has to wait: a held connection that never filled its socket has none.
    private FlushWaiter? _waiter;

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _unflushed;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        ThrowIfCompleted();
        var needed = Math.Max(sizeHint, 1);
        if (_tail is null)
        {
            _head = _tail = connection.Blocks.Rent(needed);
        }
        else if (_tail.Free < needed)
        {
            var next = connection.Blocks.Rent(needed);
            _tail.Append(next);
            _tail = next;
        }

        return _tail.Array.AsMemory(_tail.End);
    }

    public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public override void Advance(int bytes)
    {
        if (_tail is null || (uint)bytes > (uint)_tail.Free)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), "Advanced past the memory last handed out.");
        }

        _tail.Grow(bytes);
        _unflushed += bytes;
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken);
        }

        bool canceled;
        lock (this)
        {
            // As a Pipe's flush, a canceled one too (CancelPendingFlush before it): what was written is
            // committed and goes out, though that flush returns at once.
            Commit();
            canceled = _cancelRequested;
            _cancelRequested = false;
            if (_closed)
            {
                return new ValueTask<FlushResult>(canceled ? new FlushResult(isCanceled: true, isCompleted: true) : Closed);
            }

            if (_sending)
            {
                return canceled ? new ValueTask<FlushResult>(Canceled) : Wait(cancellationToken);
            }

            if (_queue is null)
            {
                return new ValueTask<FlushResult>(canceled ? Canceled : Flushed);
            }

            _sending = true;
        }

        if (canceled)
        {
            // What the socket cannot take at once is left to the asynchronous sender, which nobody waits for.
            _ = Send();
            return new ValueTask<FlushResult>(Canceled);
        }

        return SendAndWait(cancellationToken);
    }

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<FlushResult>(cancellationToken);
        }

        ThrowIfCompleted();
        bool direct;
        lock (this)
        {
            direct = _unflushed == 0 && _queue is null && !_sending && !_closed && !_cancelRequested && !source.IsEmpty;
            _sending |= direct;
        }

        if (!direct)
        {
            // Behind bytes already written or queued: copied after them, as any PipeWriter does.
            return base.WriteAsync(source, cancellationToken);
        }

        connection.OnSent(source.Length);
        var span = source.Span;
        var sent = connection.SendNow(span, out var error);
        if (error == SocketError.Success && sent == span.Length)
        {
            return new ValueTask<FlushResult>(EndSend() ? Flushed : Closed);
        }

        if (error is not (SocketError.Success or SocketError.WouldBlock))
        {
            Fail();
            return new ValueTask<FlushResult>(Closed);
        }

        // The socket is full: the rest waits in our pooled blocks, written as any write is (already
        // counted above), so the caller's memory is free on return.
        this.Write(span[Math.Max(sent, 0)..]);
        lock (this)
        {
            QueueWritten();
        }

        return SendAndWait(cancellationToken);
    }

    public override void CancelPendingFlush()
    {
        lock (this)
        {
            if (!_flushWaiting)
            {
                _cancelRequested = true;
                return;
            }
        }

        Release(new FlushResult(isCanceled: true, isCompleted: _closed), error: null);
    }

    public override void Complete(Exception? exception = null)
    {
        bool send;
        lock (this)
        {
            if (_completed)
            {
                return;
            }

            _completed = true;
            if (exception is not null || _closed)
            {
                send = false;
            }
            else
            {
                Commit();
                _finPending = true;
                send = !_sending;
                _sending = true;
            }
        }

        if (exception is not null)
        {
            // As over Kestrel's transport: an output completed with an error ends the connection with a
            // reset, and a read then fails with that very exception (Kestrel's shutdown reason).
            connection.Abort(exception);
        }
        else if (send)
        {
            _ = Send();
        }
    }

    /// <summary>Waits until everything written has been sent (or the client is gone): the connection is being disposed.</summary>
    public ValueTask<FlushResult> DrainAsync()
    {
        lock (this)
        {
            Commit();
            if (_closed || (_queue is null && !_sending))
            {
                return new ValueTask<FlushResult>(Closed);
            }

            if (_sending)
            {
                return Wait(CancellationToken.None);
            }

            _sending = true;
        }

        return SendAndWait(CancellationToken.None);
    }

    /// <summary>Nothing more can be sent: the connection was closed (a send in flight fails with the socket).</summary>
    public void Abort()
    {
        lock (this)
        {
            _closed = true;
        }
    }

    /// <summary>Gives the unsent blocks back: the connection is disposed and its socket closed.</summary>
    public void Dispose()
    {
        connection.Blocks.ReturnChain(_head);
        _head = _tail = null;
        _unflushed = 0;
        lock (this)
        {
            _closed = true;
            if (!_sending)
            {
                DropQueue();
            }
        }
    }

    /// <summary>An asynchronous send finished: go on with the queue (on the socket's thread).</summary>
    internal void OnSendCompleted(SocketSender sender)
    {
        var error = sender.SocketError;
        var sent = sender.BytesTransferred;
        connection.Senders.Return(sender);
        if (error != SocketError.Success || sent == 0)
        {
            Fail();
            return;
        }

        Consumed(sent);
        _ = Send();
    }

    /// <summary>
    /// Under the lock: moves what was written since the last flush to the send queue, counting it as
    /// sent (the connection's bytes out and its totals advance once per flush, never per write).
    /// </summary>
    private void Commit()
    {
        if (_unflushed == 0)
        {
            return;
        }

        connection.OnSent(_unflushed);
        QueueWritten();
    }

    /// <summary>Under the lock: moves the written blocks to the send queue.</summary>
    private void QueueWritten()
    {
        Enqueue(_head!, _tail!);
        _head = _tail = null;
        _unflushed = 0;
    }

    private void Enqueue(Block first, Block last)
    {
        if (_closed)
        {
            connection.Blocks.ReturnChain(first);
            return;
        }

        if (_queueTail is null)
        {
            _queue = first;
            _queueStart = 0;
        }
        else
        {
            _queueTail.Append(first);
        }

        _queueTail = last;
    }

    /// <summary>Runs the send that the caller claimed (<c>_sending</c>); if it could not finish at once, waits for it.</summary>
    private ValueTask<FlushResult> SendAndWait(CancellationToken cancellationToken)
    {
        if (Send())
        {
            lock (this)
            {
                return new ValueTask<FlushResult>(_closed ? Closed : Flushed);
            }
        }

        lock (this)
        {
            // The asynchronous send may have finished the queue before this lock was taken.
            return _sending ? Wait(cancellationToken) : new ValueTask<FlushResult>(_closed ? Closed : Flushed);
        }
    }

    /// <summary>
    /// The one send routine: sends the queue block by block without blocking; returns true once it is
    /// empty (or the send failed), false when an asynchronous send took over, which calls this again.
    /// </summary>
    private bool Send()
    {
        while (true)
        {
            if (!TryPeek(out var block, out var start))
            {
                EndSend();
                return true;
            }

            var length = block.End - start;
            if (length == 0)
            {
                // An empty block (GetSpan after a block was filled exactly, then Advance(0)): nothing to
                // send, and a zero-byte send would read as a failure.
                Consumed(0);
                continue;
            }

            var sent = connection.SendNow(block.Array.AsSpan(start, length), out var error);
            if (error == SocketError.WouldBlock || (error == SocketError.Success && sent < length && sent > 0))
            {
                if (sent > 0)
                {
                    Consumed(sent);
                    start += sent;
                }

                // The socket is full: it tells the sender when it has taken the rest of this block.
                var sender = connection.Senders.Rent();
                sender.Output = this;
                sender.SetBuffer(block.Array.AsMemory(start, block.End - start));
                bool pending;
                try
                {
                    pending = connection.Socket.SendAsync(sender);
                }
                catch (ObjectDisposedException)
                {
                    connection.Senders.Return(sender);
                    Fail();
                    return true;
                }

                if (pending)
                {
                    return false;
                }

                var asyncError = sender.SocketError;
                sent = sender.BytesTransferred;
                connection.Senders.Return(sender);
                if (asyncError != SocketError.Success || sent == 0)
                {
                    Fail();
                    return true;
                }
            }
            else if (error != SocketError.Success || sent == 0)
            {
                Fail();
                return true;
            }

            Consumed(sent);
        }
    }

    /// <summary>The block at the front of the queue and where its unsent part starts; false when there is nothing to send.</summary>
    private bool TryPeek(out Block block, out int start)
    {
        lock (this)
        {
            block = _queue!;
            start = _queueStart;
            return _queue is not null && !_closed;
        }
    }

    /// <summary>Drops <paramref name="sent"/> bytes from the front of the queue.</summary>
    private void Consumed(int sent)
    {
        lock (this)
        {
            if (_queue is not { } head)
            {
                return;
            }

            _queueStart += sent;
            if (_queueStart >= head.End)
            {
                _queue = (Block?)head.Next;
                _queueStart = 0;
                if (_queue is null)
                {
                    _queueTail = null;
                }

                connection.Blocks.Return(head);
            }
        }
    }

    /// <summary>Ends the send: a completed output gets its FIN, a waiting flush is released. False if the client is gone.</summary>
    private bool EndSend()
    {
        bool waiting;
        bool closed;
        lock (this)
        {
            waiting = EndSendLocked();
            closed = _closed;
        }

        if (waiting)
        {
            Release(closed ? Closed : Flushed, error: null);
        }

        return !closed;
    }

    /// <summary>Under the lock: the send is over (queue empty or the connection closed); true if a flush waits to be released.</summary>
    private bool EndSendLocked()
    {
        _sending = false;
        if (_closed)
        {
            DropQueue();
        }
        else if (_finPending)
        {
            _finPending = false;
            connection.ShutdownSend();
        }

        return _flushWaiting;
    }

    /// <summary>A send failed: the client reset or is gone, or this side closed the socket.</summary>
    private void Fail()
    {
        lock (this)
        {
            _closed = true;
        }

        connection.OnClientGone();
        EndSend();
    }

    private void DropQueue()
    {
        connection.Blocks.ReturnChain(_queue);
        _queue = _queueTail = null;
        _queueStart = 0;
    }

    /// <summary>Under the lock: a flush waits for the send in flight.</summary>
    private ValueTask<FlushResult> Wait(CancellationToken cancellationToken)
    {
        _flushWaiting = true;
        var waiter = _waiter ??= new FlushWaiter();
        waiter.Core.Reset();
        if (cancellationToken.CanBeCanceled)
        {
            waiter.Cancellation = cancellationToken.UnsafeRegister(
                static (state, token) => ((TcpOutput)state!).Release(default, new OperationCanceledException(token)), this);
        }

        return new ValueTask<FlushResult>(waiter, waiter.Core.Version);
    }

    /// <summary>Completes the waiting flush, if one still waits, with <paramref name="result"/> or <paramref name="error"/>.</summary>
    private void Release(FlushResult result, Exception? error)
    {
        CancellationTokenRegistration registration;
        FlushWaiter waiter;
        lock (this)
        {
            if (!_flushWaiting)
            {
                return;
            }

            _flushWaiting = false;
            waiter = _waiter!;
            registration = waiter.Cancellation;
            waiter.Cancellation = default;
        }

        registration.Dispose();
        if (error is null)
        {
            waiter.Core.SetResult(result);
        }
        else
        {
            waiter.Core.SetException(error);
        }
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
        }
    }

    /// <summary>What a flush waits on while the socket takes the queue.</summary>
    private sealed class FlushWaiter : IValueTaskSource<FlushResult>
    {
        public ManualResetValueTaskSourceCore<FlushResult> Core;

        public CancellationTokenRegistration Cancellation { get; set; }

        FlushResult IValueTaskSource<FlushResult>.GetResult(short token) => Core.GetResult(token);

        ValueTaskSourceStatus IValueTaskSource<FlushResult>.GetStatus(short token) => Core.GetStatus(token);

        void IValueTaskSource<FlushResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            Core.OnCompleted(continuation, state, token, flags);
    }
}

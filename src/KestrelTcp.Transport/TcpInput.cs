// Longer than this repository's 300 lines on purpose: one state machine (reads, the readiness wait, read-ahead, cancels, the end and errors) whose state
// lives under one lock; split across files, each part would have to reach into the others' fields.
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Transport;

/// <summary>
/// What a KestrelTcp transport connection receives, as a <see cref="PipeReader"/> that reads the
/// socket itself when the handler asks: no pipe and no receive loop sit between them, so an idle
/// connection holds no buffer and no task, only one pending zero-byte receive (the readiness wait).
/// A read that finds nothing waits for readiness, then receives into a pooled block without
/// blocking; data the handler has not consumed stays in its blocks, and the next receive appends.
/// <para>
/// The contract is a <see cref="Pipe"/>'s, as over Kestrel's transport, whose receive loop writes
/// into one. Read-ahead (the receives made while no read waits, and the one of
/// <see cref="TryRead"/>) stops with <c>MaxReadBufferSize</c> bytes the handler has not examined, as
/// a Pipe pauses its writer; a read that has examined everything waits for new bytes and gets them
/// whatever is held, as over a Pipe, so that a handler waiting for the rest of a large message is
/// never left hanging: bounding what it examines without consuming is the handler's part (as
/// Kestrel's HTTP parser bounds its headers). Errors surface as Kestrel's transport surfaces them: a
/// reset as <see cref="ConnectionResetException"/>, this side's end as its reason
/// (<see cref="TcpConnection.CloseReason"/>), the client's FIN as a completed result.
/// </para>
/// </summary>
internal sealed class TcpInput : PipeReader, IValueTaskSource<ReadResult>, IDisposable
{
    /// <summary>Below this much free space in the last block, a receive takes a fresh block.</summary>
    private const int MinimumReceiveSpace = 2048;

    private const int WouldBlock = -1;
    private const int Failed = -2;

    // Readiness from the epoll engine (_readiness): no wait armed, armed, an event came while unarmed, socket closed.
    private const int Idle = 0;
    private const int Armed = 1;
    private const int Signaled = 2;
    private const int Closed = 3;
    private const int SlotClosed = -2;

    // The socket, pool and read-ahead limit are the connection's: not repeated here (held connections count every field).
    private readonly TcpConnection _connection;

    // Readiness comes from an epoll engine (Linux) or, elsewhere, from a zero-byte receive (the waiter).
    private readonly EpollEngine? _engine;
    private readonly ReadinessWaiter? _waiter;
    private int _slot = -1;    // the engine's slot, once registered; SlotClosed after the close
    private int _readiness;    // Idle, Armed, Signaled or Closed (engine only)
    private int _hangUp;       // 1: the engine reported the client's FIN, a reset or an error: it will not signal again
    private int _urgent;       // 1: urgent data was reported (a receive stops short at its mark); until a receive finds nothing
    private bool _wouldBlock;  // the last receive found nothing
    private ManualResetValueTaskSourceCore<ReadResult> _source;
    private CancellationTokenRegistration _cancellation;

    private Block? _head;
    private int _headStart;
    private Block? _tail;
    private long _buffered;
    private long _unexamined; // buffered bytes past what the handler last examined (a Pipe's "unconsumed" bytes)
    private Exception? _error;

    private bool _readPending;       // a ReadAsync waits on _source
    private bool _resultOutstanding; // a result was returned and AdvanceTo has not been called yet
    private bool _waiting;           // the zero-byte receive is pending
    private bool _readable;          // readiness was seen and not used yet
    private bool _lastFilled;        // the last receive filled its space: more is likely there
    private bool _cancelRequested;
    private bool _watching;          // ConnectionClosed is awaited: read ahead while no read is pending
    private bool _eof;
    private bool _completed;

    public TcpInput(TcpConnection connection, bool inline, bool epoll)
    {
        _connection = connection;
        if (epoll)
        {
            _engine = EpollEngine.Next(inline);
        }
        else
        {
            _waiter = new ReadinessWaiter(this);
        }

        // With inline scheduling the handler continues on the socket event thread, as over Kestrel's
        // transport with UnsafePreferInlineScheduling; otherwise on the thread pool.
        _source.RunContinuationsAsynchronously = !inline;
    }

    /// <summary>Bytes received and not yet consumed by the handler.</summary>
    public long Buffered => _buffered;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ReadResult>(cancellationToken);
        }

        ReadResult result;
        Exception? error;
        lock (this)
        {
            ThrowIfCannotRead();
            if (!TryProduce(out result, out error))
            {
                _readPending = true;
                _source.Reset();
                if (cancellationToken.CanBeCanceled)
                {
                    _cancellation = cancellationToken.UnsafeRegister(static (state, token) => ((TcpInput)state!).OnReadCanceled(token), this);
                }

                return new ValueTask<ReadResult>(this, _source.Version);
            }
        }

        return error is null ? new ValueTask<ReadResult>(result) : ValueTask.FromException<ReadResult>(error);
    }

    public override bool TryRead(out ReadResult result)
    {
        lock (this)
        {
            ThrowIfCannotRead();
            if (_error is null && !_cancelRequested && _unexamined == 0 && !_eof)
            {
                // What the kernel holds already counts as arrived: over Kestrel's transport the receive
                // loop has moved it into the pipe, where TryRead finds it without a ReadAsync.
                _readable = false;
                if (ReceiveNow() == 0)
                {
                    _eof = true;
                }
            }

            if (_error is not null)
            {
                throw _error;
            }

            // As a Pipe's TryRead: bytes not examined yet, a cancel or the end; bytes examined and not
            // consumed alone wait for more.
            if (_cancelRequested || _unexamined > 0 || _eof)
            {
                var canceled = _cancelRequested;
                _cancelRequested = false;
                result = Result(canceled);
                return true;
            }
        }

        result = default;
        return false;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        lock (this)
        {
            if (!_resultOutstanding)
            {
                throw new InvalidOperationException("No reading operation to complete.");
            }

            _resultOutstanding = false;
            if (_head is null || consumed.GetObject() is not Block block)
            {
                if (_watching)
                {
                    ReadAhead();
                }

                return;
            }

            while (_head != block)
            {
                var next = (Block?)_head.Next ?? throw new InvalidOperationException("The position is not part of the last buffer read.");
                _buffered -= _head.End - _headStart;
                _connection.Blocks.Return(_head);
                _head = next;
                _headStart = 0;
            }

            var index = consumed.GetInteger();
            _buffered -= index - _headStart;
            _headStart = index;
            if (_head == _tail && _headStart == _tail.End)
            {
                _connection.Blocks.Return(_head);
                _head = _tail = null;
                _headStart = 0;
                _buffered = 0;
                _unexamined = 0;
            }
            else
            {
                // Bytes after what was examined are returned by the next read without waiting for more.
                // Positions compare by RunningIndex, which a block keeps while it is in the chain.
                var seen = examined.GetObject() is Block examinedBlock ? examinedBlock.RunningIndex + examined.GetInteger() : 0;
                _unexamined = Math.Clamp(_tail!.RunningIndex + _tail.End - seen, 0, _buffered);
            }

            if (_watching)
            {
                ReadAhead();
            }
        }
    }

    public override void CancelPendingRead()
    {
        ReadResult result;
        CancellationTokenRegistration registration;
        lock (this)
        {
            if (!_readPending)
            {
                _cancelRequested = true;
                return;
            }

            _readPending = false;
            result = Result(canceled: true);
            registration = TakeRegistration();
        }

        registration.Dispose();
        _source.SetResult(result);
    }

    public override void Complete(Exception? exception = null)
    {
        lock (this)
        {
            _completed = true;
            ReleaseBuffers();
        }
    }

    /// <summary>Marks the reader done and gives its blocks back: the connection is being disposed (its socket is closed).</summary>
    public void Dispose()
    {
        var pending = false;
        CancellationTokenRegistration registration;
        lock (this)
        {
            _completed = true;
            _error ??= _connection.CloseReason ?? new ConnectionAbortedException("The connection was closed.");
            ReleaseBuffers();
            if (_readPending)
            {
                // A read still waiting (the handler is gone, or raced the close) ends with the close.
                _readPending = false;
                pending = true;
            }

            registration = TakeRegistration();
        }

        registration.Dispose();
        if (pending)
        {
            _source.SetException(_error);
        }

        // Freed once the pending readiness wait, aborted by the close, has completed.
        _waiter?.Dispose();
    }

    /// <summary>The readiness wait ended (data, FIN, an error, or the socket was closed).</summary>
    private void OnReadable(SocketError status)
    {
        ReadResult result;
        Exception? error;
        CancellationTokenRegistration registration;
        lock (this)
        {
            _waiting = false;
            _ = Readied(status);
            if (!_readPending)
            {
                if (_watching)
                {
                    ReadAhead();
                }

                return;
            }

            if (!TryProduce(out result, out error))
            {
                return;
            }

            _readPending = false;
            registration = TakeRegistration();
        }

        registration.Dispose();
        if ((error is not null || result.IsCompleted) && !_source.RunContinuationsAsynchronously)
        {
            // The connection is ending: its handler's finish (close event, teardown) runs on a close
            // lane, not on this socket event thread, which serves every other socket it watches.
            _connection.CloseLanes!.Post(DeliverEnd);
        }
        else if (error is null)
        {
            _source.SetResult(result);
        }
        else
        {
            _source.SetException(error);
        }
    }

    /// <summary>
    /// Someone waits for <c>ConnectionClosed</c>: from now on, while no read is pending, the reader keeps
    /// a readiness wait of its own and receives ahead (within <c>MaxReadBufferSize</c>), so that the
    /// client's FIN or reset is seen even by a handler that is not reading, as Kestrel's receive loop sees it.
    /// </summary>
    public void WatchForEnd()
    {
        lock (this)
        {
            _watching = true;
            if (!_readPending && !_resultOutstanding)
            {
                ReadAhead();
            }
        }
    }

    /// <summary>Under the lock, with no read pending: receives what is there and waits for more, until the end or the read-ahead bound.</summary>
    private void ReadAhead()
    {
        while (!_completed && !_eof && _error is null && !_waiting && _unexamined < _connection.MaxReadBuffer)
        {
            if (_readable || _lastFilled)
            {
                _readable = false;
                var received = ReceiveNow();
                if (received == 0)
                {
                    _eof = true;
                }

                if (received != WouldBlock)
                {
                    continue;
                }
            }

            if (StartWait(out var status))
            {
                return;
            }

            _ = Readied(status);
        }
    }

    /// <summary>Whether the handler's read waits for bytes (for tests: the handler has taken all there was).</summary>
    internal bool ReadPending
    {
        get
        {
            lock (this)
            {
                return _readPending;
            }
        }
    }

    /// <summary>On a close lane: completes the pending read with the end (FIN or error) <see cref="OnReadable"/> found.</summary>
    internal void DeliverEnd()
    {
        ReadResult result;
        Exception? error;
        lock (this)
        {
            error = _error;
            result = new ReadResult(Buffer(), isCanceled: false, isCompleted: true);
        }

        if (error is null)
        {
            _source.SetResult(result);
        }
        else
        {
            _source.SetException(error);
        }
    }

    private void OnReadCanceled(CancellationToken token)
    {
        lock (this)
        {
            if (!_readPending)
            {
                return;
            }

            _readPending = false;
            _cancellation = default;
        }

        _source.SetException(new OperationCanceledException(token));
    }

    /// <summary>
    /// Under the lock: a result for a read now if there is one, receiving what the socket already holds;
    /// otherwise starts the readiness wait (unless pending) and returns false.
    /// </summary>
    private bool TryProduce(out ReadResult result, out Exception? error)
    {
        error = null;
        result = default;
        if (_cancelRequested)
        {
            _cancelRequested = false;
            result = Result(canceled: true);
            return true;
        }

        if (_error is not null)
        {
            error = _error;
            return true;
        }

        if (_unexamined > 0 || _eof)
        {
            result = Result(canceled: false);
            return true;
        }

        while (true)
        {
            if (_readable || _lastFilled)
            {
                _readable = false;
                switch (ReceiveNow())
                {
                    case WouldBlock:
                        break;
                    case Failed:
                        error = _error;
                        return true;
                    case 0:
                        _eof = true;
                        result = Result(canceled: false);
                        return true;
                    default:
                        result = Result(canceled: false);
                        return true;
                }
            }

            if (_waiting)
            {
                return false;
            }

            if (StartWait(out var status))
            {
                return false;
            }

            if (!Readied(status))
            {
                error = _error;
                return true;
            }
        }
    }

    /// <summary>
    /// Under the lock: arms the readiness wait; true while it is pending (<see cref="OnReadable"/>
    /// follows), false when it ended at once, with <paramref name="status"/>: Success when bytes (or
    /// the end) may be there already, an error otherwise.
    /// </summary>
    private bool StartWait(out SocketError status)
    {
        _lastFilled = false;
        if (_engine is not null)
        {
            return ArmEngine(out status);
        }

        _waiting = true;
        bool pending;
        try
        {
            pending = _connection.Socket.ReceiveAsync(_waiter!);
        }
        catch (ObjectDisposedException)
        {
            pending = false;
            _waiter!.SocketError = SocketError.OperationAborted;
        }

        _waiting = pending;
        status = _waiter!.SocketError;
        return pending;
    }

    /// <summary>Under the lock: the epoll half of <see cref="StartWait"/>. The socket is registered at its first wait.</summary>
    private bool ArmEngine(out SocketError status)
    {
        if (Volatile.Read(ref _slot) == -1)
        {
            status = _engine!.Register(this, _connection.Socket, out var slot);
            if (status != SocketError.Success)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _slot, slot, -1) != -1)
            {
                // Closed while registering: the close found no slot to free, so free it here.
                _engine.Release(slot);
                status = SocketError.OperationAborted;
                return false;
            }
        }

        // Edge-triggered events come for arrivals: a FIN or reset that came with bytes received since will
        // not signal again, so once one was reported a wait is a receive, until a receive finds nothing.
        // Likewise after urgent data: a receive returns what comes before the urgent mark and stops short of
        // the rest, which also came with that one edge.
        if ((Volatile.Read(ref _hangUp) | Volatile.Read(ref _urgent)) != 0 && !_wouldBlock)
        {
            status = SocketError.Success;
            return false;
        }

        // An event that came since the last receive means bytes may be there: receive again instead of waiting.
        switch (Interlocked.CompareExchange(ref _readiness, Armed, Idle))
        {
            case Idle:
                _waiting = true;
                status = SocketError.Success;
                return true;
            case Signaled:
                // Any arrival after this signals again; the receive that follows takes the earlier ones. (A
                // compare, not a write: the close may have made it Closed meanwhile.)
                _ = Interlocked.CompareExchange(ref _readiness, Idle, Signaled);
                status = SocketError.Success;
                return false;
            default:
                status = SocketError.OperationAborted;
                return false;
        }
    }

    /// <summary>
    /// On the engine's event thread: bytes, the end or an error arrived. An armed wait ends here;
    /// otherwise the next wait finds it signaled.
    /// </summary>
    internal void OnReadiness(bool hangUp, bool urgent)
    {
        // Full fences: seen by the reader before it reads the state this publishes below.
        if (hangUp)
        {
            Interlocked.Exchange(ref _hangUp, 1);
        }

        if (urgent)
        {
            Interlocked.Exchange(ref _urgent, 1);
        }

        while (true)
        {
            var state = Volatile.Read(ref _readiness);
            if (state is Signaled or Closed)
            {
                return;
            }

            if (state == Idle)
            {
                if (Interlocked.CompareExchange(ref _readiness, Signaled, Idle) == Idle)
                {
                    return;
                }

                continue;
            }

            if (Interlocked.CompareExchange(ref _readiness, Idle, Armed) == Armed)
            {
                // On this thread either way, as the runtime's socket engine completes a receive: the reader's
                // bookkeeping and receive do not block, and without inline completions the handler's
                // continuation goes to the thread pool from _source (RunContinuationsAsynchronously).
                OnReadable(SocketError.Success);
                return;
            }
        }
    }

    /// <summary>
    /// The connection closed its socket (which took it out of the epoll set): the slot is freed and an
    /// armed wait ends with the close, on the thread pool (the closing thread may be the handler's own).
    /// </summary>
    internal void OnSocketClosed()
    {
        if (_engine is null)
        {
            return;
        }

        var wasArmed = Interlocked.Exchange(ref _readiness, Closed) == Armed;
        var slot = Interlocked.Exchange(ref _slot, SlotClosed);
        if (slot >= 0)
        {
            _engine.Release(slot);
        }

        if (wasArmed)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static input => input.OnReadable(SocketError.OperationAborted), this, preferLocal: false);
        }
    }

    /// <summary>Receives what the socket holds without blocking: the byte count, 0 at the client's FIN, or <see cref="WouldBlock"/> / <see cref="Failed"/>.</summary>
    private int ReceiveNow()
    {
        var target = _tail is { Free: >= MinimumReceiveSpace } tail ? tail : null;
        var rented = target is null;
        target ??= _connection.Blocks.Rent();
        var space = target.Free;
        int received;
        SocketError status;
        // Taken before the receive: urgent data reported after this point sets it again.
        var urgent = _engine is not null && Volatile.Read(ref _urgent) != 0 ? Interlocked.Exchange(ref _urgent, 0) : 0;
        try
        {
            received = _connection.ReceiveNow(target.Array.AsSpan(target.End), out status);
        }
        catch (ObjectDisposedException)
        {
            received = 0;
            status = SocketError.OperationAborted;
        }

        _wouldBlock = status == SocketError.WouldBlock;
        if (urgent != 0 && !_wouldBlock)
        {
            // Not everything after the urgent mark may be received yet: the next wait receives again.
            Interlocked.Exchange(ref _urgent, 1);
        }

        if (status == SocketError.Success && received > 0)
        {
            if (rented)
            {
                if (_tail is null)
                {
                    _head = target;
                    _headStart = 0;
                }
                else
                {
                    _tail.Append(target);
                }

                _tail = target;
            }

            target.Grow(received);
            _buffered += received;
            _unexamined += received;
            _connection.OnReceived(received);
            _lastFilled = received == space;
            return received;
        }

        if (rented)
        {
            _connection.Blocks.Return(target);
        }

        if (status == SocketError.Success && _connection.IsClosed)
        {
            // Our own shutdown ended the stream, not the client's FIN: the read ends with the close.
            _error ??= MapError(SocketError.OperationAborted);
            return Failed;
        }

        if (status == SocketError.Success)
        {
            _connection.OnClientGone();
            return 0;
        }

        if (status == SocketError.WouldBlock)
        {
            return WouldBlock;
        }

        _error ??= MapError(status);
        if (_error is ConnectionResetException)
        {
            _connection.OnClientGone();
        }

        return Failed;
    }

    private bool Readied(SocketError status)
    {
        if (status == SocketError.Success)
        {
            _readable = true;
            return true;
        }

        _error ??= MapError(status);
        if (_error is ConnectionResetException)
        {
            _connection.OnClientGone();
        }

        return false;
    }

    private Exception MapError(SocketError status)
    {
        if (_connection.CloseReason is { } closed)
        {
            return closed;
        }

        if (_connection.IsClosed)
        {
            // Closed by this side (ECONNABORTED or an aborted operation on Linux): a close, as over Kestrel's transport.
            return new ConnectionAbortedException("The connection was closed.");
        }

        var socketError = new SocketException((int)status);
        return status switch
        {
            SocketError.ConnectionReset or SocketError.Shutdown => new ConnectionResetException(socketError.Message, socketError),
            SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument =>
                new ConnectionAbortedException("The connection was closed."),
            _ => new IOException(socketError.Message, socketError),
        };
    }

    private ReadResult Result(bool canceled)
    {
        _resultOutstanding = true;
        return new ReadResult(Buffer(), canceled, _eof);
    }

    private ReadOnlySequence<byte> Buffer() => _head is null ? default : new ReadOnlySequence<byte>(_head, _headStart, _tail!, _tail!.End);

    private void ThrowIfCannotRead()
    {
        if (_completed)
        {
            throw new InvalidOperationException("Reading is not allowed after the reader was completed.");
        }

        if (_readPending || _resultOutstanding)
        {
            throw new InvalidOperationException("Reading is already in progress.");
        }
    }

    private CancellationTokenRegistration TakeRegistration()
    {
        var registration = _cancellation;
        _cancellation = default;
        return registration;
    }

    private void ReleaseBuffers()
    {
        _connection.Blocks.ReturnChain(_head);
        _head = _tail = null;
        _headStart = 0;
        _buffered = 0;
        _unexamined = 0;
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);

    /// <summary>The zero-byte receive that waits for data without holding a buffer.</summary>
    private sealed class ReadinessWaiter : SocketAsyncEventArgs
    {
        private readonly TcpInput _input;

        public ReadinessWaiter(TcpInput input)
            : base(unsafeSuppressExecutionContextFlow: true)
        {
            _input = input;
            SetBuffer(Memory<byte>.Empty);
        }

        protected override void OnCompleted(SocketAsyncEventArgs e) => _input.OnReadable(SocketError);
    }
}

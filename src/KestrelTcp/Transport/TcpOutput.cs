using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using KestrelTcp.Connections;

namespace KestrelTcp.Transport;

/// <summary>
/// What a KestrelTcp transport connection sends, as a <see cref="PipeWriter"/> whose flush sends to
/// the socket: written bytes sit in pooled blocks until <c>FlushAsync</c>, which completes once the
/// socket has taken all of them (so a client that does not read holds the handler in its flush:
/// backpressure, and at most what the handler wrote before flushing is held). A flush that finds
/// the client gone returns <c>IsCompleted</c>, as over Kestrel's transport. <c>WriteAsync</c> with
/// nothing buffered sends straight from the caller's memory.
/// </summary>
internal sealed class TcpOutput(TcpConnection connection) : PipeWriter
{
    private Block? _head;
    private int _headSent;
    private Block? _tail;
    private long _unflushed;
    private bool _closed;        // the client is gone or the connection was aborted: nothing more can be sent
    private bool _completed;
    private bool _cancelRequested;

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _unflushed;

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        ThrowIfCompleted();
        var needed = Math.Max(sizeHint, 1);
        if (_tail is null)
        {
            _head = _tail = connection.Pool.Rent(needed);
        }
        else if (_tail.Free < needed)
        {
            var next = connection.Pool.Rent(needed);
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
        connection.Observer?.OnWritten(bytes);
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        connection.Observer?.OnFlushed();
        if (_cancelRequested)
        {
            _cancelRequested = false;
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: true, isCompleted: _closed));
        }

        if (_closed)
        {
            return new ValueTask<FlushResult>(Closed());
        }

        if (_unflushed == 0)
        {
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: false));
        }

        // The common case, one block sent whole at once, without an async frame.
        var head = _head!;
        if (head.Next is null)
        {
            var sender = SocketSenderPool.Shared.Rent();
            ValueTask<int> pending;
            try
            {
                pending = sender.SendAsync(connection.Socket, head.Array.AsMemory(_headSent, head.End - _headSent));
            }
            catch (ObjectDisposedException)
            {
                SocketSenderPool.Shared.Return(sender);
                return new ValueTask<FlushResult>(Closed());
            }

            if (!pending.IsCompletedSuccessfully)
            {
                return SendRestAsync(sender, pending, hasFirst: true);
            }

            var sent = pending.Result;
            if (sent == head.End - _headSent)
            {
                SocketSenderPool.Shared.Return(sender);
                Release();
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: false));
            }

            _headSent += sent;
            return SendRestAsync(sender, default, hasFirst: false);
        }

        return SendRestAsync(SocketSenderPool.Shared.Rent(), default, hasFirst: false);
    }

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        if (_unflushed != 0 || _closed || _cancelRequested || source.IsEmpty)
        {
            return base.WriteAsync(source, cancellationToken);
        }

        ThrowIfCompleted();
        if (connection.Observer is { } observer)
        {
            observer.OnWritten(source.Length);
            observer.OnFlushed();
        }

        return SendAsync(source);
    }

    public override void CancelPendingFlush() => _cancelRequested = true;

    public override void Complete(Exception? exception = null) => _completed = true;

    /// <summary>Sends what was written and not flushed (as Kestrel's transport does after the handler); false if the client is gone.</summary>
    public async ValueTask DrainAsync()
    {
        if (_unflushed != 0 && !_closed)
        {
            await FlushAsync();
        }

        Release();
    }

    /// <summary>Nothing more can be sent (the connection was aborted).</summary>
    public void Abort() => _closed = true;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<FlushResult> SendRestAsync(SocketSender sender, ValueTask<int> first, bool hasFirst)
    {
        try
        {
            while (_head is { } head)
            {
                var length = head.End - _headSent;
                var sent = hasFirst ? await first : await sender.SendAsync(connection.Socket, head.Array.AsMemory(_headSent, length));
                hasFirst = false;
                if (sent == 0)
                {
                    throw new SocketException((int)SocketError.ConnectionReset);
                }

                if (sent < length)
                {
                    _headSent += sent;
                    continue;
                }

                // This block is sent: on to the next.
                var next = (Block?)head.Next;
                connection.Pool.Return(head);
                _head = next;
                _headSent = 0;
            }

            _tail = null;
            _unflushed = 0;
            return new FlushResult(isCanceled: false, isCompleted: false);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return Closed();
        }
        finally
        {
            SocketSenderPool.Shared.Return(sender);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<FlushResult> SendAsync(ReadOnlyMemory<byte> source)
    {
        var sender = SocketSenderPool.Shared.Rent();
        try
        {
            while (!source.IsEmpty)
            {
                var sent = await sender.SendAsync(connection.Socket, source);
                if (sent == 0)
                {
                    throw new SocketException((int)SocketError.ConnectionReset);
                }

                source = source[sent..];
            }

            return new FlushResult(isCanceled: false, isCompleted: false);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return Closed();
        }
        finally
        {
            SocketSenderPool.Shared.Return(sender);
        }
    }

    private FlushResult Closed()
    {
        _closed = true;
        connection.Observer?.OnClientCompleted();
        Release();
        return new FlushResult(isCanceled: false, isCompleted: true);
    }

    private void Release()
    {
        connection.Pool.ReturnChain(_head);
        _head = _tail = null;
        _headSent = 0;
        _unflushed = 0;
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("Writing is not allowed after the writer was completed.");
        }
    }
}

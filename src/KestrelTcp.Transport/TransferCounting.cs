using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Transport;

/// <summary>Gives every connection an <see cref="IConnectionTransferFeature"/>, whatever its transport.</summary>
public static class TransferCountingExtensions
{
    /// <summary>
    /// Connections whose transport has no <see cref="IConnectionTransferFeature"/> (Kestrel's socket
    /// transport, Unix sockets) get one from a thin wrapper of their pipes that counts what passes;
    /// KestrelTcp's transport answers it itself and is left as it is. Add it first. With
    /// <paramref name="totals"/>, every connection's bytes are added to them from its first byte on:
    /// those of a PROXY header or a TLS handshake too, and of connections refused after them.
    /// </summary>
    public static TBuilder UseTransferCounting<TBuilder>(this TBuilder builder, TimeProvider time, TransferTotals? totals = null)
        where TBuilder : IConnectionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(time);
        builder.Use(next => connection =>
        {
            var transfer = connection.Features.Get<IConnectionTransferFeature>();
            if (transfer is null)
            {
                var counted = new CountingDuplexPipe(connection.Transport, time);
                connection.Features.Set<IConnectionTransferFeature>(counted);
                connection.Transport = counted;
                transfer = counted;
            }

            if (totals is not null)
            {
                transfer.Totals = totals;
            }

            return next(connection);
        });
        return builder;
    }
}

/// <summary>Counts what passes through another transport's pipes: the same figures KestrelTcp's transport keeps itself.</summary>
internal sealed class CountingDuplexPipe : IDuplexPipe, IConnectionTransferFeature
{
    private readonly TimeProvider _time;
    private long _bytesReceived;
    private long _bytesSent;
    private long _lastReceived;
    private int _clientClosed;

    public CountingDuplexPipe(IDuplexPipe inner, TimeProvider time)
    {
        _time = time;
        _lastReceived = time.GetTimestamp();
        Input = new CountingReader(inner.Input, this);
        Output = new CountingWriter(inner.Output, this);
    }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    public long BytesSent => Volatile.Read(ref _bytesSent);

    public long LastReceivedTimestamp => Volatile.Read(ref _lastReceived);

    public bool ClientClosed => Volatile.Read(ref _clientClosed) != 0;

    public TransferTotals? Totals { get; set; }

    private void OnRead(in ReadResult result, long unconsumedBefore)
    {
        var fresh = result.Buffer.Length - unconsumedBefore;
        if (fresh > 0)
        {
            _bytesReceived += fresh;
            _lastReceived = _time.GetTimestamp();
            Totals?.AddReceived(fresh);
        }

        if (result.IsCompleted)
        {
            _clientClosed = 1;
        }
    }

    private void OnSent(long bytes)
    {
        if (bytes > 0)
        {
            _bytesSent += bytes;
            Totals?.AddSent(bytes);
        }
    }

    private sealed class CountingReader(PipeReader inner, CountingDuplexPipe owner) : PipeReader
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

    private sealed class CountingWriter(PipeWriter inner, CountingDuplexPipe owner) : PipeWriter
    {
        private long _written;

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes)
        {
            _written += bytes;
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            owner.OnSent(_written);
            _written = 0;
            return Observe(inner.FlushAsync(cancellationToken));
        }

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            owner.OnSent(_written + source.Length);
            _written = 0;
            return Observe(inner.WriteAsync(source, cancellationToken));
        }

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null)
        {
            // Written and never flushed still goes out when the transport completes: count it.
            owner.OnSent(_written);
            _written = 0;
            inner.Complete(exception);
        }

        public override ValueTask CompleteAsync(Exception? exception = null)
        {
            owner.OnSent(_written);
            _written = 0;
            return inner.CompleteAsync(exception);
        }

        // A completed flush means the transport stopped sending: the client reset or vanished.
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
                owner._clientClosed = 1;
            }
        }
    }
}

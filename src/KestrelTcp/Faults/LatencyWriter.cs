using System.IO.Pipelines;

namespace KestrelTcp.Faults;

/// <summary>
/// The handler's output when the listener has <c>Latency</c>: the fault pipe's writer, noting when each
/// flush (or write, or the completion) made its bytes readable, so that the pump delivers each batch its
/// latency after that moment, not after the moment the pump happened to get to it.
/// </summary>
internal sealed class LatencyWriter(PipeWriter inner, WriteMarks marks, FaultSession session) : PipeWriter
{
    private long _written;

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes;

    public override void Advance(int bytes)
    {
        inner.Advance(bytes);
        _written += bytes;
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

    // The mark comes before the bytes are readable: the pump never finds bytes without their time.
    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        marks.Add(_written, session.Now);
        return inner.FlushAsync(cancellationToken);
    }

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        _written += source.Length;
        marks.Add(_written, session.Now);
        return inner.WriteAsync(source, cancellationToken);
    }

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    public override void Complete(Exception? exception = null)
    {
        marks.Add(_written, session.Now);
        inner.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        marks.Add(_written, session.Now);
        return inner.CompleteAsync(exception);
    }
}

/// <summary>
/// When the bytes of each batch of output became readable: (end offset in the output stream, time), oldest
/// first. Bounded: once full, a new batch joins the newest entry and takes its (later) time, so the bytes
/// of that entry are delivered late rather than early, and a handler flushing every byte costs no memory.
/// </summary>
internal sealed class WriteMarks
{
    public const int Capacity = 64;

    private readonly (long End, TimeSpan At)[] _ring = new (long, TimeSpan)[Capacity];
    private int _head;
    private int _count;

    public int Count
    {
        get
        {
            lock (_ring)
            {
                return _count;
            }
        }
    }

    public void Add(long end, TimeSpan at)
    {
        lock (_ring)
        {
            if (_count > 0)
            {
                ref var newest = ref _ring[(_head + _count - 1) % Capacity];
                if (newest.End >= end)
                {
                    return;
                }

                if (_count == Capacity)
                {
                    newest = (end, at);
                    return;
                }
            }

            _ring[(_head + _count) % Capacity] = (end, at);
            _count++;
        }
    }

    /// <summary>The oldest batch that ends after <paramref name="offset"/>, dropping those before it.</summary>
    public bool TryNext(long offset, out (long End, TimeSpan At) mark)
    {
        lock (_ring)
        {
            while (_count > 0)
            {
                mark = _ring[_head];
                if (mark.End > offset)
                {
                    return true;
                }

                _head = (_head + 1) % Capacity;
                _count--;
            }
        }

        mark = default;
        return false;
    }
}

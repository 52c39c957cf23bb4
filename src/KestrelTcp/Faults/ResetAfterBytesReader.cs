using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Faults;

/// <summary>
/// The handler's input when the listener has <c>ResetAfterBytes</c>: the transport's reader, counting what
/// the client sent as the handler reads it; the read that brings the count to the limit resets the
/// connection instead of returning (so with 1, the client's first byte never reaches the handler). A
/// close request's <see cref="CancelPendingRead"/> passes straight through.
/// </summary>
internal sealed class ResetAfterBytesReader(PipeReader inner, FaultSession session, long limit) : PipeReader
{
    private ReadOnlySequence<byte> _last;
    private long _unconsumed;
    private long _received;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var pending = inner.ReadAsync(cancellationToken);
        if (!pending.IsCompletedSuccessfully)
        {
            return AwaitRead(pending);
        }

        var result = pending.Result;
        return Observe(result) is { } reset ? ValueTask.FromException<ReadResult>(reset) : new ValueTask<ReadResult>(result);
    }

    public override bool TryRead(out ReadResult result)
    {
        if (!inner.TryRead(out result))
        {
            return false;
        }

        if (Observe(result) is { } reset)
        {
            throw reset;
        }

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
        return Observe(result) is { } reset ? throw reset : result;
    }

    /// <summary>Counts the bytes new in <paramref name="result"/>; at the limit, resets and returns what the read fails with.</summary>
    private ConnectionAbortedException? Observe(in ReadResult result)
    {
        _received += result.Buffer.Length - _unconsumed;
        if (_received < limit)
        {
            _last = result.Buffer;
            return null;
        }

        inner.AdvanceTo(result.Buffer.Start);
        _unconsumed = 0;
        return session.Reset(FaultKind.ResetAfterBytes);
    }
}

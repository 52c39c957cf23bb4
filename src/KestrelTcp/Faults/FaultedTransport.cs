using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Faults;

/// <summary>
/// The connection's <see cref="Microsoft.AspNetCore.Connections.ConnectionContext.Transport"/> while faults
/// shape it. Input is the transport's (counted by <see cref="ResetAfterBytesReader"/> with
/// <c>ResetAfterBytes</c>), so a close request's <c>CancelPendingRead</c> reaches the handler unchanged.
/// Output, with latency, bandwidth, slices or a byte limit, is a <see cref="Pipe"/> of our own that a pump
/// copies to the transport's output, honouring the faults.
/// <para>
/// The bound: the pipe pauses the handler's flush at <see cref="PauseThreshold"/> bytes not yet sent by the
/// pump, and the pump sends no faster than the transport's own output takes (it awaits every flush), so
/// a handler writing into a slow or non-reading client is held by backpressure as it is without faults:
/// per connection at most <see cref="PauseThreshold"/> plus one write of the handler waits here. The pump
/// sends pieces of at most <see cref="FaultPacing.MaxPiece"/> and releases each piece's memory as it goes.
/// </para>
/// <para>
/// The ends: the handler completing its output (or returning: <see cref="FinishAsync"/>) lets the pump
/// deliver the rest, wait <c>CloseDelay</c>, then complete the transport's output (FIN). The client gone
/// (a flush that completes) or the byte limit reached completes our pipe's reader, so the handler's writes
/// return <c>IsCompleted</c>, as they do over a transport whose client left.
/// </para>
/// </summary>
internal sealed partial class FaultedTransport : IDuplexPipe
{
    /// <summary>Unsent bytes at which the handler's flush waits: Kestrel's default <c>MaxWriteBufferSize</c>.</summary>
    public const int PauseThreshold = 64 * 1024;

    /// <summary>Where it goes on again.</summary>
    public const int ResumeThreshold = PauseThreshold / 2;

    private readonly IDuplexPipe _inner;
    private readonly FaultSession _session;
    private readonly Pipe? _pipe;
    private readonly WriteMarks? _marks;
    private readonly Task _pump = Task.CompletedTask;

    public FaultedTransport(IDuplexPipe inner, FaultSession session)
    {
        _inner = inner;
        _session = session;
        var options = session.Options;
        Input = options.ResetAfterBytes > 0 ? new ResetAfterBytesReader(inner.Input, session, options.ResetAfterBytes) : inner.Input;
        if (!options.ShapesOutput)
        {
            Output = inner.Output;
            return;
        }

        var pool = session.Connection.Features.Get<IMemoryPoolFeature>()?.MemoryPool ?? MemoryPool<byte>.Shared;
        _pipe = new Pipe(new PipeOptions(pool, pauseWriterThreshold: PauseThreshold, resumeWriterThreshold: ResumeThreshold, useSynchronizationContext: false));
        if (options.IsConfigured(FaultKind.Latency))
        {
            _marks = new WriteMarks();
            Output = new LatencyWriter(_pipe.Writer, _marks, session);
        }
        else
        {
            Output = _pipe.Writer;
        }

        _pump = PumpAsync(_pipe.Reader);
    }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    /// <summary>True when the output goes through the pump.</summary>
    public bool IsPumped => _pipe is not null;

    /// <summary>
    /// The handler has returned (with <paramref name="handlerError"/> when it failed): its output is
    /// completed, and this completes when the pump has delivered it (and the close delay passed) or given up.
    /// </summary>
    public async Task FinishAsync(Exception? handlerError)
    {
        if (_pipe is null)
        {
            return;
        }

        await Output.CompleteAsync(handlerError);
        await _pump;
    }

    private async Task PumpAsync(PipeReader reader)
    {
        var end = PumpEnd.Drained;
        try
        {
            end = await CopyAsync(reader, _inner.Output);
        }
        catch (Exception ex)
        {
            // The handler failed (its exception completes our pipe and is rethrown by the read), or the
            // transport's output did: either way nothing more is sent.
            FaultLog.PumpFailed(_session.Logger, ex);
            end = PumpEnd.Failed;
        }

        await EndAsync(reader, end);
    }

    private async Task EndAsync(PipeReader reader, PumpEnd end)
    {
        try
        {
            switch (end)
            {
                case PumpEnd.Drained:
                    if (_session.Options.CloseDelay > TimeSpan.Zero)
                    {
                        await _session.WaitAsync(_session.Options.CloseDelay);
                    }

                    await reader.CompleteAsync();
                    await _inner.Output.CompleteAsync();
                    break;
                case PumpEnd.Limit:
                    // Exactly LimitBytes went out: a FIN, and the handler is told (its writes complete, its
                    // pending read is canceled, as a close request is) so that the connection ends.
                    FaultLog.LimitReached(_session.Logger, _session.Options.LimitBytes);
                    _session.CloseByServer();
                    await reader.CompleteAsync();
                    await _inner.Output.CompleteAsync();
                    Input.CancelPendingRead();
                    break;
                default:
                    await reader.CompleteAsync();
                    break;
            }
        }
        catch (Exception ex)
        {
            FaultLog.PumpFailed(_session.Logger, ex);
        }
    }

    private enum PumpEnd
    {
        Drained,
        Limit,
        Gone,
        Failed,
    }
}

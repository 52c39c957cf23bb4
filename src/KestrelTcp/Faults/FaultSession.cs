using KestrelTcp.Connections;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Faults;

/// <summary>
/// One faulted connection: its clock (offsets from when the faults began), its resets, and the waits of
/// the faults, each of which ends early when the connection is gone, so that a long delay never holds
/// an aborted connection (the drain's timeout, the idle timeout) open. Every wait reads the injected
/// <see cref="TimeProvider"/>.
/// </summary>
internal sealed class FaultSession : IDisposable
{
    private readonly ConnectionContext _connection;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long _start;
    private readonly CancellationTokenSource _ended = new();
    private readonly CancellationTokenRegistration _closedRegistration;
    private readonly ITimer? _resetTimer;
    private int _reset;

    public FaultSession(ConnectionContext connection, FaultOptions options, TimeProvider time, ILogger logger)
    {
        _connection = connection;
        _time = time;
        _logger = logger;
        Options = options;
        _start = time.GetTimestamp();
        // The transport's end: an abort (ours, the idle timeout's, the drain's), a reset by the client,
        // and over KestrelTcp's transport also the client's FIN, which the pump tells apart (PumpDelayAsync).
        _closedRegistration = connection.ConnectionClosed.UnsafeRegister(static s => ((FaultSession)s!).OnEnded(), this);
        if (options.ResetAfter > TimeSpan.Zero)
        {
            _resetTimer = time.CreateTimer(static s => ((FaultSession)s!).OnResetTimer(), this, options.ResetAfter, Timeout.InfiniteTimeSpan);
        }
    }

    public FaultOptions Options { get; }

    public TimeProvider Time => _time;

    public ILogger Logger => _logger;

    public ConnectionContext Connection => _connection;

    /// <summary>Time since the faults began on this connection.</summary>
    public TimeSpan Now => _time.GetElapsedTime(_start);

    /// <summary>True once this session reset the connection.</summary>
    public bool IsReset => Volatile.Read(ref _reset) != 0;

    /// <summary>Canceled when the connection has ended (or may have: see <see cref="PumpDelayAsync"/>).</summary>
    public CancellationToken Ended => _ended.Token;

    /// <summary>
    /// Resets the connection (RST: <see cref="ConnectionContext.Abort(ConnectionAbortedException)"/>, which both
    /// transports turn into a reset), recorded as the server's close; returns the exception reads then fail with.
    /// </summary>
    public ConnectionAbortedException Reset(FaultKind kind)
    {
        var reason = new ConnectionAbortedException($"Reset by the {FaultKinds.Label(kind)} fault.");
        if (Interlocked.Exchange(ref _reset, 1) != 0)
        {
            return reason;
        }

        CloseByServer();
        FaultLog.Reset(_logger, FaultKinds.Label(kind));
        _connection.Abort(reason);
        OnEnded();
        return reason;
    }

    /// <summary>Records the close as the server's (a fault is our doing, not the client's); the first reason recorded wins.</summary>
    public void CloseByServer() => _connection.Features.Get<ICloseReasonFeature>()?.SetCloseReason(CloseReason.Server);

    /// <summary>
    /// Waits <paramref name="delay"/> (a connect or close delay): less when the connection ends or is asked to
    /// close (the drain), which then proceeds at once: the handler starts and sees the request, or the close happens.
    /// </summary>
    public async Task WaitAsync(TimeSpan delay)
    {
        var closeRequested = _connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_ended.Token, closeRequested);
        try
        {
            await DelayUntilAsync(Now + delay, stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Waits until <see cref="Now"/> reaches <paramref name="due"/>: never less. The system timers fire by a
    /// coarse clock (a jiffy, 4 ms on Linux) and may fire that much early; the rest is waited again.
    /// </summary>
    public async Task DelayUntilAsync(TimeSpan due, CancellationToken cancellationToken)
    {
        for (var left = due - Now; left > TimeSpan.Zero; left = due - Now)
        {
            await Task.Delay(RoundUp(left), _time, cancellationToken);
        }
    }

    /// <summary>
    /// A wait of the output pump; false when the connection is gone (nothing more can be sent). When the
    /// transport's end fires during the wait, <paramref name="output"/> (the real output, which only the pump
    /// writes) is asked with an empty flush whether it still takes data: over KestrelTcp's transport the
    /// client's FIN fires it too, and a half-closed client still gets the rest of the echo, on time.
    /// </summary>
    public async ValueTask<bool> PumpDelayAsync(TimeSpan delay, System.IO.Pipelines.PipeWriter output)
    {
        var due = Now + delay;
        if (!_ended.IsCancellationRequested)
        {
            try
            {
                await DelayUntilAsync(due, _ended.Token);
                return true;
            }
            catch (OperationCanceledException)
            {
            }
        }

        if (IsReset || (await output.FlushAsync()).IsCompleted)
        {
            return false;
        }

        await DelayUntilAsync(due, CancellationToken.None);
        return !IsReset;
    }

    /// <summary>Whole milliseconds, rounded up: the system timers count milliseconds and would truncate.</summary>
    internal static TimeSpan RoundUp(TimeSpan delay) =>
        TimeSpan.FromTicks((delay.Ticks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond * TimeSpan.TicksPerMillisecond);

    private void OnResetTimer()
    {
        // Early by a tick of the timers' coarse clock: armed again for the rest.
        var left = Options.ResetAfter - Now;
        if (left > TimeSpan.Zero && _resetTimer is { } timer)
        {
            timer.Change(RoundUp(left), Timeout.InfiniteTimeSpan);
            return;
        }

        Reset(FaultKind.ResetAfter);
    }

    private void OnEnded()
    {
        try
        {
            // Not inline: the waits' continuations would run on the aborting thread (the drain, a timer).
            _ = _ended.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _resetTimer?.Dispose();
        _closedRegistration.Dispose();
        _ended.Dispose();
    }
}

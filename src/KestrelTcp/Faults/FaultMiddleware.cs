using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Faults;

/// <summary>
/// A listener's faults, applied to a connection just before its handler. <c>Probability</c> is rolled
/// once; a connection it spares goes to the handler untouched. On the others each configured fault is
/// counted once, then: <c>ConnectDelay</c> before the handler; <c>Timeout</c> instead of it (nothing
/// passes, then a graceful close); <c>ResetAfter</c> as a timer that aborts (RST); the output shaping
/// and <c>ResetAfterBytes</c> through <see cref="FaultedTransport"/>; <c>CloseDelay</c> once the handler
/// has finished and its output is delivered.
/// </summary>
internal sealed class FaultMiddleware(ConnectionDelegate next, FaultCounters counters, TimeProvider time, ILogger logger)
{
    /// <summary>What a held connection (<c>Timeout</c>) reads and leaves unread at most: the transport's read-ahead bound.</summary>
    public const int HoldLimit = KestrelTcpHostingExtensions.MaxReadBufferSize;

    public Task OnConnectionAsync(ConnectionContext connection)
    {
        // NextDouble is below 1: a probability of 1 always applies, 0 never.
        if (Random.Shared.NextDouble() >= counters.Options.Probability)
        {
            return next(connection);
        }

        counters.Applied();
        FaultLog.Applied(logger);
        return RunAsync(connection);
    }

    private async Task RunAsync(ConnectionContext connection)
    {
        var options = counters.Options;
        using var session = new FaultSession(connection, options, time, logger);
        if (options.ConnectDelay > TimeSpan.Zero)
        {
            await session.WaitAsync(options.ConnectDelay);
        }

        if (session.IsReset)
        {
            return;
        }

        if (options.Timeout is { } timeout)
        {
            await HoldAsync(session, timeout);
            return;
        }

        var original = connection.Transport;
        var faulted = options.ShapesOutput || options.ResetAfterBytes > 0 ? new FaultedTransport(original, session) : null;
        if (faulted is not null)
        {
            connection.Transport = faulted;
        }

        Exception? failure = null;
        try
        {
            await next(connection);
        }
        catch (Exception ex)
        {
            failure = ex;
            throw;
        }
        finally
        {
            if (faulted is not null)
            {
                await faulted.FinishAsync(failure);
                connection.Transport = original;
            }

            if (faulted?.IsPumped != true && failure is null && options.CloseDelay > TimeSpan.Zero)
            {
                // Without the pump the handler's flushes have gone out already: only the close waits.
                await session.WaitAsync(options.CloseDelay);
            }
        }
    }

    /// <summary>
    /// <c>Timeout</c>: the handler does not run and nothing is sent; what the client sends is examined,
    /// never consumed (up to <see cref="HoldLimit"/>, then not read at all, so the client meets
    /// backpressure), only to see it leave. Ends after <paramref name="timeout"/> (never with zero), when
    /// the client leaves, or when the connection is asked to close (the drain); then the close is graceful.
    /// </summary>
    private static async Task HoldAsync(FaultSession session, TimeSpan timeout)
    {
        var connection = session.Connection;
        var closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var timer = timeout > TimeSpan.Zero ? new CancellationTokenSource(timeout, session.Time) : null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(timer?.Token ?? CancellationToken.None, session.Ended, closeRequested);
        var input = connection.Transport.Input;
        var resetAfterBytes = session.Options.ResetAfterBytes;
        long held = 0;
        try
        {
            while (held < HoldLimit)
            {
                var result = await input.ReadAsync(stop.Token);
                held = result.Buffer.Length;
                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                if (resetAfterBytes > 0 && held >= resetAfterBytes)
                {
                    throw session.Reset(FaultKind.ResetAfterBytes);
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    return;
                }
            }

            await Task.Delay(Timeout.InfiniteTimeSpan, session.Time, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            if (timer is { IsCancellationRequested: true })
            {
                // The timer's clock is coarse: never closed before the timeout.
                await session.DelayUntilAsync(timeout, CancellationToken.None);
            }
        }
        finally
        {
            FaultLog.TimeoutEnded(session.Logger, session.Now.TotalMilliseconds, held);
        }
    }
}

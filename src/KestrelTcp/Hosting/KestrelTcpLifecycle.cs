using KestrelTcp.Connections;
using KestrelTcp.Diagnostics;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Hosting;

/// <summary>
/// Start and stop of the TCP side. Started: marks listeners bound and logs each real endpoint.
/// Stopping (before Kestrel's own stop, which would close the HTTP port too): readiness turns 503,
/// then after <c>Shutdown:Delay</c> the listeners refuse new connections, every open connection is
/// asked to finish (Kestrel's close request, nothing else), and whatever remains after
/// <c>Shutdown:DrainTimeout</c> is aborted. Every wait reads the injected <see cref="TimeProvider"/>.
/// </summary>
internal sealed class KestrelTcpLifecycle(
    KestrelTcpRuntime runtime,
    IOptions<SocketTransportOptions> sockets,
    TcpTransportFactory tcpTransport,
    ILogger<KestrelTcpLifecycle> logger,
    TimeProvider time) : IHostedLifecycleService, IDisposable
{
    /// <summary>How often the drain looks whether every connection has finished.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>How long aborted connections get to record their close before Kestrel stops.</summary>
    public static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(1);

    private IdleTimeout? _idleTimeout;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        foreach (var listener in runtime.Listeners)
        {
            listener.State = ListenerState.Listening;
            Log.ListenerStarted(logger, listener.Name, listener.HandlerName, listener.Endpoint);
        }

        if (runtime.HttpEndpoint is { } http)
        {
            Log.ManagementStarted(logger, http);
        }

        var own = tcpTransport.Bound;
        Log.TransportStarted(logger, own > 0 ? "KestrelTcp" : "Kestrel", own, sockets.Value.UnsafePreferInlineScheduling,
            tcpTransport.Options.BlockSize, tcpTransport.Options.MaxReadBufferSize);

        _idleTimeout = new IdleTimeout(runtime.Listeners, time);
        runtime.State = ServerState.Ready;
        return Task.CompletedTask;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (runtime.State == ServerState.ShuttingDown)
        {
            return;
        }

        runtime.State = ServerState.ShuttingDown;
        var shutdown = runtime.Options.Shutdown;
        Log.ShutdownStarted(logger, runtime.Listeners.Sum(l => l.ActiveConnections), shutdown.Delay, shutdown.DrainTimeout);
        try
        {
            if (shutdown.Delay > TimeSpan.Zero)
            {
                await Task.Delay(shutdown.Delay, time, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }

        var started = time.GetTimestamp();
        foreach (var listener in runtime.Listeners)
        {
            listener.State = ListenerState.Draining;
            listener.Limiter.RefuseWaiting();
        }

        foreach (var connection in runtime.Listeners.SelectMany(l => l.OpenConnections))
        {
            connection.RequestClose(CloseReason.Shutdown);
        }

        var aborted = 0;
        if (!await WaitForNoOpenConnections(shutdown.DrainTimeout, cancellationToken))
        {
            foreach (var connection in runtime.Listeners.SelectMany(l => l.OpenConnections))
            {
                aborted++;
                connection.Abort("Shutdown drain timeout");
            }

            await WaitForNoOpenConnections(AbortGrace, CancellationToken.None);
        }

        foreach (var listener in runtime.Listeners)
        {
            listener.State = ListenerState.Stopped;
        }

        Log.DrainCompleted(logger, time.GetElapsedTime(started).TotalMilliseconds, aborted);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        _idleTimeout?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _idleTimeout?.Dispose();

    private async Task<bool> WaitForNoOpenConnections(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        while (runtime.Listeners.Any(l => l.HasOpenConnections))
        {
            if (time.GetElapsedTime(started) >= timeout || cancellationToken.IsCancellationRequested)
            {
                return false;
            }

            await Task.Delay(PollInterval, time, CancellationToken.None);
        }

        return true;
    }
}

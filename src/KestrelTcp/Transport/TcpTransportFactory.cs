using System.Net;
using System.Net.Sockets;
using KestrelTcp.Diagnostics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Transport;

/// <summary>
/// The endpoint of a TCP listener that the KestrelTcp transport serves (the HTTP management port and
/// Unix sockets stay on Kestrel's own socket transport). <see cref="IPAddress.IPv6Any"/> means every
/// address, IPv6 and IPv4 (falling back to IPv4 alone where the host has no IPv6), as Kestrel's
/// <c>ListenAnyIP</c>.
/// </summary>
internal sealed class ListenerEndPoint(IPAddress address, int port) : IPEndPoint(address, port);

/// <summary>How the KestrelTcp transport is set up: from Kestrel's socket transport options and the memory pool.</summary>
internal sealed record TcpTransportSettings(int Backlog, bool NoDelay, long MaxReadBufferSize, bool Inline, int BlockSize, int RetainedBlocks);

/// <summary>
/// Kestrel's transport for KestrelTcp: binds every <see cref="ListenerEndPoint"/> itself (see
/// <see cref="TcpConnection"/>) and hands every other endpoint to Kestrel's socket transport.
/// It counts what it bound, so the start-up log can say which transport serves the listeners.
/// </summary>
internal sealed class TcpTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    /// <summary>Free blocks kept for reuse, shared by all listeners (4 MiB at 64 KiB); a block is out only while its bytes are in flight.</summary>
    public const int DefaultRetainedBlocks = 64;

    private readonly SocketTransportFactory _sockets;
    private readonly TcpTransportSettings _settings;
    private readonly BlockPool _pool;
    private readonly ILogger _logger;
    private int _bound;

    public TcpTransportFactory(IOptions<SocketTransportOptions> options, ILoggerFactory loggers, TcpTransportSettings settings)
    {
        _sockets = new SocketTransportFactory(options, loggers);
        _settings = settings;
        _pool = new BlockPool(settings.BlockSize, settings.RetainedBlocks);
        _logger = loggers.CreateLogger("KestrelTcp.Transport");
    }

    /// <summary>Listener endpoints bound by this transport so far.</summary>
    public int Bound => Volatile.Read(ref _bound);

    public bool CanBind(EndPoint endpoint) => true;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not ListenerEndPoint listener)
        {
            return await _sockets.BindAsync(endpoint, cancellationToken);
        }

        var socket = Bind(listener);
        Interlocked.Increment(ref _bound);
        return new TcpConnectionListener(socket, _pool, _settings, _logger);
    }

    private Socket Bind(ListenerEndPoint endpoint)
    {
        if (endpoint.Address.Equals(IPAddress.IPv6Any))
        {
            try
            {
                return Listen(new IPEndPoint(IPAddress.IPv6Any, endpoint.Port), dualMode: true);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.AddressFamilyNotSupported or SocketError.AddressNotAvailable)
            {
                // No IPv6 on this host: every IPv4 address, as Kestrel's ListenAnyIP falls back.
                return Listen(new IPEndPoint(IPAddress.Any, endpoint.Port), dualMode: false);
            }
        }

        return Listen(new IPEndPoint(endpoint.Address, endpoint.Port), dualMode: false);
    }

    private Socket Listen(IPEndPoint endpoint, bool dualMode)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (dualMode)
            {
                socket.DualMode = true;
            }

            socket.Bind(endpoint);
            socket.Listen(_settings.Backlog);
            return socket;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            socket.Dispose();
            throw new AddressInUseException(ex.Message, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>Accepts the connections of one listener endpoint of the KestrelTcp transport.</summary>
internal sealed class TcpConnectionListener(Socket socket, BlockPool pool, TcpTransportSettings settings, ILogger logger) : IConnectionListener
{
    public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Socket accepted;
            try
            {
                var pending = socket.AcceptAsync(cancellationToken);
                if (pending.IsCompleted)
                {
                    // A backlog of connections: take them one per turn of the thread pool, behind the
                    // connection starts Kestrel queues there, instead of queueing the whole backlog at
                    // once ahead of everything else (the management port's requests among them).
                    await Task.Yield();
                }

                accepted = await pending;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.OperationAborted)
            {
                return null;
            }
            catch (OperationCanceledException)
            {
                return null;
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
            {
                // The client gave up before the accept: nothing to serve.
                continue;
            }
            catch (SocketException ex)
            {
                // Out of descriptors or memory: do not spin; Kestrel's limits and ours still apply.
                Log.AcceptFailed(logger, EndPoint.ToString() ?? "?", ex.SocketErrorCode);
                await Task.Delay(50, CancellationToken.None);
                continue;
            }

            try
            {
                accepted.NoDelay = settings.NoDelay;
                accepted.Blocking = false;
                return new TcpConnection(accepted, pool, settings.MaxReadBufferSize, settings.Inline);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                accepted.Dispose();
            }
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        socket.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Transport;

/// <summary>
/// KestrelTcp's socket transport, as Kestrel sees any transport: an <see cref="IConnectionListenerFactory"/>
/// that binds the <see cref="TcpListenEndPoint"/>s (and nothing else, see <see cref="CanBind"/>). The
/// buffers, the socket senders and the close lanes its connections share belong to this factory
/// and go with it.
/// </summary>
public sealed class TcpTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector, IDisposable
{
    private readonly ILogger _logger;
    private int _bound;

    /// <summary>Creates the transport.</summary>
    public TcpTransportFactory(TcpTransportOptions options, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        Options = options;
        Blocks = new BlockPool(options.BlockSize, options.RetainedBlocks);
        Senders = new SocketSenderPool(options.RetainedBlocks);
        CloseLanes = options.InlineCompletions ? new CloseLanes(Math.Clamp(Environment.ProcessorCount, 1, 8)) : null;
        _logger = loggers.CreateLogger("KestrelTcp.Transport");
    }

    /// <summary>Endpoints bound by this transport so far.</summary>
    public int Bound => Volatile.Read(ref _bound);

    /// <summary>The options the transport was created with.</summary>
    public TcpTransportOptions Options { get; }

    internal BlockPool Blocks { get; }

    internal SocketSenderPool Senders { get; }

    /// <summary>Where ending connections finish with inline completions; null without them.</summary>
    internal CloseLanes? CloseLanes { get; }

    /// <inheritdoc />
    public bool CanBind(EndPoint endpoint) => endpoint is TcpListenEndPoint;

    /// <inheritdoc />
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not TcpListenEndPoint listen)
        {
            throw new NotSupportedException($"{nameof(TcpTransportFactory)} binds {nameof(TcpListenEndPoint)}s only, not {endpoint.GetType().Name}.");
        }

        var socket = Bind(listen);
        Interlocked.Increment(ref _bound);
        return new ValueTask<IConnectionListener>(new TcpConnectionListener(socket, this, _logger));
    }

    /// <summary>Stops the close lanes and lets the pooled buffers go.</summary>
    public void Dispose()
    {
        CloseLanes?.Dispose();
        Blocks.Close();
        Senders.Close();
    }

    private Socket Bind(TcpListenEndPoint endpoint)
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
            socket.Listen(Options.Backlog);
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

using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Transport;

/// <summary>Accepts the connections of one endpoint of KestrelTcp's transport.</summary>
internal sealed partial class TcpConnectionListener(Socket socket, TcpTransportFactory transport, ILogger logger) : IConnectionListener
{
    private static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(50);

    public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

    // Pooled: each accept that waits for a client would otherwise leave its state machine box behind (~160 B per connection).
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
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
            catch (Exception ex) when (ex is ObjectDisposedException or OperationCanceledException
                || ex is SocketException { SocketErrorCode: SocketError.OperationAborted })
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
                // Out of descriptors or memory: do not spin; the limits still apply.
                AcceptFailed(logger, EndPoint.ToString() ?? "?", ex.SocketErrorCode);
                await Task.Delay(AcceptRetryDelay, transport.Options.TimeProvider, CancellationToken.None);
                continue;
            }

            try
            {
                accepted.NoDelay = transport.Options.NoDelay;
                return new TcpConnection(accepted, transport);
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

    [LoggerMessage(EventId = 10, EventName = "AcceptFailed", Level = LogLevel.Warning,
        Message = "Accepting on {Endpoint} failed ({Error}); retrying in 50 ms")]
    private static partial void AcceptFailed(ILogger logger, string endpoint, SocketError error);
}

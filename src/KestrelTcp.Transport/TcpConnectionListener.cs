using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Transport;

/// <summary>
/// Accepts the connections of one endpoint of KestrelTcp's transport.
/// <para>
/// With epoll readiness (Linux), the listening socket is non-blocking and never given to the runtime's
/// socket engine: a connection already waiting is taken with a plain <c>accept</c> on the thread that
/// asks for it, and only when none is waiting does the listener wait, for one report (one-shot) from
/// the transport's own epoll set. The runtime's engine registers a listener edge-triggered for good, so
/// its thread woke for every connection that arrived, even one an accept had already taken: two
/// context switches per accepted connection on a busy core (docs/benchmarks.md, round 8).
/// </para>
/// </summary>
internal sealed partial class TcpConnectionListener : IConnectionListener, IValueTaskSource<bool>
{
    private static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(50);

    private readonly Socket _socket;
    private readonly TcpTransportFactory _transport;
    private readonly ILogger _logger;
    private readonly EpollEngine? _engine;
    private readonly int _slot = -1;
    private ManualResetValueTaskSourceCore<bool> _readable = new() { RunContinuationsAsynchronously = true };
    private int _waiting; // 1 while a readiness report is awaited
    private int _closed; // 1 once Close ran (Kestrel unbinds, then disposes: the slot is released once)

    public TcpConnectionListener(Socket socket, TcpTransportFactory transport, ILogger logger)
    {
        _socket = socket;
        _transport = transport;
        _logger = logger;
        EndPoint = socket.LocalEndPoint!;
        if (transport.Options.EpollReadiness && EpollEngine.IsSupported)
        {
            try
            {
                // The descriptor alone is made non-blocking, for accept4: the Socket stays blocking, so the runtime
                // creates no asynchronous context for it, nor for the sockets accepted from it.
                SocketCalls.SetNonBlocking(socket);
                // The pooled set, whose thread runs no handler: a report only queues the accept's continuation,
                // and never waits behind a handler running inline on an event thread.
                _engine = EpollEngine.Next(inline: false);
                var error = _engine.Register(this, socket, out _slot);
                if (error != SocketError.Success)
                {
                    throw new SocketException((int)error);
                }
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }

    public EndPoint EndPoint { get; }

    private bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>The listening socket (for tests).</summary>
    internal Socket Socket => _socket;

    // Pooled: each accept that waits for a client would otherwise leave its state machine box behind (~160 B per connection).
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        var reported = false;
        while (true)
        {
            Socket accepted;
            IPEndPoint? peer = null;
            try
            {
                if (_engine is null)
                {
                    var pending = _socket.AcceptAsync(cancellationToken);
                    if (pending.IsCompleted)
                    {
                        // A backlog: one per turn of the thread pool, as below.
                        await Task.Yield();
                    }

                    accepted = await pending;
                }
                else
                {
                    var taken = SocketCalls.Accept(_socket, out var error, out var transient, out peer);
                    if (taken is null)
                    {
                        if (error == SocketError.WouldBlock)
                        {
                            // Kestrel accepts without a token; one given here ends the wait as the listener's close does.
                            using (cancellationToken.UnsafeRegister(static state => ((TcpConnectionListener)state!).EndWait(), this))
                            {
                                if (!await WaitReadableAsync(cancellationToken))
                                {
                                    return null;
                                }
                            }

                            reported = true;
                            continue;
                        }

                        if (transient)
                        {
                            continue;
                        }

                        if (IsClosed || error == SocketError.OperationAborted)
                        {
                            return null;
                        }

                        throw new SocketException((int)error);
                    }

                    if (!reported)
                    {
                        // A backlog of connections: take them one per turn of the thread pool, behind the
                        // connection starts Kestrel queues there, instead of queueing the whole backlog at
                        // once ahead of everything else (the management port's requests among them).
                        await Task.Yield();
                    }

                    accepted = taken;
                }
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
                if (IsClosed)
                {
                    return null;
                }

                // Out of descriptors or memory: do not spin; the limits still apply.
                AcceptFailed(_logger, EndPoint.ToString() ?? "?", ex.SocketErrorCode);
                await Task.Delay(AcceptRetryDelay, _transport.Options.TimeProvider, CancellationToken.None);
                continue;
            }

            try
            {
                accepted.NoDelay = _transport.Options.NoDelay;
                var connection = new TcpConnection(accepted, _transport);
                if (peer is not null)
                {
                    // Reset before it was taken: the socket no longer knows its peer, accept did.
                    connection.RemoteEndPoint = peer;
                }

                return connection;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                accepted.Dispose();
            }
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        Close();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        Close();
        return ValueTask.CompletedTask;
    }

    /// <summary>The epoll set's report that a connection is waiting (or the socket failed): the accept goes on.</summary>
    internal void OnReadable()
    {
        if (Interlocked.Exchange(ref _waiting, 0) == 1)
        {
            _readable.SetResult(true);
        }
    }

    private void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 1)
        {
            return;
        }

        _socket.Dispose();
        if (_engine is not null)
        {
            _engine.Release(_slot);
            EndWait();
        }
    }

    /// <summary>Ends a wait for readiness with false: the listener closed, or the accept was canceled.</summary>
    private void EndWait()
    {
        if (Interlocked.Exchange(ref _waiting, 0) == 1)
        {
            _readable.SetResult(false);
        }
    }

    /// <summary>Waits for one readiness report: true when a connection may be waiting, false once the listener is closed.</summary>
    private ValueTask<bool> WaitReadableAsync(CancellationToken cancellationToken)
    {
        if (IsClosed)
        {
            return new ValueTask<bool>(false);
        }

        _readable.Reset();
        Volatile.Write(ref _waiting, 1);
        var error = _engine!.Rearm(this, _slot, _socket);
        if (error != SocketError.Success)
        {
            if (Interlocked.Exchange(ref _waiting, 0) == 0)
            {
                // Already ended meanwhile (a close, a cancellation, a report left from an earlier arm): that is the answer.
                return new ValueTask<bool>(this, _readable.Version);
            }

            if (IsClosed || error == SocketError.OperationAborted)
            {
                return new ValueTask<bool>(false);
            }

            // Out of epoll watches (ENOSPC) or memory: reported, and retried after a pause, as a failed accept.
            throw new SocketException((int)error);
        }

        // A close or cancellation just before the wait began found nothing to end: it is seen here.
        if ((IsClosed || cancellationToken.IsCancellationRequested) && Interlocked.Exchange(ref _waiting, 0) == 1)
        {
            return new ValueTask<bool>(false);
        }

        return new ValueTask<bool>(this, _readable.Version);
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _readable.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _readable.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _readable.OnCompleted(continuation, state, token, flags);

    [LoggerMessage(EventId = 10, EventName = "AcceptFailed", Level = LogLevel.Warning,
        Message = "Accepting on {Endpoint} failed ({Error}); retrying in 50 ms")]
    private static partial void AcceptFailed(ILogger logger, string endpoint, SocketError error);
}

using System.Collections;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace KestrelTcp.Transport;

/// <summary>
/// One accepted socket of a KestrelTcp listener, as Kestrel's connection middleware sees it. It is
/// its own feature collection, duplex pipe and connection features, so that a held connection costs
/// this object, its reader, its writer and the socket's own state: a small part of what Kestrel's
/// socket transport keeps per connection (two pipes, receive and send loops, their state machines).
/// </summary>
internal sealed partial class TcpConnection : ConnectionContext, IDuplexPipe, IConnectionTransferFeature
{
    private static long s_lastId = DateTime.UtcNow.Ticks;

    private readonly Socket _socket;
    private readonly TcpInput _input;
    private readonly TcpOutput _output;
    private string? _id;
    private IDuplexPipe _transport;
    private IDictionary<object, object?>? _items;
    private EndPoint? _local;
    private EndPoint? _remote;
    private CancellationTokenSource? _closed;
    private readonly TcpTransportFactory _transportFactory;
    private readonly bool _native; // epoll readiness and the system calls themselves (SocketCalls)
    private int _state; // 0 open, 1 closed (aborted or disposed)
    private int _clientClosed;
    private long _bytesReceived;
    private long _bytesSent;
    private long _lastReceived;

    public TcpConnection(Socket socket, TcpTransportFactory transport)
    {
        _socket = socket;
        _transportFactory = transport;
        _native = transport.Options.EpollReadiness && EpollEngine.IsSupported;
        if (_native)
        {
            SocketCalls.SetNonBlocking(socket);
        }
        else
        {
            socket.Blocking = false;
        }

        _input = new TcpInput(this, transport.Options.InlineCompletions, _native);
        _output = new TcpOutput(this);
        _transport = this;
        _lastReceived = transport.Options.TimeProvider.GetTimestamp();
    }

    /// <summary>Whether this side closed the socket (an abort, or the dispose after the handler).</summary>
    internal bool IsClosed => Volatile.Read(ref _state) != 0;

    /// <summary>Whether the handler waits in a read with nothing left to read (for tests).</summary>
    internal bool ReadPending => _input.ReadPending;

    /// <summary>
    /// Why this side ended the connection: the abort's reason, or the exception the output was
    /// completed with. Reads fail with it from then on, as over Kestrel's transport, whose receive
    /// loop completes the input with its shutdown reason. Null unless it did.
    /// </summary>
    public Exception? CloseReason { get; private set; }

    public override string ConnectionId
    {
        get => _id ??= NextId();
        set => _id = value;
    }

    public override IFeatureCollection Features => this;

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport
    {
        get => _transport;
        set => _transport = value;
    }

    public override CancellationToken ConnectionClosed
    {
        get
        {
            if (_closed is null)
            {
                var created = new CancellationTokenSource();
                if (Interlocked.CompareExchange(ref _closed, created, null) is not null)
                {
                    created.Dispose();
                }
                else if (Volatile.Read(ref _state) != 0 || Volatile.Read(ref _clientClosed) != 0)
                {
                    created.Cancel();
                }
                else
                {
                    // Someone waits for the end: notice the client's FIN or reset even while nobody reads.
                    _input.WatchForEnd();
                }
            }

            return _closed.Token;
        }

        set => throw new NotSupportedException("The transport owns ConnectionClosed.");
    }

    public override EndPoint? LocalEndPoint
    {
        get => _local ??= TryGet(static socket => socket.LocalEndPoint);
        set => _local = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _remote ??= TryGet(static socket => socket.RemoteEndPoint);
        set => _remote = value;
    }

    public Socket Socket => _socket;

    /// <summary>A non-blocking receive of what the socket holds now.</summary>
    internal int ReceiveNow(Span<byte> buffer, out SocketError error) =>
        _native ? SocketCalls.Receive(_socket, buffer, out error) : _socket.Receive(buffer, SocketFlags.None, out error);

    /// <summary>A non-blocking send of what the socket takes now.</summary>
    internal int SendNow(ReadOnlySpan<byte> bytes, out SocketError error) =>
        _native ? SocketCalls.Send(_socket, bytes, out error) : _socket.Send(bytes, SocketFlags.None, out error);

    /// <summary>The transport's blocks, for this connection's reader and writer.</summary>
    internal BlockPool Blocks => _transportFactory.Blocks;

    internal SocketSenderPool Senders => _transportFactory.Senders;

    internal CloseLanes? CloseLanes => _transportFactory.CloseLanes;

    /// <summary>How far the reader receives ahead of the handler: bytes it has not examined (Kestrel's MaxReadBufferSize).</summary>
    internal long MaxReadBuffer => _transportFactory.Options.MaxReadBufferSize;

    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    public long BytesSent => Volatile.Read(ref _bytesSent);

    public long LastReceivedTimestamp => Volatile.Read(ref _lastReceived);

    public bool ClientClosed => Volatile.Read(ref _clientClosed) != 0;

    public TransferTotals? Totals { get; set; }

    PipeReader IDuplexPipe.Input => _input;

    PipeWriter IDuplexPipe.Output => _output;

    /// <summary>Bytes received and not yet consumed by the handler.</summary>
    internal long InputBuffered => _input.Buffered;

    public override void Abort(ConnectionAbortedException abortReason) => Abort((Exception)abortReason);

    /// <summary>
    /// Ends the connection with a reset, as Kestrel's socket transport does (its default, without
    /// <c>FinOnError</c>): what was not sent yet is dropped, and the client sees the reset, not a
    /// FIN, so it can tell an abort from a graceful end. <paramref name="reason"/> is what reads throw.
    /// </summary>
    internal void Abort(Exception reason)
    {
        CloseReason ??= reason;
        _output.Abort();
        Close(reset: true);
    }

    public override async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _state) == 0)
        {
            // What the handler wrote and did not flush still goes out, then the client gets a FIN.
            await _output.DrainAsync();
        }

        Close(reset: false);
        _input.Dispose();
        _output.Dispose();
        await base.DisposeAsync();
    }

    /// <summary>Counts bytes received (the read path).</summary>
    internal void OnReceived(int bytes)
    {
        _bytesReceived += bytes;
        _lastReceived = _transportFactory.Options.TimeProvider.GetTimestamp();
        Totals?.AddReceived(bytes);
    }

    /// <summary>Counts bytes flushed (the write path).</summary>
    internal void OnSent(long bytes)
    {
        _bytesSent += bytes;
        Totals?.AddSent(bytes);
    }

    /// <summary>The client sent its FIN, reset, or vanished under a send: the connection is ending, by the client.</summary>
    internal void OnClientGone()
    {
        if (IsClosed || Interlocked.Exchange(ref _clientClosed, 1) != 0)
        {
            return;
        }

        FireClosed();
    }

    /// <summary>The output is complete: a FIN to the client, input still readable.</summary>
    internal void ShutdownSend()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }

    private void Close(bool reset)
    {
        if (Interlocked.Exchange(ref _state, 1) != 0)
        {
            return;
        }

        // Remember the endpoints: they cannot be asked of a closed socket.
        _ = LocalEndPoint;
        _ = RemoteEndPoint;
        try
        {
            if (reset)
            {
                // SO_LINGER 0: close() sends the reset.
                _socket.LingerState = new LingerOption(true, 0);
            }
            else
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }

        _socket.Dispose();
        _input.OnSocketClosed();
        if (Volatile.Read(ref _clientClosed) == 0)
        {
            FireClosed();
        }
    }

    /// <summary>ConnectionClosed fires (once, off this thread, as over Kestrel's transport) if anyone asked for it.</summary>
    private void FireClosed()
    {
        if (Volatile.Read(ref _closed) is { } closed)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static cts => cts.Cancel(), closed, preferLocal: false);
        }
    }

    private EndPoint? TryGet(Func<Socket, EndPoint?> read)
    {
        try
        {
            return read(_socket);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>Kestrel's connection id format: 13 base-32 characters of a counter seeded from the clock.</summary>
    private static string NextId() => string.Create(13, Interlocked.Increment(ref s_lastId), static (chars, value) =>
    {
        const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
        for (var i = 12; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(value & 31)];
            value >>= 5;
        }
    });
}

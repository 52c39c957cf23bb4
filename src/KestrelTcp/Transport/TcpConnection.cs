using System.Collections;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using KestrelTcp.Connections;
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
internal sealed class TcpConnection : ConnectionContext, IDuplexPipe, IFeatureCollection,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature,
    IConnectionEndPointFeature, IConnectionSocketFeature
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
    private int _state; // 0 open, 1 closed (aborted or disposed)
    private int _revision;

    // Features set by others: Kestrel's connection (heartbeat, completion, close request) and the
    // tracking middleware have fields; one more (Kestrel's metrics context) has a slot of its own,
    // anything else goes to the small list.
    private IConnectionHeartbeatFeature? _heartbeat;
    private IConnectionCompleteFeature? _complete;
    private IConnectionLifetimeNotificationFeature? _notification;
    private ICloseReasonFeature? _closeReason;
    private TrackedConnection? _tracked;
    private Type? _otherType;
    private object? _otherValue;
    private KeyValuePair<Type, object>[]? _others;

    public TcpConnection(Socket socket, BlockPool pool, long maxReadBuffer, bool inline)
    {
        _socket = socket;
        Pool = pool;
        MaxReadBuffer = maxReadBuffer;
        _input = new TcpInput(this, inline);
        _output = new TcpOutput(this);
        _transport = this;
    }

    /// <summary>Told what this connection receives and sends (the tracking middleware), if anyone.</summary>
    public ITransportObserver? Observer { get; set; }

    /// <summary>Whether this side closed the socket (an abort, or the dispose after the handler).</summary>
    internal bool IsClosed => Volatile.Read(ref _state) != 0;

    /// <summary>Why the connection was aborted; null unless it was.</summary>
    public ConnectionAbortedException? AbortReason { get; private set; }

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
                else if (Volatile.Read(ref _state) != 0)
                {
                    created.Cancel();
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

    /// <summary>The transport's blocks, for this connection's reader and writer.</summary>
    internal BlockPool Pool { get; }

    /// <summary>How much received data the reader may hold unconsumed (Kestrel's MaxReadBufferSize).</summary>
    internal long MaxReadBuffer { get; }

    PipeReader IDuplexPipe.Input => _input;

    PipeWriter IDuplexPipe.Output => _output;

    /// <summary>Bytes received and not yet consumed by the handler.</summary>
    internal long InputBuffered => _input.Buffered;

    public override void Abort(ConnectionAbortedException abortReason)
    {
        AbortReason ??= abortReason;
        _output.Abort();
        Close();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _state) == 0)
        {
            // What the handler wrote and did not flush still goes out, then the client gets a FIN.
            await _output.DrainAsync();
        }

        Close();
        _input.Dispose();
        await _output.DrainAsync();
        await base.DisposeAsync();
    }

    private void Close()
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
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }

        _socket.Dispose();
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

    // ---- IFeatureCollection: this object answers the transport's own features.

    bool IFeatureCollection.IsReadOnly => false;

    int IFeatureCollection.Revision => _revision;

    object? IFeatureCollection.this[Type key]
    {
        get => Get(key);
        set => Set(key, value);
    }

    TFeature? IFeatureCollection.Get<TFeature>() where TFeature : default => (TFeature?)Get(typeof(TFeature));

    void IFeatureCollection.Set<TFeature>(TFeature? instance) where TFeature : default => Set(typeof(TFeature), instance);

    private object? Get(Type type)
    {
        if (type == typeof(TrackedConnection))
        {
            return _tracked;
        }

        if (type == typeof(ICloseReasonFeature))
        {
            return _closeReason;
        }

        if (type == typeof(IConnectionHeartbeatFeature))
        {
            return _heartbeat;
        }

        if (type == typeof(IConnectionLifetimeNotificationFeature))
        {
            return _notification;
        }

        if (type == typeof(IConnectionCompleteFeature))
        {
            return _complete;
        }

        if (_otherType == type)
        {
            return _otherValue;
        }

        if (_others is { } others)
        {
            foreach (var entry in others)
            {
                if (entry.Key == type)
                {
                    return entry.Value;
                }
            }
        }

        return type == typeof(IConnectionIdFeature) || type == typeof(IConnectionTransportFeature)
            || type == typeof(IConnectionItemsFeature) || type == typeof(IConnectionLifetimeFeature)
            || type == typeof(IConnectionEndPointFeature) || type == typeof(IConnectionSocketFeature)
            ? this
            : null;
    }

    private void Set(Type type, object? value)
    {
        _revision++;
        if (type == typeof(TrackedConnection))
        {
            _tracked = (TrackedConnection?)value;
        }
        else if (type == typeof(ICloseReasonFeature))
        {
            _closeReason = (ICloseReasonFeature?)value;
        }
        else if (type == typeof(IConnectionHeartbeatFeature))
        {
            _heartbeat = (IConnectionHeartbeatFeature?)value;
        }
        else if (type == typeof(IConnectionLifetimeNotificationFeature))
        {
            _notification = (IConnectionLifetimeNotificationFeature?)value;
        }
        else if (type == typeof(IConnectionCompleteFeature))
        {
            _complete = (IConnectionCompleteFeature?)value;
        }
        else
        {
            SetOther(type, value);
        }
    }

    private void SetOther(Type type, object? value)
    {
        if (_otherType is null || _otherType == type)
        {
            _otherType = value is null ? null : type;
            _otherValue = value;
            return;
        }

        var others = _others ?? [];
        for (var i = 0; i < others.Length; i++)
        {
            if (others[i].Key == type)
            {
                if (value is null)
                {
                    _others = [.. others[..i], .. others[(i + 1)..]];
                }
                else
                {
                    others[i] = new(type, value);
                }

                return;
            }
        }

        if (value is not null)
        {
            _others = [.. others, new(type, value)];
        }
    }

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator()
    {
        foreach (var type in (Type[])[typeof(TrackedConnection), typeof(ICloseReasonFeature), typeof(IConnectionHeartbeatFeature),
            typeof(IConnectionLifetimeNotificationFeature), typeof(IConnectionCompleteFeature)])
        {
            if (Get(type) is { } value)
            {
                yield return new(type, value);
            }
        }

        if (_otherType is not null)
        {
            yield return new(_otherType, _otherValue!);
        }

        foreach (var entry in _others ?? [])
        {
            yield return entry;
        }

        foreach (var type in (Type[])[typeof(IConnectionIdFeature), typeof(IConnectionTransportFeature), typeof(IConnectionItemsFeature),
            typeof(IConnectionLifetimeFeature), typeof(IConnectionEndPointFeature), typeof(IConnectionSocketFeature)])
        {
            if (Get(type) is { } value)
            {
                yield return new(type, value);
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable<KeyValuePair<Type, object>>)this).GetEnumerator();
}

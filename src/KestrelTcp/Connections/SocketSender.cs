using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;
using KestrelTcp.Hosting;

namespace KestrelTcp.Connections;

/// <summary>
/// Socket sends for <see cref="TrackedConnection.SendDirectAsync"/> through event args borrowed
/// for one send and then returned, as Kestrel's own transport does. <c>Socket.SendAsync(memory)</c>
/// would instead keep a ~300-byte event args object on every socket that ever sent, which 10,000
/// held connections pay in full.
/// </summary>
internal sealed class SocketSenderPool(int retained)
{
    /// <summary>The process-wide pool: a sender is busy only for the length of one send.</summary>
    public static readonly SocketSenderPool Shared = new(64);

    private readonly BoundedStack<SocketSender> _free = new(retained);

    public SocketSender Rent() => _free.TryPop(out var sender) ? sender : new SocketSender();

    public void Return(SocketSender sender)
    {
        sender.Clear();
        if (!_free.TryPush(sender))
        {
            sender.Dispose();
        }
    }
}

/// <summary>One send at a time from caller-owned memory; awaitable without allocating.</summary>
internal sealed class SocketSender() : SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true), IValueTaskSource<int>
{
    private ManualResetValueTaskSourceCore<int> _source;

    /// <summary>Sends what the socket takes of <paramref name="data"/> (at least one byte unless it fails); the memory must stay valid until the send completes.</summary>
    public ValueTask<int> SendAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        _source.Reset();
        SetBuffer(MemoryMarshal.AsMemory(data));
        if (socket.SendAsync(this))
        {
            return new ValueTask<int>(this, _source.Version);
        }

        return SocketError == SocketError.Success
            ? new ValueTask<int>(BytesTransferred)
            : ValueTask.FromException<int>(new SocketException((int)SocketError));
    }

    /// <summary>Drops the reference to the caller's memory before the sender goes back to the pool.</summary>
    public void Clear() => SetBuffer(Memory<byte>.Empty);

    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        if (SocketError == SocketError.Success)
        {
            _source.SetResult(BytesTransferred);
        }
        else
        {
            _source.SetException(new SocketException((int)SocketError));
        }
    }

    int IValueTaskSource<int>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}

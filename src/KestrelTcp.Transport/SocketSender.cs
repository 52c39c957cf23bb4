using System.Net.Sockets;

namespace KestrelTcp.Transport;

/// <summary>
/// The factory's socket senders: event args borrowed for one asynchronous send (one that the
/// socket could not take at once) and then returned, as Kestrel's own transport does.
/// <c>Socket.SendAsync(memory)</c> would instead keep a ~300-byte event args object on every socket
/// that ever had to wait, which 10,000 held connections pay in full.
/// </summary>
internal sealed class SocketSenderPool(int retained)
{
    private readonly BoundedStack<SocketSender> _free = new(retained);

    public SocketSender Rent() => _free.TryPop(out var sender) ? sender : new SocketSender();

    public void Return(SocketSender sender)
    {
        sender.Output = null;
        sender.SetBuffer(Memory<byte>.Empty);
        if (!_free.TryPush(sender))
        {
            sender.Dispose();
        }
    }

    public void Close() => _free.Close();
}

/// <summary>One asynchronous send of a block; its completion goes to the <see cref="TcpOutput"/> that started it.</summary>
internal sealed class SocketSender() : SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true)
{
    public TcpOutput? Output { get; set; }

    protected override void OnCompleted(SocketAsyncEventArgs e) => Output!.OnSendCompleted(this);
}

namespace KestrelTcp.Connections;

/// <summary>Replies a handler wants sent to a connection refused by a limit, before it is closed.</summary>
public interface IBusyReply
{
    /// <summary>The bytes to send, e.g. <c>ERR busy\r\n</c>.</summary>
    ReadOnlyMemory<byte> BusyReply { get; }
}

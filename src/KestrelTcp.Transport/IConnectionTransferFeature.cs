namespace KestrelTcp.Transport;

/// <summary>
/// What a connection has moved, and whether the client has ended it: the one place an application
/// reads bytes in and out, last activity and how the connection ended. KestrelTcp's transport
/// answers it from its own read and write paths; over any other transport
/// <see cref="TransferCountingExtensions.UseTransferCounting"/> answers it from a thin wrapper of the
/// connection's pipes. Values are written only by the connection's own read and write paths;
/// readers elsewhere see them at most one read or flush behind.
/// </summary>
public interface IConnectionTransferFeature
{
    /// <summary>Bytes received from the client (counted as they arrive, before the handler sees them).</summary>
    long BytesReceived { get; }

    /// <summary>Bytes written by the handler and flushed (counted at each flush or write).</summary>
    long BytesSent { get; }

    /// <summary>The <see cref="TimeProvider.GetTimestamp"/> of the last receive, or of the connection's start.</summary>
    long LastReceivedTimestamp { get; }

    /// <summary>
    /// True once the client ended its side (FIN), reset the connection, or went away while the
    /// server wrote: a close is then the client's doing.
    /// </summary>
    bool ClientClosed { get; }

    /// <summary>
    /// Shared totals the connection adds its bytes to as it moves them (a listener's, say), or null.
    /// Set before the connection moves any data, typically by the first middleware.
    /// </summary>
    TransferTotals? Totals { get; set; }
}

/// <summary>Running byte totals shared by many connections: added to once per read and once per flush, never per byte.</summary>
public sealed class TransferTotals
{
    private long _received;
    private long _sent;

    /// <summary>Bytes received so far by every connection that adds to these totals.</summary>
    public long BytesReceived => Volatile.Read(ref _received);

    /// <summary>Bytes sent so far by every connection that adds to these totals.</summary>
    public long BytesSent => Volatile.Read(ref _sent);

    internal void AddReceived(long bytes) => Interlocked.Add(ref _received, bytes);

    internal void AddSent(long bytes) => Interlocked.Add(ref _sent, bytes);
}

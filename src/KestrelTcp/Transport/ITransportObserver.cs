namespace KestrelTcp.Transport;

/// <summary>
/// Told by KestrelTcp's transport what one connection moves, so that tracking needs no wrapper
/// around its reader and writer. Calls come from the connection's own read and write paths.
/// </summary>
internal interface ITransportObserver
{
    /// <summary>Bytes received from the client (called as they arrive, before the handler sees them).</summary>
    void OnReceived(int bytes);

    /// <summary>Bytes the handler wrote (advanced or written), sent at the next flush.</summary>
    void OnWritten(int bytes);

    /// <summary>A flush started: what was written so far is on its way.</summary>
    void OnFlushed();

    /// <summary>The client ended its side (FIN) or is gone (a send failed).</summary>
    void OnClientCompleted();
}

namespace KestrelTcp.Connections;

/// <summary>Why a connection was refused: the <c>reason</c> label of <c>kestreltcp_connections_rejected_total</c>.</summary>
internal enum RejectReason
{
    /// <summary>Not refused.</summary>
    None = 0,

    /// <summary>The listener had <c>MaxConnections</c> open.</summary>
    MaxConnections,

    /// <summary>The client's IP address had <c>MaxConnectionsPerClient</c> open.</summary>
    MaxConnectionsPerClient,

    /// <summary>The server was draining for shutdown.</summary>
    ShuttingDown,
}

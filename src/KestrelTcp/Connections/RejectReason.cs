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

    /// <summary>The client is not allowed by the listener's <c>Access</c> rules.</summary>
    AccessDenied,

    /// <summary>Over <c>MaxConnectionRate</c> or <c>MaxConnectionRatePerClient</c>.</summary>
    RateLimited,

    /// <summary>The PROXY protocol header was missing, malformed, late, or sent by an untrusted peer.</summary>
    ProxyProtocol,

    /// <summary>The TLS handshake failed or timed out, the client did not speak TLS, or its certificate was refused.</summary>
    TlsHandshake,
}

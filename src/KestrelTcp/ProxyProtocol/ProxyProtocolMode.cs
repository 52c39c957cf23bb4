namespace KestrelTcp.ProxyProtocol;

/// <summary>Which PROXY protocol header a listener requires in front of every connection (<c>ProxyProtocol:Mode</c>).</summary>
public enum ProxyProtocolMode
{
    /// <summary>No header: the TCP peer is the client. The default.</summary>
    Off,

    /// <summary>The human-readable header (<c>PROXY TCP4 …\r\n</c>), as HAProxy's <c>send-proxy</c> sends it.</summary>
    V1,

    /// <summary>The binary header, as HAProxy's <c>send-proxy-v2</c>, AWS NLB and most cloud load balancers send it.</summary>
    V2,

    /// <summary>Either version, told apart by the first byte (<c>P</c> or the v2 signature's <c>0x0D</c>); a header is still required.</summary>
    Any,
}

using System.Net;

namespace KestrelTcp.ProxyProtocol;

/// <summary>
/// A PROXY protocol header, as a trusted proxy sent it in front of a connection: who the client
/// really is and, for v2, what the proxy knew of the connection (ALPN, SNI, TLS, …).
/// </summary>
public sealed class ProxyHeader
{
    /// <summary>1 for the text header (<c>PROXY …\r\n</c>), 2 for the binary one.</summary>
    public int Version { get; init; }

    /// <summary>
    /// True when the header carries no client to use, so the connection keeps the socket's own
    /// addresses: v1 <c>PROXY UNKNOWN</c>, v2 <c>LOCAL</c> (HAProxy's health checks), and v2 <c>PROXY</c>
    /// with the <c>UNSPEC</c> or <c>AF_UNIX</c> family. <see cref="Source"/> and <see cref="Destination"/>
    /// are then null.
    /// </summary>
    public bool IsLocal { get; init; }

    /// <summary>The client, as the proxy saw it; an IPv4-mapped IPv6 address is given as plain IPv4. Null when <see cref="IsLocal"/>.</summary>
    public IPEndPoint? Source { get; init; }

    /// <summary>The address the client connected to on the proxy; an IPv4-mapped IPv6 address is given as plain IPv4. Null when <see cref="IsLocal"/>.</summary>
    public IPEndPoint? Destination { get; init; }

    /// <summary>The v2 <c>PP2_TYPE_ALPN</c> TLV: the application protocol the proxy negotiated with the client (e.g. <c>h2</c>), or null.</summary>
    public string? ApplicationProtocol { get; init; }

    /// <summary>The v2 <c>PP2_TYPE_AUTHORITY</c> TLV: the host name the client asked for (TLS SNI), or null.</summary>
    public string? Authority { get; init; }

    /// <summary>The v2 <c>PP2_TYPE_UNIQUE_ID</c> TLV: the proxy's opaque id of the connection (at most 128 bytes), or null.</summary>
    public byte[]? UniqueId { get; init; }

    /// <summary>The v2 <c>PP2_TYPE_SSL</c> TLV: how the client reached the proxy over TLS, or null.</summary>
    public ProxySslInfo? Ssl { get; init; }

    /// <summary>The v2 <c>PP2_TYPE_NETNS</c> TLV: the name of the network namespace the proxy accepted the connection in, or null.</summary>
    public string? NetworkNamespace { get; init; }
}

using System.Net;

namespace KestrelTcp.ProxyProtocol;

/// <summary>
/// Set on a connection whose PROXY protocol header was accepted. The connection's
/// <c>RemoteEndPoint</c> and <c>LocalEndPoint</c> are then the header's source and destination
/// (unless <see cref="ProxyHeader.IsLocal"/>); this feature keeps the header and the socket's own
/// endpoints, those of the proxy.
/// </summary>
public interface IProxyProtocolFeature
{
    /// <summary>The header the proxy sent.</summary>
    ProxyHeader Header { get; }

    /// <summary>The TCP peer: the proxy that sent the header (the connection's remote endpoint before the header).</summary>
    EndPoint? Peer { get; }

    /// <summary>The socket's local endpoint (the connection's local endpoint before the header).</summary>
    EndPoint? PeerLocal { get; }
}

internal sealed class ProxyProtocolFeature(ProxyHeader header, EndPoint? peer, EndPoint? peerLocal) : IProxyProtocolFeature
{
    public ProxyHeader Header { get; } = header;

    public EndPoint? Peer { get; } = peer;

    public EndPoint? PeerLocal { get; } = peerLocal;
}

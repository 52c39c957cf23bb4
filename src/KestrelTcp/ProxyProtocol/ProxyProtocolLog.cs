using System.Net;

namespace KestrelTcp.ProxyProtocol;

/// <summary>
/// The PROXY protocol's log events (ids 100-109). Kestrel's scope carries the connection id. A refusal
/// is the client's (or its proxy's) doing, not ours: Debug, and counted by the caller.
/// </summary>
internal static partial class ProxyProtocolLog
{
    [LoggerMessage(EventId = 100, EventName = "ProxyPeerUntrusted", Level = LogLevel.Debug,
        Message = "Refused a connection from {Peer}: not one of ProxyProtocol:TrustedProxies")]
    public static partial void PeerUntrusted(ILogger logger, EndPoint? peer);

    [LoggerMessage(EventId = 101, EventName = "ProxyHeaderRefused", Level = LogLevel.Debug,
        Message = "Refused a connection from {Peer}: malformed PROXY protocol header ({Reason})")]
    public static partial void HeaderRefused(ILogger logger, EndPoint? peer, string? reason);

    [LoggerMessage(EventId = 102, EventName = "ProxyHeaderIncomplete", Level = LogLevel.Debug,
        Message = "Refused a connection from {Peer}: it ended after {Received} byte(s), before the PROXY protocol header was complete")]
    public static partial void HeaderIncomplete(ILogger logger, EndPoint? peer, long received);

    [LoggerMessage(EventId = 103, EventName = "ProxyHeaderTimedOut", Level = LogLevel.Debug,
        Message = "Refused a connection from {Peer}: no complete PROXY protocol header within {HeaderTimeout} ({Received} byte(s) received)")]
    public static partial void HeaderTimedOut(ILogger logger, EndPoint? peer, TimeSpan headerTimeout, long received);

    [LoggerMessage(EventId = 104, EventName = "ProxyHeaderReadFailed", Level = LogLevel.Debug,
        Message = "Refused a connection from {Peer}: reading the PROXY protocol header failed")]
    public static partial void HeaderReadFailed(ILogger logger, Exception exception, EndPoint? peer);

    [LoggerMessage(EventId = 105, EventName = "ProxyHeaderReadCanceled", Level = LogLevel.Debug,
        Message = "Refused a connection from {Peer}: reading the PROXY protocol header was canceled")]
    public static partial void HeaderReadCanceled(ILogger logger, EndPoint? peer);

    [LoggerMessage(EventId = 106, EventName = "ProxyHeaderAccepted", Level = LogLevel.Debug,
        Message = "PROXY protocol v{Version} header from {Peer}: client {Client}, server {Server}")]
    public static partial void HeaderAccepted(ILogger logger, int version, EndPoint? peer, EndPoint? client, EndPoint? server);

    [LoggerMessage(EventId = 107, EventName = "ProxyHeaderLocal", Level = LogLevel.Debug,
        Message = "PROXY protocol v{Version} header from {Peer} without a client (LOCAL, UNKNOWN, UNSPEC or AF_UNIX): the socket's addresses stay")]
    public static partial void HeaderLocal(ILogger logger, int version, EndPoint? peer);
}

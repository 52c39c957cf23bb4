using System.Net;

namespace KestrelTcp.Transport;

/// <summary>
/// An endpoint for KestrelTcp's transport to bind: <see cref="TcpTransportFactory.CanBind"/> takes
/// these and leaves every other endpoint (the HTTP port, Unix sockets) to the transports registered
/// before it. <see cref="IPAddress.IPv6Any"/> means every address, IPv6 and IPv4 (falling back to
/// IPv4 alone where the host has no IPv6), as Kestrel's <c>ListenAnyIP</c>.
/// </summary>
public sealed class TcpListenEndPoint(IPAddress address, int port) : IPEndPoint(address, port);

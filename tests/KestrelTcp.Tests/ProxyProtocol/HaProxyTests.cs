using System.Net;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.ProxyProtocol;

/// <summary>
/// A real HAProxy (<see cref="HaProxy"/>) in front of KestrelTcp, as operators run it: <c>send-proxy</c>,
/// <c>send-proxy-v2</c> and its <c>check-send-proxy</c> health checks. What the tests check is that
/// KestrelTcp sees the client HAProxy saw, not HAProxy.
/// </summary>
public class HaProxyTests
{
    private const string Banner = "Hello {RemoteAddress}:{RemotePort}, you reached {LocalAddress}:{LocalPort}\r\n";

    [Theory]
    [InlineData("send-proxy", "V1")]
    [InlineData("send-proxy-v2", "V2")]
    [InlineData("send-proxy-v2", "Any")]
    public async Task SendProxy_InFrontOfGreeting_BannerShowsTheRealClient(string sendProxy, string mode)
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting",
            ("ProxyProtocol:Mode", mode), ("ProxyProtocol:TrustedProxies:0", "127.0.0.1"), ("Options:Banner", Banner)));
        await using var haproxy = await HaProxy.StartAsync(server.Port("greeting"), sendProxy);

        await using var client = await TcpTestClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, haproxy.Port));
        var banner = await client.ReadLineAsync();

        // The client's own port, and HAProxy's frontend as the destination: not HAProxy's outgoing socket.
        Assert.Equal($"Hello {client.Socket.LocalEndPoint}, you reached 127.0.0.1:{haproxy.Port}\r\n", banner);
        await client.SendAsync("alice\n");
        Assert.Equal("Hello, alice!\r\n", await client.ReadLineAsync());
        Assert.Equal(0, await server.MetricAsync("kestreltcp_connections_rejected_total", ("listener", "greeting"), ("reason", "proxy_protocol")));
    }

    [Fact]
    public async Task SendProxyV2_InFrontOfEcho_ConnectionsListsClientAndProxy()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo",
            ("ProxyProtocol:Mode", "V2"), ("ProxyProtocol:TrustedProxies:0", "127.0.0.0/8")));
        await using var haproxy = await HaProxy.StartAsync(server.Port("echo"), "send-proxy-v2");

        await using var client = await TcpTestClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, haproxy.Port));
        var payload = new byte[100_000];
        Random.Shared.NextBytes(payload);
        var read = client.ReadExactlyAsync(payload.Length, TimeSpan.FromSeconds(30));
        await client.SendAsync(payload);
        Assert.Equal(payload, await read);

        var connection = (await server.JsonAsync("/connections")).GetProperty("listeners")[0].GetProperty("connections")[0];
        Assert.Equal(client.Socket.LocalEndPoint!.ToString(), connection.GetProperty("remote").GetString());
        var peer = IPEndPoint.Parse(connection.GetProperty("peer").GetString()!);
        Assert.Equal(IPAddress.Loopback, peer.Address);
        Assert.NotEqual(((IPEndPoint)client.Socket.LocalEndPoint!).Port, peer.Port);
    }

    [Fact]
    public async Task CheckSendProxy_HealthChecksSendLocal_ServerUpAndChecksServed()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo",
            ("ProxyProtocol:Mode", "V2"), ("ProxyProtocol:TrustedProxies:0", "127.0.0.1")));
        await using var haproxy = await HaProxy.StartAsync(server.Port("echo"), "send-proxy-v2 check check-send-proxy inter 100ms rise 2 fall 1");

        // HAProxy marks a server UP after `rise` successful checks; each check is a v2 LOCAL header, then a close.
        await TestServer.WaitUntilAsync(async () => await haproxy.ServerStatusAsync() == "UP", TimeSpan.FromSeconds(20), "HAProxy to see the server UP");
        await TestServer.WaitUntilAsync(async () => await server.MetricAsync("kestreltcp_connections_accepted_total", ("listener", "echo"), ("handler", "Echo")) >= 2,
            because: "the health checks to be served");
        Assert.Equal(0, await server.MetricAsync("kestreltcp_connections_rejected_total", ("listener", "echo"), ("reason", "proxy_protocol")));

        // Traffic through the same HAProxy still carries the real client.
        await using var client = await TcpTestClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, haproxy.Port));
        await client.SendAsync("ping");
        Assert.Equal("ping"u8.ToArray(), await client.ReadExactlyAsync(4));
    }
}

using System.Net;
using System.Text;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace KestrelTcp.Tests.Transport;

/// <summary>Which transport serves what, in the real server: the TCP listeners on KestrelTcp's, the HTTP port on Kestrel's.</summary>
public class TransportSelectionTests
{
    [Theory]
    [InlineData(null, 2)]
    [InlineData("KestrelTcp", 2)]
    [InlineData("kestrel", 0)]
    public async Task EitherTransport_SameBytesCountedAndCloseReasons_HttpServedAlongside(string? kind, int boundByOurs)
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"),
            TestServer.Listener("greeting", "Greeting"),
            new() { ["KestrelTcp:Transport:Kind"] = kind });

        Assert.Equal(boundByOurs, server.Services.GetRequiredService<TcpTransportFactory>().Bound);
        await using (var client = await server.ConnectAsync("echo"))
        {
            await client.SendAsync("ping\n");
            Assert.Equal("ping\n", Encoding.ASCII.GetString(await client.ReadExactlyAsync(5)));
        }

        await using (var client = await server.ConnectAsync("greeting"))
        {
            await client.SendAsync("quit\n");
            Assert.StartsWith("Welcome!", await client.ReadToEndTextAsync(TimeSpan.FromSeconds(5)));
        }

        var ready = await server.Http.GetAsync(new Uri("/health/ready", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync("kestreltcp_connections_closed_total", ("listener", "echo"), ("reason", "client")));
        Assert.Equal(5, await server.MetricAsync("kestreltcp_bytes_received_total", ("listener", "echo")));
        Assert.Equal(5, await server.MetricAsync("kestreltcp_bytes_sent_total", ("listener", "echo")));
    }
}

using System.Net;
using System.Text;
using System.Text.Json;
using KestrelTcp.Diagnostics;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Diagnostics;

public class ConnectionsEndpointTests
{
    [Fact]
    public async Task Connections_OpenConnections_ListedWithTheirBytesAndClient()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo"), TestServer.Listener("time", "Time"));
        // Client i connects and sends i bytes at i seconds on the server's clock; the view is read at 3.5 s.
        var clients = new List<TcpTestClient>();
        for (var i = 1; i <= 3; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            var client = await server.ConnectAsync("echo");
            await client.SendAsync(new string('x', i));
            await client.ReadExactlyAsync(i);
            clients.Add(client);
        }

        clock.Advance(TimeSpan.FromSeconds(0.5));
        var view = await server.JsonAsync("/connections");
        var echo = Listener(view, "echo");
        Assert.Equal("Echo", echo.GetProperty("handler").GetString());
        Assert.Equal($"tcp://127.0.0.1:{server.Port("echo")}", echo.GetProperty("endpoint").GetString());
        Assert.Equal(3, echo.GetProperty("activeConnections").GetInt64());
        Assert.Equal(3, echo.GetProperty("acceptedTotal").GetInt64());
        Assert.Equal(6, echo.GetProperty("bytesReceivedTotal").GetInt64());
        Assert.Equal(6, echo.GetProperty("bytesSentTotal").GetInt64());
        Assert.Equal(3, echo.GetProperty("listed").GetInt32());
        Assert.False(echo.GetProperty("truncated").GetBoolean());
        Assert.All(echo.GetProperty("closedTotal").EnumerateObject(), p => Assert.Equal(0, p.Value.GetInt64()));
        Assert.Equal(["client", "server", "idle_timeout", "line_too_long", "shutdown", "error"], echo.GetProperty("closedTotal").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["max_connections", "max_connections_per_client", "shutting_down", "access_denied", "rate_limited", "proxy_protocol", "tls_handshake"], echo.GetProperty("rejectedTotal").EnumerateObject().Select(p => p.Name));

        var listed = echo.GetProperty("connections").EnumerateArray().ToList();
        Assert.Equal(3, listed.Count);
        Assert.Equal(3, listed.Select(c => c.GetProperty("id").GetString()).Distinct().Count());
        foreach (var client in clients)
        {
            var remote = ((IPEndPoint)client.Socket.LocalEndPoint!).ToString();
            var entry = Assert.Single(listed, c => c.GetProperty("remote").GetString() == remote);
            var sent = clients.IndexOf(client) + 1;
            Assert.Equal(sent, entry.GetProperty("bytesReceived").GetInt64());
            Assert.Equal(sent, entry.GetProperty("bytesSent").GetInt64());
            Assert.False(string.IsNullOrEmpty(entry.GetProperty("id").GetString()));
            Assert.Equal(JsonValueKind.Null, entry.GetProperty("peer").ValueKind); // no PROXY header: the peer is the client
            Assert.Equal(clock.Start.AddSeconds(sent), entry.GetProperty("connectedAt").GetDateTimeOffset());
            Assert.Equal(3.5 - sent, entry.GetProperty("idleSeconds").GetDouble());
        }

        var time = Listener(view, "time");
        Assert.Equal(0, time.GetProperty("activeConnections").GetInt64());
        Assert.Empty(time.GetProperty("connections").EnumerateArray());

        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }

        await server.WaitForQuietAsync();
        echo = Listener(await server.JsonAsync("/connections"), "echo");
        Assert.Empty(echo.GetProperty("connections").EnumerateArray());
        Assert.Equal(3, echo.GetProperty("closedTotal").GetProperty("client").GetInt64());
    }

    [Fact]
    public async Task Connections_IdleConnection_IdleSecondsGrowsAndResetsOnData()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo"));
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("a");
        await client.ReadExactlyAsync(1);
        Assert.Equal(0, Idle(await server.JsonAsync("/connections")));
        clock.Advance(TimeSpan.FromSeconds(2.25));
        Assert.Equal(2.25, Idle(await server.JsonAsync("/connections")));
        clock.Advance(TimeSpan.FromSeconds(0.5));
        Assert.Equal(2.75, Idle(await server.JsonAsync("/connections")));

        await client.SendAsync("b");
        await client.ReadExactlyAsync(1);
        Assert.Equal(0, Idle(await server.JsonAsync("/connections")));
        clock.Advance(TimeSpan.FromSeconds(0.125));
        Assert.Equal(0.125, Idle(await server.JsonAsync("/connections")));

        static double Idle(JsonElement view) => Listener(view, "echo").GetProperty("connections")[0].GetProperty("idleSeconds").GetDouble();
    }

    [Fact]
    public async Task Connections_MoreThanTheCapOpen_ListsAtMost1000ButCountsAll()
    {
        const int Open = ManagementEndpoints.MaxListedConnections + 24;
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var clients = new List<TcpTestClient>(Open);
        try
        {
            for (var batch = 0; batch < Open; batch += 64)
            {
                clients.AddRange(await Task.WhenAll(Enumerable.Range(0, Math.Min(64, Open - batch)).Select(_ => server.ConnectAsync("echo"))));
            }

            await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("echo")!.ActiveConnections == Open), because: $"{Open} accepted");
            var response = await server.Http.GetAsync("/connections");
            var body = await response.Content.ReadAsStringAsync();
            var echo = Listener(JsonDocument.Parse(body).RootElement, "echo");
            Assert.Equal(Open, echo.GetProperty("activeConnections").GetInt64());
            Assert.Equal(ManagementEndpoints.MaxListedConnections, echo.GetProperty("listed").GetInt32());
            Assert.True(echo.GetProperty("truncated").GetBoolean());
            var listed = echo.GetProperty("connections").EnumerateArray().ToList();
            Assert.Equal(ManagementEndpoints.MaxListedConnections, listed.Count);
            Assert.Equal(listed.Count, listed.Select(c => c.GetProperty("id").GetString()).Distinct().Count());
            // Bounded: about 250 bytes per listed connection, whatever the number open.
            Assert.InRange(Encoding.UTF8.GetByteCount(body), 1, 400 * ManagementEndpoints.MaxListedConnections);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }

        await server.WaitForQuietAsync();
    }

    internal static JsonElement Listener(JsonElement view, string name) =>
        view.GetProperty("listeners").EnumerateArray().Single(l => l.GetProperty("name").GetString() == name);
}

using System.Text.Json;
using KestrelTcp.Dashboard;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Diagnostics;

public class HealthEndpointTests
{
    [Fact]
    public async Task Health_PerListener_NameHandlerEndpointStateAndActiveConnections()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"), TestServer.Listener("time", "Time"));
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("x");
        await client.ReadExactlyAsync(1);

        var health = await server.JsonAsync("/health");
        Assert.Equal("Healthy", health.GetProperty("status").GetString());
        var echo = ConnectionsEndpointTests.Listener(health, "echo");
        Assert.Equal("Echo", echo.GetProperty("handler").GetString());
        Assert.Equal($"tcp://127.0.0.1:{server.Port("echo")}", echo.GetProperty("endpoint").GetString());
        Assert.Equal("Listening", echo.GetProperty("state").GetString());
        Assert.Equal(1, echo.GetProperty("activeConnections").GetInt64());
        Assert.Equal(0, ConnectionsEndpointTests.Listener(health, "time").GetProperty("activeConnections").GetInt64());
    }

    [Fact]
    public async Task HealthMetricsAndConnections_AtAQuietMoment_Agree()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"), TestServer.Listener("time", "Time"), TestServer.Listener("greeting", "Greeting", ("MaxLineLength", "8")));

        var open = new List<TcpTestClient>();
        for (var i = 0; i < 3; i++)
        {
            var client = await server.ConnectAsync("echo");
            await client.SendAsync("hello");
            await client.ReadExactlyAsync(5);
            open.Add(client);
        }

        for (var i = 0; i < 4; i++)
        {
            await using var time = await server.ConnectAsync("time");
            await time.ReadToEndAsync();
        }

        await using (var greeting = await server.ConnectAsync("greeting"))
        {
            await greeting.ReadLineAsync();
            await greeting.SendAsync("far too long a line\n");
            await greeting.ReadToEndAsync();
        }

        var greetingOpen = await server.ConnectAsync("greeting");
        await greetingOpen.ReadLineAsync();
        open.Add(greetingOpen);

        // Quiet: every close recorded, the open ones idle.
        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Listeners.All(l => l.ActiveConnections == l.OpenCount)), because: "closes to be recorded");

        var metrics = await MetricsSnapshot.ScrapeAsync(server);
        var connections = await server.JsonAsync("/connections");
        var health = await server.JsonAsync("/health");
        foreach (var (name, handler, active) in new[] { ("echo", "Echo", 3), ("time", "Time", 0), ("greeting", "Greeting", 1) })
        {
            var view = ConnectionsEndpointTests.Listener(connections, name);
            Assert.Equal(active, metrics.Active(name, handler));
            Assert.Equal(active, view.GetProperty("activeConnections").GetInt64());
            Assert.Equal(active, view.GetProperty("connections").GetArrayLength());
            Assert.Equal(active, ConnectionsEndpointTests.Listener(health, name).GetProperty("activeConnections").GetInt64());

            Assert.Equal(metrics.Accepted(name, handler), view.GetProperty("acceptedTotal").GetInt64());
            Assert.Equal(metrics.BytesReceived(name), view.GetProperty("bytesReceivedTotal").GetInt64());
            Assert.Equal(metrics.BytesSent(name), view.GetProperty("bytesSentTotal").GetInt64());
            foreach (var reason in view.GetProperty("closedTotal").EnumerateObject())
            {
                Assert.Equal(metrics.Closed(name, reason.Name), reason.Value.GetInt64());
            }

            foreach (var reason in view.GetProperty("rejectedTotal").EnumerateObject())
            {
                Assert.Equal(metrics.Rejected(name, reason.Name), reason.Value.GetInt64());
            }

            // The listener's byte totals are its closed connections' plus the open ones listed.
            Assert.True(view.GetProperty("bytesReceivedTotal").GetInt64() >= Sum(view, "bytesReceived"));
            Assert.Equal(metrics.Accepted(name, handler) - metrics.ClosedTotal(name), active);
        }

        Assert.Equal(4, metrics.Closed("time", "server"));
        Assert.Equal(1, metrics.Closed("greeting", "line_too_long"));
        Assert.Equal(15, metrics.BytesReceived("echo"));
        Assert.Equal(15, Sum(ConnectionsEndpointTests.Listener(connections, "echo"), "bytesSent"));

        foreach (var client in open)
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task HealthConnectionsAndDashboardData_PropertyNames_InTheirOrder()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("x");
        await client.ReadExactlyAsync(1);

        var healthBody = await server.Http.GetStringAsync("/health");
        var health = JsonDocument.Parse(healthBody).RootElement;
        Assert.Equal(["status", "state", "http", "listeners"], Names(health));
        Assert.Equal(["name", "handler", "endpoint", "state", "activeConnections"], Names(health.GetProperty("listeners")[0]));

        var connectionsBody = await server.Http.GetStringAsync("/connections");
        var connections = JsonDocument.Parse(connectionsBody).RootElement;
        Assert.Equal(["listeners"], Names(connections));
        var listener = connections.GetProperty("listeners")[0];
        Assert.Equal(
            ["name", "handler", "endpoint", "activeConnections", "acceptedTotal", "rejectedTotal", "closedTotal",
             "bytesReceivedTotal", "bytesSentTotal", "listed", "truncated", "connections"],
            Names(listener));
        Assert.Equal(["id", "remote", "peer", "connectedAt", "bytesReceived", "bytesSent", "idleSeconds"], Names(listener.GetProperty("connections")[0]));

        var dataBody = await server.Http.GetStringAsync(DashboardEndpoints.DataPath);
        var data = JsonDocument.Parse(dataBody).RootElement;
        Assert.Equal(["server", "history", "maxListedConnections", "listeners"], Names(data));
        Assert.Equal(
            ["version", "machineName", "state", "now", "startedAt", "uptimeSeconds", "workingSetBytes", "managedHeapBytes",
             "transport", "inlineScheduling", "http"],
            Names(data.GetProperty("server")));
        Assert.Equal(["intervalSeconds", "capacity"], Names(data.GetProperty("history")));
        var panel = data.GetProperty("listeners")[0];
        Assert.Equal(
            ["name", "handler", "endpoint", "state", "activeConnections", "peakConnections", "maxConnections", "acceptedTotal",
             "acceptedPerSecond", "rejectedTotal", "closedTotal", "bytesReceivedTotal", "bytesSentTotal", "bytesReceivedPerSecond",
             "bytesSentPerSecond", "history", "openConnections", "listed", "truncated", "connections"],
            Names(panel));
        Assert.Equal(["open", "acceptedPerSecond", "bytesReceivedPerSecond", "bytesSentPerSecond"], Names(panel.GetProperty("history")));
        Assert.Equal(["id", "remote", "peer", "connectedSeconds", "bytesReceived", "bytesSent"], Names(panel.GetProperty("connections")[0]));

        // /health and /connections are indented for people and scripts; the dashboard's poll is compact.
        Assert.StartsWith("{\n  \"status\": ", healthBody.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.StartsWith("{\n  \"listeners\": [", connectionsBody.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.StartsWith("{\"server\":{\"version\":", dataBody, StringComparison.Ordinal);

        static string[] Names(JsonElement element) => [.. element.EnumerateObject().Select(p => p.Name)];
    }

    private static long Sum(JsonElement listener, string property) =>
        listener.GetProperty("connections").EnumerateArray().Sum(c => c.GetProperty(property).GetInt64());
}

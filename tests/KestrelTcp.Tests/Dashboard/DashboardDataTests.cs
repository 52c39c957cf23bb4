using System.Net;
using System.Reflection;
using System.Text.Json;
using KestrelTcp.Dashboard;
using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using static KestrelTcp.Tests.Dashboard.DashboardFigures;

namespace KestrelTcp.Tests.Dashboard;

/// <summary>GET /dashboard/data on the real server: the figures the page shows, its history and its open connections.</summary>
public class DashboardDataTests
{
    [Fact]
    public async Task Data_OnTheServersClock_OneSampleASecondWithItsRates()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:00")));

        // The baseline, taken when the host started.
        var echo = Listener(await server.DataAsync(), "echo");
        Assert.Equal([0L], Longs(echo.GetProperty("history").GetProperty("open")));

        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync(new string('x', 1500));
        await client.ReadExactlyAsync(1500);
        clock.Advance(DashboardSampler.Interval);

        echo = Listener(await server.DataAsync(), "echo");
        var history = echo.GetProperty("history");
        Assert.Equal([0L, 1], Longs(history.GetProperty("open")));
        Assert.Equal([0.0, 1], Doubles(history.GetProperty("acceptedPerSecond")));
        Assert.Equal([0.0, 1500], Doubles(history.GetProperty("bytesReceivedPerSecond")));
        Assert.Equal([0.0, 1500], Doubles(history.GetProperty("bytesSentPerSecond")));
        Assert.Equal(1, echo.GetProperty("acceptedPerSecond").GetDouble());
        Assert.Equal(1500, echo.GetProperty("bytesReceivedPerSecond").GetDouble());
        Assert.Equal(1500, echo.GetProperty("bytesSentPerSecond").GetDouble());

        // A quiet second: the rates fall back to zero, the open connection stays on the chart.
        clock.Advance(DashboardSampler.Interval);
        echo = Listener(await server.DataAsync(), "echo");
        Assert.Equal([0L, 1, 1], Longs(echo.GetProperty("history").GetProperty("open")));
        Assert.Equal(0, echo.GetProperty("bytesReceivedPerSecond").GetDouble());
        Assert.Equal(0, echo.GetProperty("acceptedPerSecond").GetDouble());

        // Far past five minutes the ring holds its 300 newest samples and no more.
        for (var i = 0; i < DashboardSampler.Capacity + 50; i++)
        {
            clock.Advance(DashboardSampler.Interval);
        }

        var data = await server.DataAsync();
        Assert.Equal(1, data.GetProperty("history").GetProperty("intervalSeconds").GetDouble());
        Assert.Equal(300, data.GetProperty("history").GetProperty("capacity").GetInt32());
        history = Listener(data, "echo").GetProperty("history");
        foreach (var series in (string[])["open", "acceptedPerSecond", "bytesReceivedPerSecond", "bytesSentPerSecond"])
        {
            Assert.Equal(DashboardSampler.Capacity, history.GetProperty(series).GetArrayLength());
        }

        Assert.All(Longs(history.GetProperty("open")), open => Assert.Equal(1, open));
    }

    [Fact]
    public async Task Data_AfterConnectionsComeAndGo_EveryFigureMatchesMetrics()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"), TestServer.Listener("one", "Echo", ("MaxConnections", "1")), TestServer.Listener("time", "Time"));

        var clients = new List<TcpTestClient>();
        for (var i = 1; i <= 3; i++)
        {
            var client = await server.ConnectAsync("echo");
            await client.SendAsync(new string('e', 100 * i));
            await client.ReadExactlyAsync(100 * i);
            clients.Add(client);
        }

        await using var holder = await server.ConnectAsync("one");
        await holder.SendAsync("1");
        await holder.ReadExactlyAsync(1);
        await using (var refused = await server.ConnectAsync("one"))
        {
            Assert.Empty(await refused.ReadToEndAsync());
        }

        for (var i = 0; i < 4; i++)
        {
            await using var time = await server.ConnectAsync("time");
            Assert.NotEmpty(await time.ReadToEndAsync());
        }

        await clients[0].DisposeAsync();
        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("echo")!.OpenCount == 2 && server.Runtime.Find("time")!.OpenCount == 0),
            because: "the closed connections recorded");

        var data = await server.DataAsync();
        var metrics = await MetricsSnapshot.ScrapeAsync(server);
        foreach (var name in (string[])["echo", "one", "time"])
        {
            AssertMatchesMetrics(Listener(data, name), metrics);
        }

        var echo = Listener(data, "echo");
        Assert.Equal(2, echo.GetProperty("activeConnections").GetInt64());
        Assert.Equal(3, echo.GetProperty("peakConnections").GetInt64());
        Assert.Equal(3, echo.GetProperty("acceptedTotal").GetInt64());
        Assert.Equal(600, echo.GetProperty("bytesReceivedTotal").GetInt64());
        Assert.Equal(1, echo.GetProperty("closedTotal").GetProperty("client").GetInt64());
        Assert.Equal(10_000, echo.GetProperty("maxConnections").GetInt32());
        Assert.Equal(1, Listener(data, "one").GetProperty("rejectedTotal").GetProperty("max_connections").GetInt64());
        Assert.Equal(1, Listener(data, "one").GetProperty("maxConnections").GetInt32());
        Assert.Equal(4, Listener(data, "time").GetProperty("closedTotal").GetProperty("server").GetInt64());
        Assert.Equal(1, Listener(data, "time").GetProperty("peakConnections").GetInt64());

        foreach (var client in clients.Skip(1))
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Data_ListenerAndServer_DescribedAsHealthAndConnectionsDo()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock,
            TestServer.Listener("echo", "Echo", ("MaxConnections", "0")), TestServer.Listener("greeting", "Greeting"));
        clock.Advance(TimeSpan.FromSeconds(90));

        var data = await server.DataAsync();
        var health = await server.JsonAsync("/health");
        foreach (var listener in health.GetProperty("listeners").EnumerateArray())
        {
            var view = Listener(data, listener.GetProperty("name").GetString()!);
            Assert.Equal(listener.GetProperty("handler").GetString(), view.GetProperty("handler").GetString());
            Assert.Equal(listener.GetProperty("endpoint").GetString(), view.GetProperty("endpoint").GetString());
            Assert.Equal("listening", view.GetProperty("state").GetString());
        }

        Assert.Equal(JsonValueKind.Null, Listener(data, "echo").GetProperty("maxConnections").ValueKind); // 0: unlimited

        var facts = data.GetProperty("server");
        Assert.Equal(typeof(DashboardEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion,
            facts.GetProperty("version").GetString());
        Assert.Equal(Environment.MachineName, facts.GetProperty("machineName").GetString());
        Assert.Equal("ready", facts.GetProperty("state").GetString());
        Assert.Equal(90, facts.GetProperty("uptimeSeconds").GetDouble());
        Assert.Equal(TestClock.Epoch, facts.GetProperty("startedAt").GetDateTimeOffset());
        Assert.Equal(TestClock.Epoch.AddSeconds(90), facts.GetProperty("now").GetDateTimeOffset());
        Assert.InRange(facts.GetProperty("workingSetBytes").GetInt64(), 1, long.MaxValue);
        Assert.InRange(facts.GetProperty("managedHeapBytes").GetInt64(), 1, long.MaxValue);
        Assert.Equal("KestrelTcp", facts.GetProperty("transport").GetString());
        Assert.Equal($"http://127.0.0.1:{server.Runtime.HttpPort}", facts.GetProperty("http").GetString());
        Assert.Equal(ManagementEndpoints.MaxListedConnections, data.GetProperty("maxListedConnections").GetInt32());
    }

    [Fact]
    public async Task Data_OpenConnections_ListedAsConnectionsListsThem()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo"));
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
        var echo = Listener(await server.DataAsync(), "echo");
        var connections = Listener(await server.JsonAsync("/connections"), "echo").GetProperty("connections").EnumerateArray().ToList();
        var listed = echo.GetProperty("connections").EnumerateArray().ToList();
        Assert.Equal(3, echo.GetProperty("openConnections").GetInt32());
        Assert.Equal(3, echo.GetProperty("listed").GetInt32());
        Assert.False(echo.GetProperty("truncated").GetBoolean());
        Assert.Equal(connections.Select(c => c.GetProperty("id").GetString()), listed.Select(c => c.GetProperty("id").GetString()));
        foreach (var client in clients)
        {
            var sent = clients.IndexOf(client) + 1;
            var entry = Assert.Single(listed, c => c.GetProperty("remote").GetString() == ((IPEndPoint)client.Socket.LocalEndPoint!).ToString());
            Assert.Equal(sent, entry.GetProperty("bytesReceived").GetInt64());
            Assert.Equal(sent, entry.GetProperty("bytesSent").GetInt64());
            Assert.Equal(3.5 - sent, entry.GetProperty("connectedSeconds").GetDouble());
            Assert.Equal(JsonValueKind.Null, entry.GetProperty("peer").ValueKind);
        }

        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Data_MoreThanTheCapOpen_ListsAtMost1000AsConnectionsDoes()
    {
        const int Open = ManagementEndpoints.MaxListedConnections + 10;
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var clients = new List<TcpTestClient>(Open);
        try
        {
            for (var batch = 0; batch < Open; batch += 64)
            {
                clients.AddRange(await Task.WhenAll(Enumerable.Range(0, Math.Min(64, Open - batch)).Select(_ => server.ConnectAsync("echo"))));
            }

            await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("echo")!.OpenCount == Open), because: $"{Open} open");
            var echo = Listener(await server.DataAsync(), "echo");
            Assert.Equal(Open, echo.GetProperty("activeConnections").GetInt64());
            Assert.Equal(Open, echo.GetProperty("openConnections").GetInt32());
            Assert.Equal(ManagementEndpoints.MaxListedConnections, echo.GetProperty("listed").GetInt32());
            Assert.Equal(ManagementEndpoints.MaxListedConnections, echo.GetProperty("connections").GetArrayLength());
            Assert.True(echo.GetProperty("truncated").GetBoolean());
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

    [Fact]
    public async Task Data_DuringTheDrain_EveryListenerDrainingAndTheSamplerStillRuns()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(
            [TestServer.Listener("hold", HoldHandler.Name), TestServer.Listener("echo", "Echo"), new() { ["KestrelTcp:Shutdown:DrainTimeout"] = "00:01:00" }],
            services => services.AddSingleton<TimeProvider>(clock).AddKestrelTcpHandler<HoldHandler>(HoldHandler.Name));
        var client = await server.ConnectAsync("hold");
        await server.OpenConnectionsAsync("hold");

        var stopped = server.RequestStop();
        await TestServer.WaitUntilAsync(async () => (await server.DataAsync()).GetProperty("listeners").EnumerateArray()
            .All(l => l.GetProperty("state").GetString() == "draining"), because: "every listener draining");

        var data = await server.DataAsync();
        Assert.Equal("shutting_down", data.GetProperty("server").GetProperty("state").GetString());
        var samples = Listener(data, "hold").GetProperty("history").GetProperty("open").GetArrayLength();
        clock.Advance(DashboardSampler.Interval);
        var hold = Listener(await server.DataAsync(), "hold");
        Assert.Equal(samples + 1, hold.GetProperty("history").GetProperty("open").GetArrayLength());
        Assert.Equal(1, hold.GetProperty("activeConnections").GetInt64());

        await client.DisposeAsync();
        await server.RunClockUntilAsync(stopped);
    }
}

using System.Net;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Hosting;

public class HealthEndpointTests
{
    [Fact]
    public async Task Health_ListenersOnPortZero_ReportRealBoundEndpoints()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"),
            TestServer.Listener("time", "Time"),
            TestServer.Listener("greeting", "Greeting"));

        var health = await server.JsonAsync("/health");
        Assert.Equal("Healthy", health.GetProperty("status").GetString());
        var listeners = health.GetProperty("listeners").EnumerateArray().ToDictionary(l => l.GetProperty("name").GetString()!);
        Assert.Equal(["echo", "greeting", "time"], listeners.Keys.Order());
        foreach (var (name, handler) in new[] { ("echo", "Echo"), ("time", "Time"), ("greeting", "Greeting") })
        {
            var listener = listeners[name];
            Assert.Equal(handler, listener.GetProperty("handler").GetString());
            Assert.Equal($"tcp://127.0.0.1:{server.Port(name)}", listener.GetProperty("endpoint").GetString());
            Assert.NotEqual(0, server.Port(name));
            Assert.Equal("Listening", listener.GetProperty("state").GetString());
            Assert.Equal(0, listener.GetProperty("activeConnections").GetInt32());
        }
    }

    [Fact]
    public async Task LiveAndReady_Running_200Healthy()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        foreach (var path in new[] { "/health/live", "/health/ready" })
        {
            var response = await server.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Ready_ShutdownBegun_503WhileLiveStays200()
    {
        // On a TestClock the Shutdown:Delay lasts until the test moves the clock: every check below is inside it.
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock,
            new Dictionary<string, string?> { ["KestrelTcp:Shutdown:Delay"] = "00:00:05" },
            TestServer.Listener("echo", "Echo"));
        var delaying = clock.WhenArmed(TimeSpan.FromSeconds(5));
        var stopped = server.RequestStop();
        await delaying;

        var ready = await server.Http.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal("Unhealthy", await ready.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health/live")).StatusCode);
        var health = await server.JsonAsync("/health");
        Assert.Equal("Unhealthy", health.GetProperty("status").GetString());
        Assert.Equal("ShuttingDown", health.GetProperty("state").GetString());
        Assert.Equal("Listening", health.GetProperty("listeners")[0].GetProperty("state").GetString());

        // During Shutdown:Delay existing listeners still serve.
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("still serving");
        Assert.Equal("still serving"u8.ToArray(), await client.ReadExactlyAsync(13));
        await server.RunClockUntilAsync(stopped);
        Assert.Empty(await client.ReadToEndAsync());
    }
}

using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Diagnostics;

public class HealthEndpointTests
{
    [Fact]
    public async Task Health_OnlyConfiguredListeners_Listed()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var health = await server.JsonAsync("/health");
        Console.WriteLine(health);
    }
}

using System.Net;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Connections;

/// <summary><c>MaxConnectionRate</c> and <c>MaxConnectionRatePerClient</c>: the buckets (unit) and refusals over real sockets.</summary>
public class ConnectionRateTests
{
    private static readonly IPAddress A = IPAddress.Parse("192.0.2.1");
    private static readonly IPAddress B = IPAddress.Parse("192.0.2.2");
    private static readonly IPAddress C = IPAddress.Parse("192.0.2.3");

    [Fact]
    public void TryAcquire_ListenerRate_ServesOneSecondsWorthAtOnceThenRefuses()
    {
        var rates = new ConnectionRateLimiter(new ConnectionLimits { MaxConnectionRate = 5 }, TimeProvider.System);

        var served = Enumerable.Range(0, 8).Count(_ => rates.TryAcquire(A));

        Assert.Equal(5, served);
    }

    [Fact]
    public void TryAcquire_ClientOverItsRate_UsesNoListenerToken()
    {
        var rates = new ConnectionRateLimiter(new ConnectionLimits { MaxConnectionRate = 3, MaxConnectionRatePerClient = 1 }, TimeProvider.System);

        Assert.True(rates.TryAcquire(A));
        Assert.False(rates.TryAcquire(A)); // over A's own rate: the listener keeps its two tokens
        Assert.False(rates.TryAcquire(A));
        Assert.True(rates.TryAcquire(B));
        Assert.True(rates.TryAcquire(C));
        Assert.False(rates.TryAcquire(IPAddress.Parse("192.0.2.4"))); // now the listener's three are gone
    }

    [Fact]
    public async Task TryAcquire_AfterRefusal_TokensComeBackContinuously()
    {
        var rates = new ConnectionRateLimiter(new ConnectionLimits { MaxConnectionRate = 20 }, TimeProvider.System);
        while (rates.TryAcquire(A))
        {
        }

        // 20 a second: one token every 50 ms, not all of them at the next whole second.
        var started = System.Diagnostics.Stopwatch.StartNew();
        await TestServer.WaitUntilAsync(() => Task.FromResult(rates.TryAcquire(A)), TimeSpan.FromSeconds(5), "a token to come back");
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(2), $"a token took {started.Elapsed}");
    }

    [Fact]
    public void TryAcquire_FloodOfDistinctClients_TableStaysBounded()
    {
        var rates = new ConnectionRateLimiter(new ConnectionLimits { MaxConnectionRatePerClient = 1 }, TimeProvider.System);
        var bytes = new byte[4];
        for (var i = 0; i < 3 * ConnectionRateLimiter.MaxTrackedClients; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes, 0x0A000000 + i);
            Assert.True(rates.TryAcquire(new IPAddress(bytes))); // each one new: its first connection is served
            Assert.True(rates.TrackedClients <= ConnectionRateLimiter.MaxTrackedClients);
        }

        // A client seen just now is still limited.
        Assert.False(rates.TryAcquire(new IPAddress(bytes)));
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task MaxConnectionRate_OverTheRate_ClosedWithNothingWrittenAndCountedAsRateLimited(string transport)
    {
        await using var server = await TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Transport:Kind"] = transport, ["KestrelTcp:Limits:MaxConnectionRate"] = "2" },
            TestServer.Listener("greeting", "Greeting"));

        var banners = 0;
        var empty = 0;
        for (var i = 0; i < 4; i++)
        {
            await using var client = await server.ConnectAsync("greeting");
            var text = await client.ReadLineAsync();
            if (text.StartsWith("Welcome!", StringComparison.Ordinal))
            {
                banners++;
            }
            else
            {
                Assert.Equal("", text); // no banner, no ERR busy: closed at once
                empty++;
            }
        }

        // Two a second: the first two at once; a slow machine may have earned one more meanwhile.
        Assert.InRange(banners, 2, 3);
        var metrics = await server.MetricsAsync();
        Assert.Equal(empty, PrometheusText.Value(metrics, "kestreltcp_connections_rejected_total", ("listener", "greeting"), ("reason", "rate_limited")));
        Assert.Equal(banners, PrometheusText.Value(metrics, "kestreltcp_connections_accepted_total", ("listener", "greeting"), ("handler", "Greeting")));
    }

    [Fact]
    public async Task MaxConnectionRatePerClient_ListenerOverride_LimitsOnlyThatListener()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo", ("MaxConnectionRatePerClient", "1")),
            TestServer.Listener("other", "Echo"));

        await using var first = await server.ConnectAsync("echo");
        await first.SendAsync("a");
        Assert.Equal("a", System.Text.Encoding.ASCII.GetString(await first.ReadExactlyAsync(1)));
        await using (var second = await server.ConnectAsync("echo"))
        {
            Assert.Empty(await second.ReadToEndAsync());
        }

        for (var i = 0; i < 3; i++)
        {
            await using var other = await server.ConnectAsync("other");
            await other.SendAsync("b");
            Assert.Equal("b", System.Text.Encoding.ASCII.GetString(await other.ReadExactlyAsync(1)));
        }

        Assert.Equal(1, await server.MetricAsync("kestreltcp_connections_rejected_total", ("listener", "echo"), ("reason", "rate_limited")));
        Assert.Equal(0, await server.MetricAsync("kestreltcp_connections_rejected_total", ("listener", "other"), ("reason", "rate_limited")));
    }

    [Theory]
    [InlineData("Limits:MaxConnectionRate", "-1", "KestrelTcp:Limits:MaxConnectionRate: -1 is out of range (0 for unlimited, or connections per second)")]
    [InlineData("Listeners:echo:MaxConnectionRatePerClient", "fast", "KestrelTcp:Listeners:echo:MaxConnectionRatePerClient: 'fast' is not a whole number")]
    public void Rates_Malformed_StopStartUpNamingTheKey(string key, string value, string expected)
    {
        var problems = Configuration.KestrelTcpOptionsReaderTests.Problems(Configuration.KestrelTcpOptionsReaderTests.With(
            ("Listeners:echo:Handler", "Echo"), ("Listeners:echo:Port", "7007"), (key, value)));
        Assert.Equal([expected], problems);
    }
}

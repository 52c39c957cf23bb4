using KestrelTcp.Configuration;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Tests.Configuration;

public class KestrelTcpOptionsReaderTests
{
    private static ServiceProvider Services(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddKestrelTcp();
        return services.BuildServiceProvider();
    }

    internal static KestrelTcpOptions Read(Dictionary<string, string?> settings) =>
        Services(settings).GetRequiredService<KestrelTcpOptions>();

    internal static IReadOnlyList<string> Problems(Dictionary<string, string?> settings)
    {
        var ex = Assert.Throws<KestrelTcpConfigurationException>(() => Read(settings));
        return ex.Problems;
    }

    internal static Dictionary<string, string?> With(params (string Key, string? Value)[] settings) =>
        settings.ToDictionary(s => "KestrelTcp:" + s.Key, s => s.Value);

    [Fact]
    public void Read_Defaults_MatchTheContract()
    {
        var options = Read(With(("Listeners:echo:Handler", "Echo"), ("Listeners:echo:Port", "7007")));
        Assert.Equal(8080, options.Http.Port);
        Assert.Equal("*", options.Http.Address);
        Assert.Equal(new ConnectionLimits { MaxConnections = 10000, MaxConnectionsPerClient = 0, IdleTimeout = TimeSpan.FromMinutes(5), MaxLineLength = 8192 }, options.Limits);
        Assert.Equal(TimeSpan.FromSeconds(10), options.Shutdown.DrainTimeout);
        Assert.Equal(TimeSpan.Zero, options.Shutdown.Delay);
        var echo = Assert.Single(options.Listeners);
        Assert.Equal(("echo", "Echo", 7007), (echo.Name, echo.HandlerName, echo.Port!.Value));
    }

    [Fact]
    public void Read_PerListenerLimits_OverrideGlobalOnlyForThatListener()
    {
        var options = Read(With(
            ("Limits:MaxConnections", "50"), ("Limits:IdleTimeout", "00:00:30"),
            ("Listeners:a:Handler", "Echo"), ("Listeners:a:Port", "0"), ("Listeners:a:MaxConnections", "5"),
            ("Listeners:b:Handler", "Greeting"), ("Listeners:b:Port", "0"), ("Listeners:b:Limits:MaxLineLength", "100"),
            ("Listeners:c:Handler", "Time"), ("Listeners:c:Port", "0")));
        var byName = options.Listeners.ToDictionary(l => l.Name);
        Assert.Equal((5, TimeSpan.FromSeconds(30), 8192), (byName["a"].Limits.MaxConnections, byName["a"].Limits.IdleTimeout, byName["a"].Limits.MaxLineLength));
        Assert.Equal((50, 100), (byName["b"].Limits.MaxConnections, byName["b"].Limits.MaxLineLength));
        Assert.Equal(options.Limits, byName["c"].Limits);
    }

    [Fact]
    public void Read_DisabledListener_LeftOutEvenIfIncomplete()
    {
        var options = Read(With(("Listeners:off:Enabled", "false"), ("Listeners:off:Handler", "Nope")));
        Assert.Empty(options.Listeners);
    }

    [Fact]
    public void Validate_SamePortOnTwoDistinctSpecificAddresses_Allowed()
    {
        var options = Read(With(
            ("Listeners:a:Handler", "Echo"), ("Listeners:a:Address", "127.0.0.1"), ("Listeners:a:Port", "7100"),
            ("Listeners:b:Handler", "Echo"), ("Listeners:b:Address", "127.0.0.2"), ("Listeners:b:Port", "7100"),
            ("Listeners:c:Handler", "Echo"), ("Listeners:c:Address", "::1"), ("Listeners:c:Port", "7100")));
        Assert.Equal(3, options.Listeners.Count);
    }

    [Fact]
    public void Validate_OverlapsAndConflicts_EveryProblemAtOnce()
    {
        var problems = Problems(With(
            ("Http:Port", "9000"),
            ("Listeners:a:Handler", "Echo"), ("Listeners:a:Port", "7100"),
            ("Listeners:b:Handler", "Echo"), ("Listeners:b:Address", "127.0.0.1"), ("Listeners:b:Port", "7100"),
            ("Listeners:c:Handler", "Echo"), ("Listeners:c:Address", "::1"), ("Listeners:c:Port", "9000"),
            ("Listeners:d:Handler", "Echo"), ("Listeners:d:Port", "1"), ("Listeners:d:UnixSocketPath", "/tmp/x.sock"),
            ("Listeners:e:Handler", "Echo"),
            ("Listeners:f:Port", "0"),
            ("Listeners:g:Handler", "Echo"), ("Listeners:g:Address", "not-an-ip"), ("Listeners:g:Port", "0"),
            ("Listeners:h:Handler", "Echo"), ("Listeners:h:Address", "localhost"), ("Listeners:h:Port", "0"),
            ("Listeners:i:Handler", "Echo"), ("Listeners:i:Port", "0"), ("Listeners:i:Enabled", "maybe")));
        Assert.Equal(
        [
            "KestrelTcp:Listeners:d:UnixSocketPath: a listener has either a Port or a UnixSocketPath, not both",
            "KestrelTcp:Listeners:e:Port: missing (give a Port, or a UnixSocketPath)",
            "KestrelTcp:Listeners:f:Handler: missing (known handlers: Chargen, Discard, Echo, Greeting, Info, Qotd, Time)",
            "KestrelTcp:Listeners:g:Address: 'not-an-ip' is not an IP address (use *, localhost, or an IPv4/IPv6 address)",
            "KestrelTcp:Listeners:h:Address: 'localhost' cannot be bound with port 0; use 127.0.0.1 or ::1",
            "KestrelTcp:Listeners:i:Enabled: 'maybe' is not true or false",
            "KestrelTcp:Listeners:b:Port: 7100 on 127.0.0.1 overlaps listener 'a' (7100 on *)",
            "KestrelTcp:Listeners:c:Port: 9000 is the HTTP management port (KestrelTcp:Http:Port)",
        ], problems);
    }

    [Theory]
    [InlineData("Limits:MaxConnectionsPerClient", "-3", "KestrelTcp:Limits:MaxConnectionsPerClient: -3 is out of range (0 for unlimited, or a positive count)")]
    [InlineData("Limits:MaxLineLength", "0", "KestrelTcp:Limits:MaxLineLength: 0 is out of range (1-1048576 bytes)")]
    [InlineData("Limits:IdleTimeout", "-00:00:01", "KestrelTcp:Limits:IdleTimeout: -00:00:01 is negative")]
    [InlineData("Shutdown:Delay", "soon", "KestrelTcp:Shutdown:Delay: 'soon' is not a time span (expected [d.]hh:mm:ss[.fff], e.g. 00:05:00)")]
    [InlineData("Http:Port", "-1", "KestrelTcp:Http:Port: -1 is not a port (1-65535, or 0 for any free port)")]
    [InlineData("Backlog", "0", "KestrelTcp:Backlog: 0 is out of range (1-65535)")]
    [InlineData("Transport:InlineScheduling", "sometimes", "KestrelTcp:Transport:InlineScheduling: 'sometimes' is not true or false")]
    [InlineData("Transport:Kind", "Fast", "KestrelTcp:Transport:Kind: 'Fast' is not a transport (KestrelTcp or Kestrel)")]
    [InlineData("Transport:Kind", "1", "KestrelTcp:Transport:Kind: '1' is not a transport (KestrelTcp or Kestrel)")]
    public void Validate_BadValue_MessageNamesKeyAndValue(string key, string value, string expected)
    {
        Assert.Equal([expected], Problems(With((key, value))));
    }

    [Theory]
    [InlineData(null, nameof(TransportKind.KestrelTcp))]
    [InlineData("KestrelTcp", nameof(TransportKind.KestrelTcp))]
    [InlineData("Kestrel", nameof(TransportKind.Kestrel))]
    [InlineData("kestrel", nameof(TransportKind.Kestrel))]
    public void Read_TransportKind_Parsed(string? value, string expected)
    {
        Assert.Equal(expected, Read(With(("Transport:Kind", value))).Transport.Kind.ToString());
    }

    [Fact]
    public void Backlog_Configured_AppliedToSocketTransport()
    {
        using var services = Services(With(("Backlog", "64")));
        Assert.Equal(64, services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.Backlog);
    }

    [Fact]
    public void HostShutdownTimeout_CoversDelayPlusDrain()
    {
        using var services = Services(With(("Shutdown:Delay", "00:00:20"), ("Shutdown:DrainTimeout", "00:00:30")));
        Assert.True(services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout >= TimeSpan.FromSeconds(50));
    }
}

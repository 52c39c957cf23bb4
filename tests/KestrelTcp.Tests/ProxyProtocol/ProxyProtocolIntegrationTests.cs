using System.Diagnostics;
using System.Net;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.ProxyProtocol;

/// <summary>
/// The PROXY protocol over real sockets, through both transports: the header's source becomes the
/// connection's client for templates, access rules, per-client limits and <c>/connections</c>; every
/// refusal is closed with nothing written and counted as <c>proxy_protocol</c>.
/// </summary>
public class ProxyProtocolIntegrationTests
{
    private const string Rejected = "kestreltcp_connections_rejected_total";
    private const string Banner = "{RemoteAddress}:{RemotePort} -> {LocalAddress}:{LocalPort}\r\n";

    public static TheoryData<string> Transports => new() { "KestrelTcp", "Kestrel" };

    private static Task<TestServer> StartAsync(string transport, string handler, params (string Key, string? Value)[] settings) =>
        TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Transport:Kind"] = transport },
            TestServer.Listener("edge", handler, [("ProxyProtocol:TrustedProxies:0", "127.0.0.1"), .. settings]));

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task V1Header_HeadersSourceBecomesTheClient_InTemplatesAndConnections(string transport)
    {
        await using var server = await StartAsync(transport, "Greeting", ("ProxyProtocol:Mode", "V1"), ("Options:Banner", Banner));
        await using var client = await server.ConnectAsync("edge");
        await client.SendAsync("PROXY TCP4 203.0.113.7 192.0.2.1 51234 7001\r\n");

        Assert.Equal("203.0.113.7:51234 -> 192.0.2.1:7001\r\n", await client.ReadLineAsync());

        var connection = (await server.JsonAsync("/connections")).GetProperty("listeners")[0].GetProperty("connections")[0];
        Assert.Equal("203.0.113.7:51234", connection.GetProperty("remote").GetString());
        Assert.Equal(client.Socket.LocalEndPoint!.ToString(), connection.GetProperty("peer").GetString());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task V2Header_WithPayloadInTheSamePacket_PayloadReachesTheHandler(string transport)
    {
        await using var server = await StartAsync(transport, "Echo", ("ProxyProtocol:Mode", "V2"));
        await using var client = await server.ConnectAsync("edge");
        var header = ProxyHeaderBytes.V2(0x21, 0x21, ProxyHeaderBytes.IPv6Addresses("2001:db8::7", 40000, "2001:db8::1", 7007));
        await client.SendAsync([.. header, .. "hello"u8]);

        Assert.Equal("hello"u8.ToArray(), await client.ReadExactlyAsync(5));
        var connection = (await server.JsonAsync("/connections")).GetProperty("listeners")[0].GetProperty("connections")[0];
        Assert.Equal("[2001:db8::7]:40000", connection.GetProperty("remote").GetString());
        // The header's bytes are the transport's: counted as received, not echoed.
        Assert.Equal(header.Length + 5, connection.GetProperty("bytesReceived").GetInt64());
    }

    [Theory]
    [InlineData("PROXY UNKNOWN\r\n")]
    [InlineData("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")]
    public async Task UnknownHeader_ServedWithTheSocketsAddresses(string header)
    {
        await using var server = await StartAsync("KestrelTcp", "Greeting", ("ProxyProtocol:Mode", "Any"), ("Options:Banner", Banner));
        await using var client = await server.ConnectAsync("edge");
        await client.SendAsync(header);

        Assert.Equal($"{client.Socket.LocalEndPoint} -> {client.Socket.RemoteEndPoint}\r\n", await client.ReadLineAsync());
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task UntrustedPeer_RefusedOnArrivalWithNothingWritten(string transport)
    {
        await using var server = await TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Transport:Kind"] = transport },
            TestServer.Listener("edge", "Greeting", ("ProxyProtocol:Mode", "V1"), ("ProxyProtocol:TrustedProxies:0", "10.0.0.0/8"),
                ("ProxyProtocol:HeaderTimeout", "00:01:00")));
        await using var client = await server.ConnectAsync("edge");

        // Refused before it sends anything: no waiting for the header's minute.
        var closed = Stopwatch.StartNew();
        Assert.Empty(await client.ReadToEndAsync(TimeSpan.FromSeconds(10)));
        Assert.True(closed.Elapsed < TimeSpan.FromSeconds(5), $"closed after {closed.Elapsed}");
        await AssertRefusedOnlyAsync(server);
    }

    [Theory]
    [InlineData("V1", "GET / HTTP/1.1\r\n")]
    [InlineData("V1", "PROXY TCP4 203.0.113.7 192.0.2.1 51234 7001\n")] // a bare LF
    [InlineData("V2", "PROXY TCP4 203.0.113.7 192.0.2.1 51234 7001\r\n")] // v1 where v2 is required
    [InlineData("Any", "\r\n\r\n\0\r\nQUIT\n\x0031")] // a v2 signature with version 3
    public async Task MalformedHeader_RefusedAsSoonAsItsBytesProveIt(string mode, string header)
    {
        await using var server = await StartAsync("KestrelTcp", "Greeting", ("ProxyProtocol:Mode", mode), ("ProxyProtocol:HeaderTimeout", "00:01:00"));
        await using var client = await server.ConnectAsync("edge");
        await client.SendAsync(System.Text.Encoding.Latin1.GetBytes(header));

        var closed = Stopwatch.StartNew();
        Assert.Empty(await client.ReadToEndAsync(TimeSpan.FromSeconds(10)));
        Assert.True(closed.Elapsed < TimeSpan.FromSeconds(5), $"closed after {closed.Elapsed}");
        await AssertRefusedOnlyAsync(server);
    }

    [Fact]
    public async Task V1WithoutCrlfWithin107Bytes_Refused()
    {
        await using var server = await StartAsync("KestrelTcp", "Echo", ("ProxyProtocol:Mode", "V1"), ("ProxyProtocol:HeaderTimeout", "00:01:00"));
        await using var client = await server.ConnectAsync("edge");
        await client.SendAsync("PROXY TCP6 " + new string('1', 96));

        Assert.Empty(await client.ReadToEndAsync(TimeSpan.FromSeconds(10)));
        await AssertRefusedOnlyAsync(server);
    }

    [Fact]
    public async Task HeaderLate_RefusedAfterHeaderTimeout()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock,
            TestServer.Listener("edge", "Greeting", ("ProxyProtocol:Mode", "V2"), ("ProxyProtocol:TrustedProxies:0", "127.0.0.1"),
                ("ProxyProtocol:HeaderTimeout", "00:00:03")));
        await using var client = await server.ConnectAsync("edge");
        await client.SendAsync(ProxyHeaderBytes.Signature[..6]); // a start, never finished

        var end = client.ReadToEndAsync(TimeSpan.FromSeconds(20));
        await server.RunClockUntilAsync(end);
        Assert.Empty(await end);
        await AssertRefusedOnlyAsync(server);
    }

    [Fact]
    public async Task AccessRulesAndPerClientLimits_ApplyToTheHeadersSource()
    {
        await using var server = await StartAsync("KestrelTcp", "Echo", ("ProxyProtocol:Mode", "V1"),
            ("Access:Deny:0", "203.0.113.0/24"), ("MaxConnectionsPerClient", "1"));

        // 127.0.0.1 is the peer every time; the header decides who the client is.
        await using (var denied = await server.ConnectAsync("edge"))
        {
            await denied.SendAsync("PROXY TCP4 203.0.113.7 192.0.2.1 51234 7007\r\n");
            Assert.Empty(await denied.ReadToEndAsync());
        }

        await using var first = await server.ConnectAsync("edge");
        await first.SendAsync("PROXY TCP4 198.51.100.1 192.0.2.1 1000 7007\r\nx");
        Assert.Equal("x"u8.ToArray(), await first.ReadExactlyAsync(1));
        await using (var second = await server.ConnectAsync("edge"))
        {
            await second.SendAsync("PROXY TCP4 198.51.100.1 192.0.2.1 1001 7007\r\ny");
            Assert.Empty(await second.ReadToEndAsync());
        }

        await using var other = await server.ConnectAsync("edge");
        await other.SendAsync("PROXY TCP4 198.51.100.2 192.0.2.1 1000 7007\r\nz");
        Assert.Equal("z"u8.ToArray(), await other.ReadExactlyAsync(1));

        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, Rejected, ("listener", "edge"), ("reason", "access_denied")));
        Assert.Equal(1, PrometheusText.Value(metrics, Rejected, ("listener", "edge"), ("reason", "max_connections_per_client")));
        Assert.Equal(0, PrometheusText.Value(metrics, Rejected, ("listener", "edge"), ("reason", "proxy_protocol")));
    }

    [Fact]
    public void ProxyProtocol_MissingTrustedProxies_StopsStartUpNamingTheKey()
    {
        var problems = Configuration.KestrelTcpOptionsReaderTests.Problems(Configuration.KestrelTcpOptionsReaderTests.With(
            ("Listeners:echo:Handler", "Echo"), ("Listeners:echo:Port", "7007"), ("Listeners:echo:ProxyProtocol:Mode", "V2")));
        Assert.Single(problems);
        Assert.StartsWith("KestrelTcp:Listeners:echo:ProxyProtocol:TrustedProxies: required when Mode is V2", problems[0]);
    }

    private static async Task AssertRefusedOnlyAsync(TestServer server)
    {
        await TestServer.WaitUntilAsync(async () => await server.MetricAsync(Rejected, ("listener", "edge"), ("reason", "proxy_protocol")) == 1,
            because: "the refusal to be counted");
        var metrics = await server.MetricsAsync();
        Assert.Equal(0, PrometheusText.Sum(metrics, "kestreltcp_connections_accepted_total", "edge"));
        Assert.Equal(0, PrometheusText.Sum(metrics, "kestreltcp_connections_closed_total", "edge"));
    }
}

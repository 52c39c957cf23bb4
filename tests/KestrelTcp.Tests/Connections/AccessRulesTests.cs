using System.Net;
using KestrelTcp.Configuration;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Tests.Connections;

/// <summary><c>Access:Allow</c> and <c>Access:Deny</c>: matching (unit) and refusals over real sockets through both transports.</summary>
public class AccessRulesTests
{
    private const string Rejected = "kestreltcp_connections_rejected_total";

    [Theory]
    [InlineData("10.0.0.0/8", "10.200.3.4", true)]
    [InlineData("10.0.0.0/8", "11.0.0.1", false)]
    [InlineData("192.0.2.7", "192.0.2.7", true)]
    [InlineData("192.0.2.7", "192.0.2.8", false)]
    [InlineData("10.0.0.0/8", "::ffff:10.1.2.3", true)] // an IPv4 client of a dual-stack socket matches IPv4 rules
    [InlineData("::ffff:10.1.2.3", "10.1.2.3", true)]
    [InlineData("2001:db8::/32", "2001:db8:1::5", true)]
    [InlineData("2001:db8::/32", "2001:db9::5", false)]
    [InlineData("::1", "::1", true)]
    [InlineData("::1", "127.0.0.1", false)]
    [InlineData("0.0.0.0/0", "::1", false)] // families never match each other
    [InlineData("[::1]", "::1", true)]
    [InlineData("10.1.2.3/8", "10.200.0.1", true)] // bits beyond the prefix are masked, as iptables does
    public void NetworkList_Contains_MatchesAddressesAndCidrBlocks(string entry, string client, bool expected)
    {
        var problems = new List<string>();
        var list = NetworkList.Read(Section(("List:0", entry)), "List", problems);

        Assert.Empty(problems);
        Assert.Equal(expected, list.Contains(IPAddress.Parse(client)));
    }

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("example.com")]
    [InlineData("10.0.0")] // IPAddress reads this as 10.0.0.0: refused as the typo it is
    [InlineData("10/8")]
    [InlineData("")]
    public void NetworkList_Read_BadEntry_NamesItsKey(string entry)
    {
        var problems = new List<string>();
        NetworkList.Read(Section(("Access:Allow:0", "127.0.0.1"), ("Access:Allow:1", entry)), "Access:Allow", problems);

        Assert.Equal([$"Root:Access:Allow:1: '{entry}' is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)"], problems);
    }

    [Fact]
    public void NetworkList_Read_CommaSeparatedValue_ReadsEachEntry()
    {
        var problems = new List<string>();
        var list = NetworkList.Read(Section(("Allow", "10.0.0.0/8, ::1")), "Allow", problems);

        Assert.Empty(problems);
        Assert.Equal(2, list.Networks.Count);
    }

    [Theory]
    [InlineData("10.1.2.3", true)]
    [InlineData("10.1.2.4", false)] // denied: Deny wins over Allow
    [InlineData("192.0.2.1", false)] // not allowed
    public void AccessRules_Permits_DenyWinsOverAllow(string client, bool expected)
    {
        var problems = new List<string>();
        var rules = AccessRules.Read(Section(("Allow:0", "10.0.0.0/8"), ("Deny:0", "10.1.2.4")), problems);

        Assert.Empty(problems);
        Assert.Equal(expected, rules.Permits(IPAddress.Parse(client)));
    }

    [Fact]
    public void AccessRules_Permits_ClientWithoutAddress_OnlyWithoutAllowList()
    {
        var problems = new List<string>();
        Assert.True(AccessRules.Read(Section(("Deny:0", "10.0.0.0/8")), problems).Permits(null));
        Assert.False(AccessRules.Read(Section(("Allow:0", "10.0.0.0/8")), problems).Permits(null));
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task Allow_ClientNotListed_ClosedWithNothingWrittenAndCountedAsAccessDenied(string transport)
    {
        await using var server = await TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Transport:Kind"] = transport },
            TestServer.Listener("greeting", "Greeting", ("Address", "*"), ("Access:Allow:0", "::1")),
            TestServer.Listener("echo", "Echo", ("Access:Allow:0", "127.0.0.0/8"), ("Access:Deny:0", "127.0.0.2")));

        // 127.0.0.1 reaches a dual-stack socket as ::ffff:127.0.0.1: an IPv4 client, not ::1.
        await using (var refused = await server.ConnectAsync("greeting"))
        {
            Assert.Empty(await refused.ReadToEndAsync()); // no banner, no ERR busy
        }

        await using (var allowed = await TcpTestClient.ConnectAsync(new IPEndPoint(IPAddress.IPv6Loopback, server.Port("greeting"))))
        {
            Assert.StartsWith("Welcome!", await allowed.ReadLineAsync());
        }

        await using (var echo = await server.ConnectAsync("echo"))
        {
            await echo.SendAsync("ping");
            Assert.Equal("ping", System.Text.Encoding.ASCII.GetString(await echo.ReadExactlyAsync(4)));
        }

        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, Rejected, ("listener", "greeting"), ("reason", "access_denied")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_accepted_total", ("listener", "greeting"), ("handler", "Greeting")));
        Assert.Equal(0, PrometheusText.Value(metrics, Rejected, ("listener", "echo"), ("reason", "access_denied")));
    }

    [Fact]
    public async Task Deny_ClientListed_RefusedAndLoggedOnceWithCount()
    {
        var logs = new LogCapture();
        await using var server = await TestServer.StartAsync(
            [TestServer.Listener("echo", "Echo", ("Access:Deny:0", "127.0.0.1"))], s => s.AddSingleton<ILoggerProvider>(logs));

        for (var i = 0; i < 3; i++)
        {
            await using var refused = await server.ConnectAsync("echo");
            Assert.Empty(await refused.ReadToEndAsync());
        }

        Assert.Equal(3, await server.MetricAsync(Rejected, ("listener", "echo"), ("reason", "access_denied")));
        var events = logs.Named("ConnectionsRejected").ToList();
        Assert.Single(events); // the first refusal at once; the next two wait for the next second's event
        Assert.Equal(1L, events[0]["Count"]);
        Assert.Equal("AccessDenied", events[0]["RejectReason"]?.ToString());
    }

    [Fact]
    public void Access_BadEntry_StopsStartUpNamingTheKey()
    {
        var problems = Configuration.KestrelTcpOptionsReaderTests.Problems(Configuration.KestrelTcpOptionsReaderTests.With(
            ("Listeners:echo:Handler", "Echo"), ("Listeners:echo:Port", "7007"), ("Listeners:echo:Access:Deny:0", "10.0.0.300")));
        Assert.Equal(["KestrelTcp:Listeners:echo:Access:Deny:0: '10.0.0.300' is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)"], problems);
    }

    private static IConfigurationSection Section(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.ToDictionary(v => "Root:" + v.Key, v => (string?)v.Value)).Build().GetSection("Root");
}

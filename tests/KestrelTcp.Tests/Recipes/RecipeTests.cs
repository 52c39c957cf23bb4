using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Recipes;

/// <summary>
/// One test per recipe of <c>docs/recipes.md</c>: the recipe's configuration, exactly as the page gives
/// it (keys relative to the listener), and the client session the page shows.
/// </summary>
public partial class RecipeTests
{
    [Fact]
    public async Task SingleClientGreetingServer_SecondClientWaitsForTheFirst()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting",
            ("MaxConnections", "1"), ("QueueWhenFull", "true")));

        await using var first = await server.ConnectAsync("greeting");
        Assert.Equal($"Welcome! You have connected to 127.0.0.1 on port {server.Port("greeting")}\r\n", await first.ReadLineAsync());

        // The second client is connected but not yet served, as in a classic server's listen backlog.
        await using var second = await server.ConnectAsync("greeting");
        var banner = second.ReadLineAsync(TimeSpan.FromSeconds(20));
        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("greeting")!.Limiter.Waiting == 1), because: "the second client to wait");
        Assert.False(banner.IsCompleted);

        await first.SendAsync("alice\n");
        Assert.Equal("Hello, alice!\r\n", await first.ReadLineAsync());
        await first.SendAsync("quit\n");
        Assert.Equal("Goodbye!\r\n", await first.ReadLineAsync());

        Assert.StartsWith("Welcome! You have connected to", await banner);
        Assert.Equal(0, await server.MetricAsync("kestreltcp_connections_rejected_total", ("listener", "greeting"), ("reason", "max_connections")));
        Assert.Equal(2, await server.MetricAsync("kestreltcp_connections_accepted_total", ("listener", "greeting"), ("handler", "Greeting")));
    }

    [Fact]
    public async Task SingleClientGreetingServer_DrainRefusesTheWaiting()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting",
            ("MaxConnections", "1"), ("QueueWhenFull", "true")));
        await using var first = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await first.ReadLineAsync());
        await using var second = await server.ConnectAsync("greeting");
        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("greeting")!.Limiter.Waiting == 1), because: "the second client to wait");

        var stopped = server.RequestStop();
        Assert.Equal("", await second.ReadToEndTextAsync());
        Assert.Equal("Server shutting down\r\n", await first.ReadToEndTextAsync());
        await stopped;
    }

    [Fact]
    public async Task ThreadedEcho_YouSentMe()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Greeting",
            ("Options:Banner", ""), ("Options:Reply", "You sent me: {Line}\r\n"), ("Options:ExitCommands", "")));
        await using var client = await server.ConnectAsync("echo");

        await client.SendAsync("hello\n");
        Assert.Equal("You sent me: hello\r\n", await client.ReadLineAsync());
        await client.SendAsync("quit\n"); // not a command here: the classic server has none
        Assert.Equal("You sent me: quit\r\n", await client.ReadLineAsync());
        client.ShutdownSend();
        Assert.Equal("", await client.ReadToEndTextAsync());
    }

    [Fact]
    public async Task TimeAndClose_Ctime()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("time", "Time", ("Options:Format", "ctime")));
        await using var client = await server.ConnectAsync("time");

        Assert.Matches(CtimeLine(), await client.ReadToEndTextAsync());
    }

    [Fact]
    public async Task SocketServerEcho_WithABacklog()
    {
        await using var server = await TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Backlog"] = "5" },
            TestServer.Listener("echo", "Echo"));
        var clients = new List<TcpTestClient>();
        for (var i = 0; i < 5; i++)
        {
            clients.Add(await server.ConnectAsync("echo"));
        }

        foreach (var (client, i) in clients.Select((c, i) => (c, i)))
        {
            await client.SendAsync($"message {i}");
            Assert.Equal($"message {i}", Encoding.ASCII.GetString(await client.ReadExactlyAsync(9)));
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task XinetdBuiltins_SideBySide()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"),
            TestServer.Listener("discard", "Discard"),
            TestServer.Listener("daytime", "Time", ("Options:Format", "xinetd")),
            TestServer.Listener("time", "Time", ("Options:Format", "rfc868")),
            TestServer.Listener("chargen", "Chargen"));

        await using (var echo = await server.ConnectAsync("echo"))
        {
            await echo.SendAsync("ping\n");
            Assert.Equal("ping\n", await echo.ReadLineAsync());
        }

        await using (var discard = await server.ConnectAsync("discard"))
        {
            await discard.SendAsync("into the void\n");
            discard.ShutdownSend();
            Assert.Empty(await discard.ReadToEndAsync());
        }

        await using (var daytime = await server.ConnectAsync("daytime"))
        {
            Assert.Matches(XinetdDaytimeLine(), await daytime.ReadToEndTextAsync());
        }

        await using (var time = await server.ConnectAsync("time"))
        {
            var seconds = BinaryPrimitives.ReadUInt32BigEndian(await time.ReadToEndAsync());
            var now = (uint)(DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 2_208_988_800L);
            Assert.InRange(now - seconds, 0u, 60u);
        }

        await using (var chargen = await server.ConnectAsync("chargen"))
        {
            Assert.Equal(" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n", await chargen.ReadLineAsync());
            Assert.Equal("!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n", await chargen.ReadLineAsync());
        }
    }

    [GeneratedRegex(@"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123]\d \d\d:\d\d:\d\d \d{4}\r\n$")]
    private static partial Regex CtimeLine();

    [GeneratedRegex(@"^\d\d (JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC) \d{4} \d\d:\d\d:\d\d UTC\r\n$")]
    private static partial Regex XinetdDaytimeLine();
}

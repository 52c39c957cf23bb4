using System.Net;
using System.Net.Sockets;
using System.Text;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace KestrelTcp.Tests.Hosting;

/// <summary>Every handler through the real server, real Kestrel and real sockets on loopback port 0.</summary>
public class HandlerIntegrationTests
{
    [Fact]
    public async Task Echo_BinaryData_ReturnedUnchanged()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        await using var client = await server.ConnectAsync("echo");
        var data = new byte[200_000];
        new Random(42).NextBytes(data);
        var send = client.SendAsync(data);
        var received = await client.ReadExactlyAsync(data.Length);
        await send;
        Assert.Equal(data, received);

        // KestrelTcp's transport counted every byte itself (no counting wrapper in the way).
        var tracked = Assert.Single(server.Runtime.Find("echo")!.OpenConnections);
        Assert.IsType<TcpConnection>(tracked.Transfer);
        await TestServer.WaitUntilAsync(() => Task.FromResult(tracked.Transfer.BytesSent == data.Length), because: "the last send to be counted");
        Assert.Equal(data.Length, await server.MetricAsync("kestreltcp_bytes_sent_total", ("listener", "echo")));
    }

    [Fact]
    public async Task Echo_ClientHalfCloses_ReceivesEverythingThenEof()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        await using var client = await server.ConnectAsync("echo");
        var data = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("half-close ", 10_000)));
        await client.SendAsync(data);
        client.ShutdownSend();
        Assert.Equal(data, await client.ReadToEndAsync());
    }

    [Fact]
    public async Task Echo_200ConcurrentClients_EachGetsExactlyItsOwnBytes()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var clients = await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            var client = await server.ConnectAsync("echo");
            var data = new byte[4096 + i];
            new Random(i).NextBytes(data);
            await client.SendAsync(data);
            client.ShutdownSend();
            var received = await client.ReadToEndAsync(TimeSpan.FromSeconds(30));
            await client.DisposeAsync();
            return (data, received);
        }));
        Assert.All(clients, c => Assert.Equal(c.data, c.received));
    }

    // The server's clock stands at TestClock.Epoch, Wed Jan 29 19:14:15.123 2014 UTC: every format is exact.
    [Theory]
    [InlineData("ctime", "Wed Jan 29 19:14:15 2014\r\n")]
    [InlineData("iso8601", "2014-01-29T19:14:15.123Z\r\n")]
    [InlineData("rfc1123", "Wed, 29 Jan 2014 19:14:15 GMT\r\n")]
    [InlineData("unix", "1391022855\r\n")]
    public async Task Time_EachTextFormat_OneLineThenClose(string format, string expected)
    {
        await using var server = await TestServer.StartAsync(new TestClock(), TestServer.Listener("time", "Time", ("Options:Format", format)));
        await using var client = await server.ConnectAsync("time");
        Assert.Equal(expected, await client.ReadToEndTextAsync());
    }

    [Fact]
    public async Task Time_Rfc868_FourBytesOfTheServerClock()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("time", "Time", ("Options:Format", "rfc868")));
        await using (var client = await server.ConnectAsync("time"))
        {
            // 1391022855 + 2208988800 = 3600011655 = 0xD693D187
            Assert.Equal(new byte[] { 0xD6, 0x93, 0xD1, 0x87 }, await client.ReadToEndAsync());
        }

        clock.Advance(TimeSpan.FromSeconds(1));
        await using (var client = await server.ConnectAsync("time"))
        {
            Assert.Equal(new byte[] { 0xD6, 0x93, 0xD1, 0x88 }, await client.ReadToEndAsync());
        }
    }

    [Fact]
    public async Task Time_Iso8601WithTimeZone_CarriesOffset()
    {
        await using var server = await TestServer.StartAsync(new TestClock(), TestServer.Listener("time", "Time", ("Options:Format", "iso8601"), ("Options:TimeZone", "Asia/Kolkata")));
        await using var client = await server.ConnectAsync("time");
        Assert.Equal("2014-01-30T00:44:15.123+05:30\r\n", await client.ReadToEndTextAsync());
    }

    [Fact]
    public async Task Greeting_Conversation_BannerRepliesFarewell()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting"));
        await using var client = await server.ConnectAsync("greeting");
        var port = server.Port("greeting");
        Assert.Equal($"Welcome! You have connected to 127.0.0.1 on port {port}\r\n", await client.ReadLineAsync());
        await client.SendAsync("Ada\r\n");
        Assert.Equal("Hello, Ada!\r\n", await client.ReadLineAsync());
        await client.SendAsync("Grace\n\x01\n");
        Assert.Equal("Hello, Grace!\r\n", await client.ReadLineAsync());
        Assert.Equal("Hello, \uFFFD!\r\n", await client.ReadLineAsync());
        await client.SendAsync("QUIT\r\n");
        Assert.Equal("Goodbye!\r\n", await client.ReadToEndTextAsync());
    }

    [Fact]
    public async Task Greeting_LastLineAtEofWithoutNewline_StillAnswered()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting", ("Options:Banner", "")));
        await using var client = await server.ConnectAsync("greeting");
        await client.SendAsync("no newline");
        client.ShutdownSend();
        Assert.Equal("Hello, no newline!\r\n", await client.ReadToEndTextAsync());
    }

    [Fact]
    public async Task Greeting_LineOverLimit_ErrThenClose()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting", ("Options:Banner", ""), ("MaxLineLength", "64")));
        await using var client = await server.ConnectAsync("greeting");
        await client.SendAsync(new string('x', 65) + "\n");
        Assert.Equal("ERR line too long\r\n", await client.ReadToEndTextAsync());
    }

    [Fact]
    public async Task Greeting_CustomTemplates_EveryPlaceholder()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting",
            ("Options:Banner", "{Listener} {RemoteAddress} {LocalAddress}:{LocalPort} {MachineName}\n"),
            ("Options:Reply", "<{Line}> {RemotePort}\n"),
            ("Options:Farewell", "ciao\n"),
            ("Options:ExitCommands:0", "ciao")));
        await using var client = await server.ConnectAsync("greeting");
        var local = (IPEndPoint)client.Socket.LocalEndPoint!;
        Assert.Equal($"greeting 127.0.0.1 127.0.0.1:{server.Port("greeting")} {Environment.MachineName}\n", await client.ReadLineAsync());
        await client.SendAsync("quit\nCIAO\n");
        Assert.Equal($"<quit> {local.Port}\nciao\n", await client.ReadToEndTextAsync());
    }

    [Fact]
    public async Task UnixSocketListener_Echo_Works()
    {
        var path = Path.Combine(Path.GetTempPath(), $"kestreltcp-{Guid.NewGuid():N}.sock");
        try
        {
            await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
            {
                ["KestrelTcp:Listeners:local:Handler"] = "Echo",
                ["KestrelTcp:Listeners:local:UnixSocketPath"] = path,
            });
            await using var client = await TcpTestClient.ConnectAsync(new UnixDomainSocketEndPoint(path));
            await client.SendAsync("over unix");
            var listener = server.Runtime.Find("local")!;
            await TestServer.WaitUntilAsync(() => Task.FromResult(listener.OpenCount == 1), because: "the connection to be accepted");
            // Unix sockets are served by Kestrel's transport: the counting wrapper answers the transfer feature.
            Assert.IsType<CountingDuplexPipe>(Assert.Single(listener.OpenConnections).Transfer);
            client.ShutdownSend();
            Assert.Equal("over unix", await client.ReadToEndTextAsync());
            var health = await server.JsonAsync("/health");
            Assert.Equal($"unix:{path}", health.GetProperty("listeners")[0].GetProperty("endpoint").GetString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task DisabledListener_NotBound()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"),
            TestServer.Listener("off", "Echo", ("Enabled", "false")));
        Assert.Null(server.Runtime.Find("off"));
        var health = await server.JsonAsync("/health");
        Assert.Equal(1, health.GetProperty("listeners").GetArrayLength());
    }

    [Fact]
    public async Task Transport_Default_TcpListenersOnKestrelTcpTransportHttpStillServed()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("echo", "Echo"),
            TestServer.Listener("greeting", "Greeting", ("Options:Banner", "")));

        // Both TCP listeners, and only they (the HTTP port stays on Kestrel's socket transport).
        Assert.Equal(2, server.Services.GetRequiredService<TcpTransportFactory>().Bound);
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("over our transport");
        Assert.Equal("over our transport"u8.ToArray(), await client.ReadExactlyAsync(18));
        var ready = await server.Http.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Transport_KindKestrel_NothingOnKestrelTcpTransportEchoStillWorks()
    {
        await using var server = await TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Transport:Kind"] = "Kestrel" },
            TestServer.Listener("echo", "Echo"));

        Assert.Equal(0, server.Services.GetRequiredService<TcpTransportFactory>().Bound);
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("over kestrel's transport");
        client.ShutdownSend();
        Assert.Equal("over kestrel's transport", await client.ReadToEndTextAsync());
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health/ready")).StatusCode);
    }

    [Fact]
    public async Task TcpPort_HttpRequest_NotServedAsHttp()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        await using var client = await server.ConnectAsync("echo");
        await client.SendAsync("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        client.ShutdownSend();
        Assert.Equal("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", await client.ReadToEndTextAsync());
    }
}

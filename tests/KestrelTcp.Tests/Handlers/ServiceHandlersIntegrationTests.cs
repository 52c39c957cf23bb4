using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using KestrelTcp.Configuration;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Configuration;
using KestrelTcp.Tests.Deployment;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Tests.ProxyProtocol;
using KestrelTcp.Tests.Tls;
using Microsoft.Extensions.Configuration;

namespace KestrelTcp.Tests.Handlers;

/// <summary>Discard, Chargen, Qotd and Info (CONTRACT §7) through the real server, real Kestrel and real sockets on loopback port 0.</summary>
public sealed class ServiceHandlersIntegrationTests : IDisposable
{
    private const int Cycle = 95 * 74;
    private readonly TempDirectory _files = new();

    public void Dispose() => _files.Dispose();

    private static byte[] Chargen(long offset, int count)
    {
        var bytes = new byte[count];
        var position = (int)(offset % Cycle);
        ChargenHandler.Fill(bytes, ref position);
        return bytes;
    }

    private static JsonElement Json(string text)
    {
        Assert.EndsWith("}\n", text);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    private static void AssertEndPoint(JsonElement element, string address, int port)
    {
        Assert.Equal(address, element.GetProperty("address").GetString());
        Assert.Equal(port, element.GetProperty("port").GetInt32());
    }

    [Fact]
    public async Task Discard_DataThenHalfClose_NothingBackClosedGracefullyEveryByteCounted()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("discard", "Discard"));
        await using (var client = await server.ConnectAsync("discard"))
        {
            var data = new byte[1_000_000];
            new Random(3).NextBytes(data);
            await client.SendAsync(data);
            client.ShutdownSend();
            Assert.True(await client.IsClosedGracefullyAsync());
        }

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(1_000_000, PrometheusText.Value(metrics, "kestreltcp_bytes_received_total", ("listener", "discard")));
        Assert.Equal(0, PrometheusText.Value(metrics, "kestreltcp_bytes_sent_total", ("listener", "discard")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_closed_total", ("listener", "discard"), ("reason", "client")));
    }

    [Fact]
    public async Task Discard_ServerStops_OpenConnectionFinishesAtOnceWithFin()
    {
        var server = await TestServer.StartAsync(TestServer.Listener("discard", "Discard"));
        try
        {
            await using var client = await server.ConnectAsync("discard");
            await client.SendAsync("dropped");
            await server.OpenConnectionsAsync("discard");
            var stopwatch = Stopwatch.StartNew();
            var stopped = server.RequestStop();
            Assert.True(await client.IsClosedGracefullyAsync());
            await stopped.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"closed after {stopwatch.Elapsed}: by the drain timeout, not by the handler");
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Chargen_Stream_TheBsdPatternOverTheWireUntilTheClientCloses()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("chargen", "Chargen"));
        await using (var client = await server.ConnectAsync("chargen"))
        {
            var count = (3 * Cycle) + 5;
            var received = await client.ReadExactlyAsync(count);
            Assert.Equal(" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n", Encoding.ASCII.GetString(received, 0, 74));
            Assert.Equal(Chargen(0, count), received);
            await client.SendAsync("input is discarded\r\n");
            client.ShutdownSend();
            await client.ReadToEndAsync(); // the FIN stops the stream: what was on its way, then EOF
        }

        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync("kestreltcp_connections_closed_total", ("listener", "chargen"), ("reason", "client")));
    }

    [Fact]
    public async Task Chargen_MaxBytes_ExactlyThatManyThenFin()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("chargen", "Chargen", ("Options:MaxBytes", "100001")));
        await using var client = await server.ConnectAsync("chargen");
        Assert.Equal(Chargen(0, 100_001), await client.ReadToEndAsync());
        await server.WaitForQuietAsync();
        Assert.Equal(1, await server.MetricAsync("kestreltcp_connections_closed_total", ("listener", "chargen"), ("reason", "server")));
        Assert.Equal(100_001, await server.MetricAsync("kestreltcp_bytes_sent_total", ("listener", "chargen")));
    }

    [Fact]
    public async Task Chargen_BytesPerSecond_PacedOverTheWire()
    {
        // 10 kB/s: 1000 bytes every 100 ms, so 3000 bytes take 300 ms.
        await using var server = await TestServer.StartAsync(TestServer.Listener("chargen", "Chargen", ("Options:BytesPerSecond", "10000"), ("Options:MaxBytes", "3000")));
        // Timed from before the connect: the pacing starts at the server's accept, which a client slow to see its
        // connect complete (a loaded machine) would otherwise miss the start of.
        var stopwatch = Stopwatch.StartNew();
        await using var client = await server.ConnectAsync("chargen");
        Assert.Equal(Chargen(0, 3000), await client.ReadToEndAsync());
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Chargen_ClientNeverReads_ServerStopsSendingThenGoesOnWhenItReads()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("chargen", "Chargen"));
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 16 * 1024 };
        await using var client = await TcpTestClient.ConnectAsync(socket, new IPEndPoint(IPAddress.Loopback, server.Port("chargen")));
        var tracked = Assert.Single(await server.OpenConnectionsAsync("chargen"));

        // The sent count stops growing: the socket buffers and the handler's output are full, the handler waits.
        long previous = -1;
        await TestServer.WaitUntilAsync(async () =>
        {
            var now = tracked.Transfer.BytesSent;
            var stalled = now == previous && now > 0;
            previous = now;
            await Task.Delay(200);
            return stalled;
        }, because: "the stream to stall");
        // Bounded by the socket buffers (Linux autotunes a loopback send buffer up to tcp_wmem's maximum, 4 MiB
        // by default) and the 128 KiB of the transport's output, not by what the client failed to read.
        Assert.InRange(previous, 1, 16 * 1024 * 1024);

        // Reading again: the stream goes on, unbroken.
        Assert.Equal(Chargen(0, 2_000_000), await client.ReadExactlyAsync(2_000_000));
    }

    [Fact]
    public async Task Chargen_ServerStops_StreamEndsWithFinBeforeTheDrainTimeout()
    {
        var server = await TestServer.StartAsync(TestServer.Listener("chargen", "Chargen"));
        try
        {
            await using var client = await server.ConnectAsync("chargen");
            await client.ReadExactlyAsync(10_000);
            var stopwatch = Stopwatch.StartNew();
            var stopped = server.RequestStop();
            var rest = await client.ReadToEndAsync();
            Assert.Equal(Chargen(10_000, rest.Length), rest);
            await stopped.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"closed after {stopwatch.Elapsed}: by the drain timeout, not by the handler");
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Qotd_SequentialQuotes_OneQuotePerConnectionInTurnThenFin()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("qotd", "Qotd",
            ("Options:Order", "Sequential"), ("Options:Quotes:0", "one"), ("Options:Quotes:1", "two\nlines")));
        var served = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            await using var client = await server.ConnectAsync("qotd");
            served.Add(await client.ReadToEndTextAsync());
        }

        Assert.Equal(["one\r\n", "two\r\nlines\r\n", "one\r\n"], served);
        await server.WaitForQuietAsync();
        Assert.Equal(3, await server.MetricAsync("kestreltcp_connections_closed_total", ("listener", "qotd"), ("reason", "server")));
    }

    [Fact]
    public async Task Qotd_QuotesFile_FortuneFileWithCrLf()
    {
        var path = _files.Write("fortunes.txt", "The first.\r\n%\r\nThe second,\r\non two lines.\r\n%\r\n");
        await using var server = await TestServer.StartAsync(TestServer.Listener("qotd", "Qotd", ("Options:QuotesFile", path), ("Options:Order", "Sequential")));
        await using (var first = await server.ConnectAsync("qotd"))
        {
            Assert.Equal("The first.\r\n", await first.ReadToEndTextAsync());
        }

        await using var second = await server.ConnectAsync("qotd");
        Assert.Equal("The second,\r\non two lines.\r\n", await second.ReadToEndTextAsync());
    }

    [Fact]
    public async Task Qotd_NoQuotesConfigured_ABuiltInQuote()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("qotd", "Qotd"));
        await using var client = await server.ConnectAsync("qotd");
        Assert.Contains(await client.ReadToEndTextAsync(), QotdOptions.BuiltInQuotes.Select(q => q.Replace("\n", "\r\n") + "\r\n"));
    }

    [Fact]
    public async Task Info_PlainConnection_WhatTheServerSeesThenFin()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("info", "Info"));
        await using var client = await server.ConnectAsync("info");
        var local = (IPEndPoint)client.Socket.LocalEndPoint!;
        var info = Json(await client.ReadToEndTextAsync());

        Assert.Equal("info", info.GetProperty("listener").GetString());
        Assert.Equal("Info", info.GetProperty("handler").GetString());
        Assert.False(string.IsNullOrEmpty(info.GetProperty("connectionId").GetString()));
        Assert.Equal(Environment.MachineName, info.GetProperty("machineName").GetString());
        Assert.Equal("2014-01-29T19:14:15.123Z", info.GetProperty("time").GetString());
        AssertEndPoint(info.GetProperty("client"), "127.0.0.1", local.Port);
        AssertEndPoint(info.GetProperty("server"), "127.0.0.1", server.Port("info"));
        AssertEndPoint(info.GetProperty("peer"), "127.0.0.1", local.Port);
        Assert.Equal(JsonValueKind.Null, info.GetProperty("proxy").ValueKind);
        Assert.Equal(JsonValueKind.Null, info.GetProperty("tls").ValueKind);
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task Info_BehindARealProxyV2Header_ClientIsTheSourcePeerIsTheProxyTlvsShown(string transport)
    {
        await using var server = await TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Transport:Kind"] = transport },
            TestServer.Listener("info", "Info", ("ProxyProtocol:Mode", "V2"), ("ProxyProtocol:TrustedProxies:0", "127.0.0.1")));
        await using var client = await server.ConnectAsync("info");
        var local = (IPEndPoint)client.Socket.LocalEndPoint!;
        await client.SendAsync(ProxyHeaderBytes.V2(ProxyHeaderBytes.Proxy, ProxyHeaderBytes.TcpIPv4,
            ProxyHeaderBytes.IPv4Addresses("203.0.113.7", 51234, "192.0.2.1", 7070),
            ProxyHeaderBytes.Tlv(0x01, "h2"),
            ProxyHeaderBytes.Tlv(0x02, "a.example.com"),
            ProxyHeaderBytes.Tlv(0x05, [0xDE, 0xAD, 0xBE, 0xEF]),
            ProxyHeaderBytes.SslTlv(0x01, 0, ProxyHeaderBytes.Tlv(0x21, "TLSv1.3"), ProxyHeaderBytes.Tlv(0x23, "TLS_AES_128_GCM_SHA256"))));
        var info = Json(await client.ReadToEndTextAsync());

        AssertEndPoint(info.GetProperty("client"), "203.0.113.7", 51234);
        AssertEndPoint(info.GetProperty("server"), "192.0.2.1", 7070);
        AssertEndPoint(info.GetProperty("peer"), "127.0.0.1", local.Port);
        var proxy = info.GetProperty("proxy");
        Assert.Equal(2, proxy.GetProperty("version").GetInt32());
        Assert.Equal("PROXY", proxy.GetProperty("command").GetString());
        AssertEndPoint(proxy.GetProperty("source"), "203.0.113.7", 51234);
        AssertEndPoint(proxy.GetProperty("destination"), "192.0.2.1", 7070);
        Assert.Equal(
            "{\"alpn\":\"h2\",\"authority\":\"a.example.com\",\"uniqueId\":\"deadbeef\",\"ssl\":{\"client\":1,\"verified\":true,\"version\":\"TLSv1.3\",\"cipher\":\"TLS_AES_128_GCM_SHA256\"}}",
            proxy.GetProperty("tlvs").GetRawText());
        Assert.Equal(JsonValueKind.Null, info.GetProperty("tls").ValueKind);
    }

    [Fact]
    public async Task Info_BehindARealProxyV1Header_IPv6ClientNoTlvs()
    {
        await using var server = await TestServer.StartAsync(
            TestServer.Listener("info", "Info", ("ProxyProtocol:Mode", "V1"), ("ProxyProtocol:TrustedProxies:0", "127.0.0.1")));
        await using var client = await server.ConnectAsync("info");
        await client.SendAsync("PROXY TCP6 2001:db8::7 2001:db8::1 40000 7070\r\n");
        var info = Json(await client.ReadToEndTextAsync());

        AssertEndPoint(info.GetProperty("client"), "2001:db8::7", 40000);
        AssertEndPoint(info.GetProperty("server"), "2001:db8::1", 7070);
        Assert.Equal("{\"version\":1,\"command\":\"PROXY\",\"source\":{\"address\":\"2001:db8::7\",\"port\":40000},\"destination\":{\"address\":\"2001:db8::1\",\"port\":7070},\"tlvs\":{}}",
            info.GetProperty("proxy").GetRawText());
    }

    [Fact]
    public async Task Info_OverRealTls_ProtocolCipherServerNameAlpnAndClientCertificate()
    {
        var (certificate, key) = _files.WritePemPair("server", TestPki.Server("a.example.com"), TestPki.Intermediate);
        var ca = _files.Write("ca.pem", TestPki.Ca.CertificatePem);
        await using var server = await TestServer.StartAsync(TestServer.Listener("info", "Info",
            ("Tls:Certificate:Path", certificate), ("Tls:Certificate:KeyPath", key),
            ("Tls:ClientCertificateMode", "RequireCertificate"), ("Tls:ClientCertificateAuthority", ca),
            ("Tls:ApplicationProtocols:0", "kestreltcp-info")));
        await using var client = await TlsTestClient.ConnectAsync(server.Port("info"), "a.example.com", o =>
        {
            o.ClientCertificates = [TestPki.Alice.WithKey()];
            o.ApplicationProtocols = [new SslApplicationProtocol("kestreltcp-info")];
        });
        var local = (IPEndPoint)client.Tcp.Client.LocalEndPoint!;
        var info = Json(await client.ReadLineAsync());

        AssertEndPoint(info.GetProperty("client"), "127.0.0.1", local.Port);
        Assert.Equal(JsonValueKind.Null, info.GetProperty("proxy").ValueKind);
        var tls = info.GetProperty("tls");
        Assert.Equal("Tls13", tls.GetProperty("protocol").GetString());
        Assert.Equal(client.Ssl.NegotiatedCipherSuite.ToString(), tls.GetProperty("cipherSuite").GetString());
        Assert.Equal("a.example.com", tls.GetProperty("serverName").GetString());
        Assert.Equal("kestreltcp-info", tls.GetProperty("applicationProtocol").GetString());
        var alice = TestPki.Alice.Certificate;
        var clientCertificate = tls.GetProperty("clientCertificate");
        Assert.Equal("CN=client-alice, O=KestrelTcp Tests", clientCertificate.GetProperty("subject").GetString());
        Assert.Equal(TestPki.Ca.Subject, clientCertificate.GetProperty("issuer").GetString());
        Assert.Equal(alice.Thumbprint, clientCertificate.GetProperty("thumbprint").GetString());
        Assert.Equal(alice.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"), clientCertificate.GetProperty("notAfter").GetString());
    }

    [Fact]
    public async Task Info_HaProxySendProxyV2InFrontOfTls_BothTheProxyAndTheTls()
    {
        var (certificate, key) = _files.WritePemPair("server", TestPki.Server("a.example.com"), TestPki.Intermediate);
        await using var server = await TestServer.StartAsync(TestServer.Listener("info", "Info",
            ("Tls:Certificate:Path", certificate), ("Tls:Certificate:KeyPath", key),
            ("ProxyProtocol:Mode", "V2"), ("ProxyProtocol:TrustedProxies:0", "127.0.0.1")));
        await using var haproxy = await HaProxy.StartAsync(server.Port("info"), "send-proxy-v2");
        await using var client = await TlsTestClient.ConnectAsync(haproxy.Port, "a.example.com");
        var local = (IPEndPoint)client.Tcp.Client.LocalEndPoint!;
        var info = Json(await client.ReadLineAsync());

        AssertEndPoint(info.GetProperty("client"), "127.0.0.1", local.Port);
        AssertEndPoint(info.GetProperty("server"), "127.0.0.1", haproxy.Port);
        Assert.Equal("127.0.0.1", info.GetProperty("peer").GetProperty("address").GetString());
        Assert.NotEqual(local.Port, info.GetProperty("peer").GetProperty("port").GetInt32());
        Assert.Equal("PROXY", info.GetProperty("proxy").GetProperty("command").GetString());
        Assert.Equal(2, info.GetProperty("proxy").GetProperty("version").GetInt32());
        Assert.Equal("Tls13", info.GetProperty("tls").GetProperty("protocol").GetString());
        Assert.Equal("a.example.com", info.GetProperty("tls").GetProperty("serverName").GetString());
        Assert.Equal(JsonValueKind.Null, info.GetProperty("tls").GetProperty("clientCertificate").ValueKind);
    }

    [Fact]
    public async Task Info_UnixSocketListener_ServerIsThePathClientIsNull()
    {
        var path = Path.Combine(Path.GetTempPath(), $"kestreltcp-{Guid.NewGuid():N}.sock");
        try
        {
            await using var server = await TestServer.StartAsync(new Dictionary<string, string?>
            {
                ["KestrelTcp:Listeners:local:Handler"] = "Info",
                ["KestrelTcp:Listeners:local:UnixSocketPath"] = path,
            });
            await using var client = await TcpTestClient.ConnectAsync(new UnixDomainSocketEndPoint(path));
            var info = Json(await client.ReadToEndTextAsync());
            Assert.Equal("local", info.GetProperty("listener").GetString());
            Assert.Equal(JsonValueKind.Null, info.GetProperty("client").ValueKind);
            Assert.Equal(path, info.GetProperty("server").GetProperty("path").GetString());
            Assert.Equal(JsonValueKind.Null, info.GetProperty("peer").ValueKind);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Options_EveryProblemOfTheNewHandlers_ReportedAtOnceNamingTheKey()
    {
        var problems = KestrelTcpOptionsReaderTests.Problems(KestrelTcpOptionsReaderTests.With(
            ("Listeners:qotd:Handler", "Qotd"), ("Listeners:qotd:Port", "7017"),
            ("Listeners:qotd:Options:Quotes:0", "fine"), ("Listeners:qotd:Options:Quotes:1", "fine"), ("Listeners:qotd:Options:Quotes:2", "fine"),
            ("Listeners:qotd:Options:Quotes:3", new string('q', 600)),
            ("Listeners:qotd:Options:Quotes:4", "tab\there"),
            ("Listeners:qotd:Options:Order", "Shuffled"),
            ("Listeners:chargen:Handler", "Chargen"), ("Listeners:chargen:Port", "7019"),
            ("Listeners:chargen:Options:MaxBytes", "-5"), ("Listeners:chargen:Options:BytesPerSecond", "1e6")));
        Assert.Equal(
        [
            "KestrelTcp:Listeners:chargen:Options:BytesPerSecond: '1e6' is not a whole number of bytes (0 = unlimited)",
            "KestrelTcp:Listeners:chargen:Options:MaxBytes: -5 is negative (0 = until the client closes)",
            "KestrelTcp:Listeners:qotd:Options:Order: 'Shuffled' is not an order (Random, Sequential)",
            "KestrelTcp:Listeners:qotd:Options:Quotes:3: 600 characters (a quote is at most 512 characters, RFC 865)",
            "KestrelTcp:Listeners:qotd:Options:Quotes:4: character U+0009 at position 4 is not allowed (a quote is printable ASCII, CR and LF, RFC 865)",
        ], problems.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Options_QuotesFileProblems_NameTheKeyAndTheFile()
    {
        var empty = _files.Write("empty.txt", "%\n");
        var both = KestrelTcpOptionsReaderTests.Problems(KestrelTcpOptionsReaderTests.With(
            ("Listeners:a:Handler", "Qotd"), ("Listeners:a:Port", "7017"), ("Listeners:a:Options:QuotesFile", empty), ("Listeners:a:Options:Quotes:0", "x"),
            ("Listeners:b:Handler", "Qotd"), ("Listeners:b:Port", "7018"), ("Listeners:b:Options:QuotesFile", empty),
            ("Listeners:c:Handler", "Qotd"), ("Listeners:c:Port", "7020"), ("Listeners:c:Options:QuotesFile", _files.Full("missing.txt"))));
        Assert.Equal(
        [
            "KestrelTcp:Listeners:a:Options:QuotesFile: set together with KestrelTcp:Listeners:a:Options:Quotes; give one or the other",
            $"KestrelTcp:Listeners:b:Options:QuotesFile: '{empty}' holds no quotes (a fortune file: quotes separated by lines holding only %)",
            $"KestrelTcp:Listeners:c:Options:QuotesFile: '{_files.Full("missing.txt")}' not found",
        ], both);
    }

    [Fact]
    public void AppSettings_NewListeners_DisabledOnTheirPortsAndValidWhenEnabled()
    {
        var json = DeploymentFiles.Read("appsettings.json");
        var settings = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build()
            .AsEnumerable().Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value);
        var expected = new[] { ("discard", "Discard", 7009), ("chargen", "Chargen", 7019), ("qotd", "Qotd", 7017), ("info", "Info", 7070) };
        foreach (var (name, handler, port) in expected)
        {
            Assert.Equal(handler, settings[$"KestrelTcp:Listeners:{name}:Handler"]);
            Assert.Equal(port.ToString(), settings[$"KestrelTcp:Listeners:{name}:Port"]);
            Assert.Equal("False", settings[$"KestrelTcp:Listeners:{name}:Enabled"], ignoreCase: true);
            settings[$"KestrelTcp:Listeners:{name}:Enabled"] = "true";
        }

        // Enabled as they stand, they validate: every handler registered, no port clash, default options.
        var options = KestrelTcpOptionsReaderTests.Read(settings);
        Assert.Equal(
            ["chargen Chargen 7019", "discard Discard 7009", "echo Echo 7007", "greeting Greeting 7001", "info Info 7070", "qotd Qotd 7017", "time Time 7013"],
            options.Listeners.Select(l => $"{l.Name} {l.HandlerName} {l.Port}").Order(StringComparer.Ordinal));
        var chargen = options.Listeners.Single(l => l.Name == "chargen").GetHandlerOptions<ChargenOptions>();
        Assert.Equal((0L, 0L), (chargen.MaxBytes, chargen.BytesPerSecond));
        Assert.Equal(QotdOptions.BuiltInQuotes.Count, options.Listeners.Single(l => l.Name == "qotd").GetHandlerOptions<QotdOptions>().Quotes.Count);
    }
}

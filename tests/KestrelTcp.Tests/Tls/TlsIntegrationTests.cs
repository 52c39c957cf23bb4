using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Tests.ProxyProtocol;

namespace KestrelTcp.Tests.Tls;

/// <summary>
/// TLS on the product's own listeners (<c>KestrelTcp:Listeners:{name}:Tls</c>), over real sockets through
/// both transports: the handler sees plain bytes and the TLS details, every failed handshake is a
/// <c>tls_handshake</c> refusal, limits write nothing on a TLS listener, certificates rotate under
/// open connections, HAProxy's <c>send-proxy-v2</c> works in front, <c>openssl s_client</c> talks to it,
/// and <c>Http:Tls</c> serves the management port over HTTPS.
/// </summary>
public sealed class TlsIntegrationTests : IDisposable
{
    private const string Rejected = "kestreltcp_connections_rejected_total";

    private readonly TempDirectory _files = new();

    public static TheoryData<string> Transports => new() { "KestrelTcp", "Kestrel" };

    public void Dispose() => _files.Dispose();

    private (string Key, string? Value)[] Tls(string name = "server", TestCertificate? certificate = null)
    {
        var (path, key) = _files.WritePemPair(name, certificate ?? TestPki.Server("a.example.com"), TestPki.Intermediate);
        return [("Tls:Certificate:Path", path), ("Tls:Certificate:KeyPath", key)];
    }

    private static Dictionary<string, string?> Transport(string kind) => new() { ["KestrelTcp:Transport:Kind"] = kind };

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task TlsEcho_HandlerSeesPlainBytes_CountedAsAccepted(string transport)
    {
        await using var server = await TestServer.StartAsync(Transport(transport), TestServer.Listener("tls", "Echo", Tls()));
        await using (var client = await TlsTestClient.ConnectAsync(server.Port("tls"), "a.example.com"))
        {
            Assert.Equal("hello over tls", await client.EchoAsync("hello over tls"));
            Assert.Equal("CN=a.example.com", client.ServerCertificate!.Subject);
        }

        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_accepted_total", ("listener", "tls"), ("handler", "Echo")));
        Assert.Equal(1, PrometheusText.Value(metrics, "kestreltcp_connections_closed_total", ("listener", "tls"), ("reason", "client")));
        Assert.Equal(0, PrometheusText.Value(metrics, Rejected, ("listener", "tls"), ("reason", "tls_handshake")));
        // The bytes on the wire: the handshake and the records, more than the 15 plain bytes.
        Assert.True(PrometheusText.Value(metrics, "kestreltcp_bytes_received_total", ("listener", "tls")) > 200);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task NotTls_HandshakeFails_CountedAsTlsHandshakeOnly(string transport)
    {
        await using var server = await TestServer.StartAsync(Transport(transport), TestServer.Listener("tls", "Greeting", Tls()));
        await using (var client = await server.ConnectAsync("tls"))
        {
            await client.SendAsync("hello, plain text\r\n");
            Assert.Empty(await client.ReadToEndAsync()); // no banner, nothing
        }

        await AssertRefusedAsync(server, "tls", 1);
    }

    [Fact]
    public async Task HandshakeTimeout_SilentClient_ClosedAndCounted()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("tls", "Echo", [.. Tls(), ("Tls:HandshakeTimeout", "00:00:00.300")]));
        // Timed from before the connect: the handshake timeout runs from the server's accept, which a client slow
        // to see its connect complete (a loaded machine) would otherwise miss the start of.
        var waited = Stopwatch.StartNew();
        await using var client = await server.ConnectAsync("tls");
        Assert.Empty(await client.ReadToEndAsync(TimeSpan.FromSeconds(10)));
        Assert.True(waited.Elapsed >= TimeSpan.FromMilliseconds(250), $"closed after {waited.Elapsed}");
        await AssertRefusedAsync(server, "tls", 1);
    }

    [Fact]
    public async Task ClientCertificateRequired_WrongOrMissing_RefusedAsTlsHandshake()
    {
        var ca = _files.Write("ca.pem", TestPki.Ca.CertificatePem);
        await using var server = await TestServer.StartAsync(TestServer.Listener("tls", "Greeting",
        [
            .. Tls(), ("Tls:ClientCertificateMode", "RequireCertificate"), ("Tls:ClientCertificateAuthority", ca),
            ("Options:Banner", "{TlsProtocol} {ServerName} {ClientCertificate}\r\n"),
        ]));

        await using (var alice = await TlsTestClient.ConnectAsync(server.Port("tls"), "a.example.com", o => o.ClientCertificates = [TestPki.Alice.WithKey()]))
        {
            Assert.Equal("Tls13 a.example.com CN=client-alice, O=KestrelTcp Tests\r\n", await alice.ReadLineAsync());
        }

        await AssertNoBannerAsync(() => TlsTestClient.ConnectAsync(server.Port("tls"), "a.example.com", o => o.ClientCertificates = [TestPki.Mallory.WithKey()]));
        await AssertNoBannerAsync(() => TlsTestClient.ConnectAsync(server.Port("tls"), "a.example.com"));

        await AssertRefusedAsync(server, "tls", 2, accepted: 1);
    }

    [Fact]
    public async Task Templates_WithoutTls_PlaceholdersAreEmpty()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting",
            ("Options:Banner", "[{TlsProtocol}|{ServerName}|{ClientCertificate}]\r\n")));
        await using var client = await server.ConnectAsync("greeting");
        Assert.Equal("[||]\r\n", await client.ReadLineAsync());
    }

    [Fact]
    public async Task MaxConnections_OnTlsListener_RefusalWritesNothing()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("tls", "Greeting", [.. Tls(), ("MaxConnections", "1")]));
        await using var first = await TlsTestClient.ConnectAsync(server.Port("tls"), "a.example.com");
        Assert.StartsWith("Welcome!", await first.ReadLineAsync());

        await using (var second = await server.ConnectAsync("tls"))
        {
            Assert.Empty(await second.ReadToEndAsync()); // not a plain-text "ERR busy" into a TLS client
        }

        Assert.Equal(1, await server.MetricAsync(Rejected, ("listener", "tls"), ("reason", "max_connections")));
        Assert.Equal(0, await server.MetricAsync(Rejected, ("listener", "tls"), ("reason", "tls_handshake")));
    }

    [Fact]
    public async Task CertificateReplaced_NewHandshakesUseItWithin10Seconds_OpenConnectionUntouched()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("tls", "Echo", Tls("rotating", TestPki.Server("a.example.com", variant: 1))));
        await using var open = await TlsTestClient.ConnectAsync(server.Port("tls"), "a.example.com");
        var before = open.ServerCertificate!.Thumbprint;

        var replacement = TestPki.Server("a.example.com", variant: 2);
        _files.WritePemPair("rotating", replacement, TestPki.Intermediate);
        var rotated = Stopwatch.StartNew();
        string now;
        do
        {
            await using var probe = await TlsTestClient.ConnectAsync(server.Port("tls"), "a.example.com");
            now = probe.ServerCertificate!.Thumbprint;
            if (now != replacement.Thumbprint)
            {
                await Task.Delay(100);
            }
        }
        while (now != replacement.Thumbprint && rotated.Elapsed < TimeSpan.FromSeconds(15));

        Assert.Equal(replacement.Thumbprint, now);
        Assert.True(rotated.Elapsed < TimeSpan.FromSeconds(10), $"rotation took {rotated.Elapsed}");
        Assert.NotEqual(before, now);
        Assert.Equal("still here", await open.EchoAsync("still here"));
    }

    [Fact]
    public async Task SendProxyV2InFrontOfTls_HeaderBeforeHandshake_HandlerSeesRealClientAndServerName()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("tls", "Greeting",
        [
            .. Tls(), ("ProxyProtocol:Mode", "V2"), ("ProxyProtocol:TrustedProxies:0", "127.0.0.1"),
            ("Options:Banner", "{RemoteAddress}:{RemotePort} {TlsProtocol} {ServerName}\r\n"),
        ]));
        await using var haproxy = await HaProxy.StartAsync(server.Port("tls"), "send-proxy-v2");

        await using var client = await TlsTestClient.ConnectAsync(haproxy.Port, "a.example.com");
        var local = (IPEndPoint)client.Tcp.Client.LocalEndPoint!;
        Assert.Equal($"{local.Address.MapToIPv4()}:{local.Port} Tls13 a.example.com\r\n", await client.ReadLineAsync());
        Assert.Equal(0, await server.MetricAsync(Rejected, ("listener", "tls"), ("reason", "tls_handshake")));
    }

    [Fact]
    public async Task OpenSslSClient_EchoesOverTls13WithSni()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("tls", "Echo", Tls()));
        var start = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in (string[])["s_client", "-connect", $"127.0.0.1:{server.Port("tls")}", "-servername", "a.example.com", "-tls1_3", "-quiet", "-no_ign_eof"])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync("echo me over openssl\n");
        await process.StandardInput.FlushAsync();

        // The echo, read before closing openssl's input (its EOF would end the session before the answer).
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var echoed = await process.StandardOutput.ReadLineAsync(timeout.Token);
        process.StandardInput.Close();
        await process.WaitForExitAsync(timeout.Token);

        Assert.Equal("echo me over openssl", echoed);
        Assert.Contains("CN = a.example.com", await error); // openssl writes the chain it verified to stderr
    }

    [Fact]
    public async Task HttpTls_ManagementPortServesHttps()
    {
        var (path, key) = _files.WritePemPair("http", TestPki.Server("a.example.com"), TestPki.Intermediate);
        await using var server = await TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Http:Tls:Certificate:Path"] = path, ["KestrelTcp:Http:Tls:Certificate:KeyPath"] = key },
            TestServer.Listener("echo", "Echo"));
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => c?.Subject == "CN=a.example.com" },
        };
        using var https = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{server.Runtime.HttpPort}") };

        using var ready = await https.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        using var http2 = await https.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/health/live") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact });
        Assert.Equal(HttpVersion.Version20, http2.Version); // ALPN offers h2 on the HTTP port
        await Assert.ThrowsAsync<HttpRequestException>(() => server.Http.GetAsync("/health/live")); // no plain HTTP
    }

    [Fact]
    public void Tls_MissingCertificateFile_StopsStartUpNamingTheKey()
    {
        var problems = Configuration.KestrelTcpOptionsReaderTests.Problems(Configuration.KestrelTcpOptionsReaderTests.With(
            ("Listeners:echo:Handler", "Echo"), ("Listeners:echo:Port", "7443"),
            ("Listeners:echo:Tls:Certificate:Path", "/nonexistent/server.pem"), ("Listeners:echo:Tls:Certificate:KeyPath", "/nonexistent/server.key")));
        Assert.Contains(problems, p => p.StartsWith("KestrelTcp:Listeners:echo:Tls:Certificate:Path: ", StringComparison.Ordinal) && p.Contains("/nonexistent/server.pem", StringComparison.Ordinal));
    }

    // In TLS 1.3 the client's handshake completes before the server has judged its certificate: the
    // refusal arrives as an alert (an exception) or a close on the first read, never as a banner.
    private static async Task AssertNoBannerAsync(Func<Task<TlsTestClient>> connect)
    {
        string? line = null;
        try
        {
            await using var client = await connect();
            line = await client.ReadLineAsync();
        }
        catch (Exception ex) when (ex is IOException or AuthenticationException)
        {
        }

        Assert.True(string.IsNullOrEmpty(line), $"served: {line}");
    }

    private static async Task AssertRefusedAsync(TestServer server, string listener, int refused, int accepted = 0)
    {
        await TestServer.WaitUntilAsync(async () => await server.MetricAsync(Rejected, ("listener", listener), ("reason", "tls_handshake")) == refused,
            because: "the failed handshakes to be counted");
        await server.WaitForQuietAsync();
        var metrics = await server.MetricsAsync();
        Assert.Equal(accepted, PrometheusText.Sum(metrics, "kestreltcp_connections_accepted_total", listener));
        Assert.Equal(accepted, PrometheusText.Sum(metrics, "kestreltcp_connections_closed_total", listener));
    }
}

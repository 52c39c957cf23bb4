using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KestrelTcp.Handlers;
using KestrelTcp.Tls;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace KestrelTcp.Tests.Tls;

/// <summary>Kestrel's TLS middleware as <c>UseKestrelTcpTls</c> sets it up, over real loopback sockets, with SslStream and openssl clients.</summary>
public sealed class TlsConnectionExtensionsTests : IDisposable
{
    private readonly TempDirectory _root = new();
    private readonly FakeTimeProvider _time = new();
    private readonly List<TlsListener> _listeners = [];

    public void Dispose()
    {
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }

        _root.Dispose();
    }

    private CertificateSource Pair(string name, TestCertificate certificate, params TestCertificate[] chain)
    {
        var (path, key) = _root.WritePemPair(name, certificate, chain);
        return new CertificateSource(path, key);
    }

    private TlsListener Listener(Func<TlsOptions, TlsOptions>? configure = null)
    {
        var options = new TlsOptions
        {
            Certificate = Pair("default", TestPki.Server("default.test"), TestPki.Intermediate),
            Sni = new Dictionary<string, CertificateSource>(StringComparer.OrdinalIgnoreCase)
            {
                ["a.example.com"] = Pair("a", TestPki.Server("a.example.com"), TestPki.Intermediate),
                ["*.example.org"] = Pair("wild", TestPki.Server("*.example.org"), TestPki.Intermediate),
                ["xn--bcher-kva.example"] = Pair("idn", TestPki.Server("xn--bcher-kva.example"), TestPki.Intermediate),
            },
        };
        var listener = new TlsListener(configure?.Invoke(options) ?? options, "echo-tls", NullLogger.Instance, _time);
        _listeners.Add(listener);
        return listener;
    }

    private string CaFile() => _root.Write("ca.pem", TestPki.Ca.CertificatePem);

    private static Action<SslClientAuthenticationOptions> WithClientCertificate(TestCertificate? certificate) => o =>
    {
        if (certificate is not null)
        {
            o.ClientCertificateContext = SslStreamCertificateContext.Create(certificate.WithKey(), additionalCertificates: null, offline: true);
        }
    };

    /// <summary>Whether a connection is served: handshake, then an echo. A refusal may show in the handshake or, in TLS 1.3, at the first read.</summary>
    private static async Task<bool> ServedAsync(int port, string serverName = "", Action<SslClientAuthenticationOptions>? configure = null)
    {
        try
        {
            await using var client = await TlsTestClient.ConnectAsync(port, serverName, configure);
            return await client.EchoAsync("ping\n") == "ping\n";
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            return false;
        }
    }

    [Theory]
    [InlineData("a.example.com", "CN=a.example.com")]
    [InlineData("x.example.org", "CN=*.example.org")]
    [InlineData("a.b.example.org", "CN=default.test")]
    [InlineData("other.test", "CN=default.test")]
    [InlineData("", "CN=default.test")]
    [InlineData("xn--bcher-kva.example", "CN=xn--bcher-kva.example")]
    [InlineData("bücher.example", "CN=xn--bcher-kva.example")]
    public async Task Handshake_ServerName_PicksCertificate(string serverName, string subject)
    {
        await using var host = await TlsTestHost.StartAsync(Listener());
        await using var client = await TlsTestClient.ConnectAsync(host.Port, serverName);
        Assert.Equal(subject, client.ServerCertificate!.Subject);
        Assert.Equal("ping\n", await client.EchoAsync("ping\n"));
        Assert.Equal(0, host.HandshakeFailures);
    }

    [Fact]
    public async Task Handshake_PemWithIntermediate_ClientBuildsTheChainToTheRoot()
    {
        await using var host = await TlsTestHost.StartAsync(Listener());
        SslPolicyErrors? errors = null;
        await using var client = await TlsTestClient.ConnectAsync(host.Port, "a.example.com", o =>
        {
            o.CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
            o.CertificateChainPolicy.CustomTrustStore.Add(TestPki.Ca.Certificate);
            o.RemoteCertificateValidationCallback = (_, _, _, e) =>
            {
                errors = e;
                return e == SslPolicyErrors.None;
            };
        });
        Assert.Equal(SslPolicyErrors.None, errors);
    }

    [Fact]
    public async Task Handshake_Tls12OnlyListener_RefusesTls13OnlyClientServesTls12()
    {
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { SslProtocols = SslProtocols.Tls12 }));
        await Assert.ThrowsAsync<AuthenticationException>(() => TlsTestClient.ConnectAsync(host.Port, "a.example.com", o => o.EnabledSslProtocols = SslProtocols.Tls13));
        await host.WaitForHandshakeFailuresAsync(1);

        await using var client = await TlsTestClient.ConnectAsync(host.Port, "a.example.com");
        Assert.Equal(SslProtocols.Tls12, client.Ssl.SslProtocol);
        Assert.Equal(1, host.HandshakeFailures);
        Assert.Equal(1, host.Handled);
    }

    [Fact]
    public async Task Handshake_RequireCertificate_OnlyClientsOfTheAuthority()
    {
        var ca = CaFile();
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { ClientCertificateMode = ClientCertificateMode.RequireCertificate, ClientCertificateAuthority = ca }));

        Assert.True(await ServedAsync(host.Port, "a.example.com", WithClientCertificate(TestPki.Alice)));
        Assert.False(await ServedAsync(host.Port, "a.example.com", WithClientCertificate(null)));
        await host.WaitForHandshakeFailuresAsync(1);
        Assert.False(await ServedAsync(host.Port, "a.example.com", WithClientCertificate(TestPki.Mallory)));
        await host.WaitForHandshakeFailuresAsync(2);
        Assert.Equal(1, host.Handled);
    }

    [Fact]
    public async Task Handshake_RequireCertificateWithoutAuthority_SystemRootsDoNotKnowThePrivateCa()
    {
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { ClientCertificateMode = ClientCertificateMode.RequireCertificate }));
        Assert.False(await ServedAsync(host.Port, "a.example.com", WithClientCertificate(TestPki.Alice)));
        await host.WaitForHandshakeFailuresAsync(1);
        Assert.Equal(0, host.Handled);
    }

    [Fact]
    public async Task Handshake_AllowCertificate_WithoutOneServedWithAStrangerOneRefused()
    {
        var ca = CaFile();
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { ClientCertificateMode = ClientCertificateMode.AllowCertificate, ClientCertificateAuthority = ca }));
        Assert.True(await ServedAsync(host.Port, "a.example.com", WithClientCertificate(null)));
        Assert.True(await ServedAsync(host.Port, "a.example.com", WithClientCertificate(TestPki.Alice)));
        Assert.False(await ServedAsync(host.Port, "a.example.com", WithClientCertificate(TestPki.Mallory)));
        await host.WaitForHandshakeFailuresAsync(1);
        Assert.Equal(2, host.Handled);
    }

    [Fact]
    public async Task Handshake_NoApplicationProtocols_ClientOfferingH2GetsNoAlpn()
    {
        await using var host = await TlsTestHost.StartAsync(Listener());
        await using var client = await TlsTestClient.ConnectAsync(host.Port, "a.example.com",
            o => o.ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11]);
        Assert.Equal(default, client.Ssl.NegotiatedApplicationProtocol);
        Assert.Equal("ping\n", await client.EchoAsync("ping\n"));
    }

    [Fact]
    public async Task Handshake_ApplicationProtocols_MatchNegotiatedMismatchRefusedNoneServed()
    {
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { ApplicationProtocols = ["kestreltcp/1"] }));

        await Assert.ThrowsAsync<AuthenticationException>(() => TlsTestClient.ConnectAsync(host.Port, "a.example.com",
            o => o.ApplicationProtocols = [SslApplicationProtocol.Http2]));
        await host.WaitForHandshakeFailuresAsync(1);

        await using (var matching = await TlsTestClient.ConnectAsync(host.Port, "a.example.com",
            o => o.ApplicationProtocols = [SslApplicationProtocol.Http2, new SslApplicationProtocol("kestreltcp/1")]))
        {
            Assert.Equal("kestreltcp/1", matching.Ssl.NegotiatedApplicationProtocol.ToString());
        }

        await using (var silent = await TlsTestClient.ConnectAsync(host.Port, "a.example.com"))
        {
            Assert.Equal(default, silent.Ssl.NegotiatedApplicationProtocol);
            Assert.Equal("ping\n", await silent.EchoAsync("ping\n"));
        }

        Assert.Equal(1, host.HandshakeFailures);
    }

    [Fact]
    public async Task Handshake_ClientSendsNothing_ClosedAfterTheTimeout()
    {
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { HandshakeTimeout = TimeSpan.FromMilliseconds(300) }));
        using var tcp = new TcpClient();
        // From before the connect: the timeout runs from the server's accept (see TlsIntegrationTests).
        var started = Stopwatch.StartNew();
        await tcp.ConnectAsync(IPAddress.Loopback, host.Port);
        var read = await ReadUntilClosedAsync(tcp);
        started.Stop();

        Assert.Equal(0, read);
        Assert.InRange(started.Elapsed, TimeSpan.FromMilliseconds(250), TlsTestHost.Timeout);
        await host.WaitForHandshakeFailuresAsync(1);
        Assert.Equal(0, host.Handled);
    }

    [Fact]
    public async Task Handshake_PlainText_ClosedAndReportedAsFailed()
    {
        await using var host = await TlsTestHost.StartAsync(Listener());
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, host.Port);
        await tcp.GetStream().WriteAsync("HELLO there\r\n"u8.ToArray());
        Assert.Equal(0, await ReadUntilClosedAsync(tcp));
        await host.WaitForHandshakeFailuresAsync(1);
        Assert.Equal(1, host.HandshakeFailures);
        Assert.Equal(0, host.Handled);
    }

    [Fact]
    public async Task Handshake_Succeeds_NoFailureReported()
    {
        await using var host = await TlsTestHost.StartAsync(Listener());
        for (var i = 0; i < 3; i++)
        {
            Assert.True(await ServedAsync(host.Port, "a.example.com"));
        }

        await host.WaitForHandledAsync(3);
        Assert.Equal(0, host.HandshakeFailures);
    }

    [Fact]
    public async Task Reload_OpenConnectionKeepsWorking_NewConnectionSeesNewCertificate()
    {
        var tls = Listener();
        await using var host = await TlsTestHost.StartAsync(tls);
        await using var open = await TlsTestClient.ConnectAsync(host.Port, "a.example.com");
        Assert.Equal("one\n", await open.EchoAsync("one\n"));

        var rotated = TestPki.Server("a.example.com", variant: 7);
        _root.WritePemPair("a", rotated, TestPki.Intermediate);
        _time.Advance(TlsListener.PollInterval);

        Assert.Equal("two\n", await open.EchoAsync("two\n"));
        Assert.Equal(TestPki.Server("a.example.com").Thumbprint, open.ServerCertificate!.Thumbprint);
        await using var fresh = await TlsTestClient.ConnectAsync(host.Port, "a.example.com");
        Assert.Equal(rotated.Thumbprint, fresh.ServerCertificate!.Thumbprint);
        Assert.Equal("three\n", await fresh.EchoAsync("three\n"));
        Assert.Equal("four\n", await open.EchoAsync("four\n"));
    }

    [Theory]
    [InlineData(SslProtocols.Tls13, "a.example.com", true, "Tls13|a.example.com|CN=client-alice, O=KestrelTcp Tests\n")]
    [InlineData(SslProtocols.Tls12, "x.example.org", true, "Tls12|x.example.org|CN=client-alice, O=KestrelTcp Tests\n")]
    [InlineData(SslProtocols.Tls13, "", false, "Tls13||\n")]
    public async Task Template_TlsPlaceholders_FromKestrelsFeatures(SslProtocols protocol, string serverName, bool withCertificate, string expected)
    {
        var ca = CaFile();
        var problems = new List<string>();
        var template = MessageTemplate.Parse("{TlsProtocol}|{ServerName}|{ClientCertificate}\n", allowLine: false, "test", problems);
        Assert.Empty(problems);
        var tls = Listener(o => o with { SslProtocols = protocol, ClientCertificateMode = ClientCertificateMode.AllowCertificate, ClientCertificateAuthority = ca });
        await using var host = await TlsTestHost.StartAsync(tls, async connection =>
        {
            template.Write(connection.Transport.Output, connection, "echo-tls", TimeProvider.System);
            await connection.Transport.Output.FlushAsync();
        });
        await using var client = await TlsTestClient.ConnectAsync(host.Port, serverName, WithClientCertificate(withCertificate ? TestPki.Alice : null));
        Assert.Equal(expected, await client.ReadLineAsync());
    }

    [Fact]
    public async Task HttpsManagementPort_NoApplicationProtocols_OffersH2AndHttp11LikeKestrel()
    {
        var tls = Listener();
        await using var host = await TlsTestHost.StartHttpAsync(tls);
        await using (var client = await TlsTestClient.ConnectAsync(host.Port, "a.example.com",
            o => o.ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11]))
        {
            Assert.Equal(SslApplicationProtocol.Http2, client.Ssl.NegotiatedApplicationProtocol);
        }

        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.Issuer == TestPki.Intermediate.Subject },
        };
        using var http = new HttpClient(handler) { Timeout = TlsTestHost.Timeout };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"https://127.0.0.1:{host.Port}/")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
    }

    private static async Task<int> ReadUntilClosedAsync(TcpClient tcp)
    {
        using var cts = new CancellationTokenSource(TlsTestHost.Timeout);
        var buffer = new byte[1024];
        var total = 0;
        try
        {
            int read;
            while ((read = await tcp.GetStream().ReadAsync(buffer, cts.Token)) > 0)
            {
                total += read;
            }
        }
        catch (IOException)
        {
            // A reset is a close too.
        }

        return total;
    }

    // openssl s_client: another TLS stack's view of the same listener.

    [Fact]
    public async Task OpenSsl_ServerName_PicksCertificateAndOffersNoAlpn()
    {
        await using var host = await TlsTestHost.StartAsync(Listener());
        var (_, output) = await SClientAsync(host.Port, "-servername", "a.example.com", "-alpn", "h2,http/1.1");
        Assert.Contains("0 s:CN = a.example.com", output);
        Assert.Contains("No ALPN negotiated", output);

        (_, output) = await SClientAsync(host.Port, "-servername", "y.example.org");
        Assert.Contains("0 s:CN = *.example.org", output);

        (_, output) = await SClientAsync(host.Port, "-noservername");
        Assert.Contains("0 s:CN = default.test", output);
        await host.WaitForHandledAsync(3);
        Assert.Equal(0, host.HandshakeFailures);
    }

    [Fact]
    public async Task OpenSsl_Alpn_MatchNegotiatedMismatchAlerted()
    {
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { ApplicationProtocols = ["kestreltcp/1", "h2"] }));
        var (_, output) = await SClientAsync(host.Port, "-servername", "a.example.com", "-alpn", "http/1.1,kestreltcp/1");
        Assert.Contains("ALPN protocol: kestreltcp/1", output);

        var (exitCode, refused) = await SClientAsync(host.Port, "-servername", "a.example.com", "-alpn", "http/1.1");
        Assert.NotEqual(0, exitCode);
        Assert.Contains("no application protocol", refused);
        await host.WaitForHandshakeFailuresAsync(1);
    }

    [Fact]
    public async Task OpenSsl_ProtocolPinning_Tls13OnlyRefusesTls12()
    {
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { SslProtocols = SslProtocols.Tls13 }));
        var (_, output) = await SClientAsync(host.Port, "-servername", "a.example.com", "-tls1_3");
        Assert.Contains("New, TLSv1.3", output);

        var (exitCode, _) = await SClientAsync(host.Port, "-servername", "a.example.com", "-tls1_2");
        Assert.NotEqual(0, exitCode);
        await host.WaitForHandshakeFailuresAsync(1);
        Assert.Equal(1, host.Handled);
    }

    [Fact]
    public async Task OpenSsl_ClientCertificate_RequiredAndChecked()
    {
        var ca = CaFile();
        var (aliceCertificate, aliceKey) = _root.WritePemPair("alice", TestPki.Alice);
        var (malloryCertificate, malloryKey) = _root.WritePemPair("mallory", TestPki.Mallory);
        await using var host = await TlsTestHost.StartAsync(Listener(o => o with { ClientCertificateMode = ClientCertificateMode.RequireCertificate, ClientCertificateAuthority = ca }));

        foreach (var version in new[] { "-tls1_2", "-tls1_3" })
        {
            var handled = host.Handled;
            var failures = host.HandshakeFailures;
            await SClientAsync(host.Port, "-servername", "a.example.com", version, "-cert", aliceCertificate, "-key", aliceKey);
            await host.WaitForHandledAsync(handled + 1);

            await SClientAsync(host.Port, "-servername", "a.example.com", version);
            await host.WaitForHandshakeFailuresAsync(failures + 1);

            await SClientAsync(host.Port, "-servername", "a.example.com", version, "-cert", malloryCertificate, "-key", malloryKey);
            await host.WaitForHandshakeFailuresAsync(failures + 2);
            Assert.Equal(handled + 1, host.Handled);
        }
    }

    /// <summary>Runs <c>openssl s_client</c> against the host with its input closed: it handshakes, prints what it got, and leaves.</summary>
    private static async Task<(int ExitCode, string Output)> SClientAsync(int port, params string[] arguments)
    {
        var start = new ProcessStartInfo(OpenSslTool.OpenSsl)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["s_client", "-connect", $"127.0.0.1:{port}", .. arguments])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TlsTestHost.Timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"openssl s_client {string.Join(' ', arguments)} did not finish in {TlsTestHost.Timeout.TotalSeconds} s");
        }

        return (process.ExitCode, await output + await error);
    }
}

/// <summary>Where the tests find openssl (the test script installs it where it is missing; a test never skips for want of it).</summary>
internal static class OpenSslTool
{
    public const string OpenSsl = "openssl";
}

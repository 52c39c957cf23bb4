using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Deployment;

/// <summary>
/// The server published exactly as the Dockerfile's build stage publishes it, started with the image's
/// ENTRYPOINT and ENV (every port moved to a free loopback port): what <c>docker run</c> would do, minus the engine.
/// </summary>
public class PublishedServerTests(PublishedImage image) : IClassFixture<PublishedImage>
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan IoTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan DockerStopTimeout = TimeSpan.FromSeconds(10);

    private readonly AppSettings settings = AppSettings.Load();

    [Fact]
    public void Publish_BuildStage_OutputHoldsTheEntrypointTheHealthCheckAndAppSettings()
    {
        Assert.True(File.Exists(image.Entrypoint[0]) || image.Entrypoint[0] == "dotnet", $"ENTRYPOINT {image.Entrypoint[0]} is not in the published output:\n{image.BuildLog}");
        Assert.True(File.Exists(image.HealthCheck[0]) || image.HealthCheck[0] == "dotnet", $"HEALTHCHECK {image.HealthCheck[0]} is not in the published output");
        Assert.Equal(DeploymentFiles.Read("appsettings.json"), File.ReadAllText(Path.Combine(image.AppDirectory, "appsettings.json")));
    }

    [Fact]
    public void Publish_BuildStage_NativeAotForThisMachinesArchitecture() =>
        PublishedBinary.AssertNativeAotFor(image.AppDirectory, image.TargetArchitecture);

    [Fact]
    public async Task Entrypoint_ImageEnvironment_EveryExposedPortAnswers()
    {
        var (environment, ports) = image.FreePortOverrides(settings);
        using var server = image.Start(environment);
        await server.WaitUntilReadyAsync(ports[settings.HttpPort], StartTimeout);

        foreach (var (exposed, port) in ports)
        {
            var section = settings.PortSections[exposed];
            if (exposed == settings.HttpPort)
            {
                await AssertManagementPortAnswers(port);
                continue;
            }

            var name = section.Split(':')[^1];
            var handler = settings.Listeners.Single(l => l.Name == name).Handler;
            switch (handler)
            {
                case "Echo":
                    await AssertEchoAnswers(port);
                    break;
                case "Time":
                    await AssertTimeAnswers(name, port);
                    break;
                case "Greeting":
                    await AssertGreetingAnswers(name, port);
                    break;
                default:
                    Assert.Fail($"EXPOSE {exposed}: no check for handler {handler}");
                    break;
            }
        }
    }

    [Fact]
    public async Task Entrypoint_ImageEnvironment_LogsEveryListenerToStdoutWithoutWarnings()
    {
        var (environment, ports) = image.FreePortOverrides(settings);
        using var server = image.Start(environment);
        await server.WaitUntilReadyAsync(ports[settings.HttpPort], StartTimeout);

        var stdout = await WaitForOutputAsync(server, "Health and metrics on");

        foreach (var listener in settings.Listeners)
        {
            Assert.Contains($"Listener {listener.Name} ({listener.Handler}) listening on tcp://127.0.0.1:{ports[listener.Port]}", stdout);
        }

        // e.g. Kestrel's "Overriding address(es) 'http://*:8080'" when the base image's ASPNETCORE_HTTP_PORTS is left set.
        Assert.DoesNotContain(" WRN]", stdout);
        Assert.DoesNotContain(" ERR]", stdout);
        Assert.Equal("", server.StandardError);
    }

    /// <summary>
    /// What a trimmed, ahead-of-time compiled server could lose without a build warning saying so: TLS from PEM
    /// files, the PROXY header's client as the remote, Info's JSON, a Unix socket, the JSON of /health, /connections and /dashboard/data,
    /// every meter on /metrics, the dashboard page, Serilog's File sink and compact JSON from the Serilog
    /// section: all used at once, through the image's ENTRYPOINT, configured as <c>docker run -e</c> would.
    /// </summary>
    [Fact]
    public async Task Entrypoint_EveryFeatureAtOnce_WorksInThePublishedServer()
    {
        var folder = Directory.CreateTempSubdirectory("kestreltcp-published-").FullName;
        try
        {
            var certificate = KestrelTcp.Tests.Tls.TestPki.Server("localhost");
            File.WriteAllText(Path.Combine(folder, "server.pem"), certificate.CertificatePem);
            File.WriteAllText(Path.Combine(folder, "server.key"), certificate.KeyPem);
            var log = Path.Combine(folder, "log.json");
            var (environment, ports) = image.FreePortOverrides(settings);
            var free = PublishedImage.FreePorts(3);
            var (tlsPort, proxyPort, infoPort) = (free[0], free[1], free[2]);
            var unixSocket = Path.Combine(folder, "echo.sock");
            foreach (var (key, value) in new Dictionary<string, string>
            {
                ["KestrelTcp__Listeners__echotls__Handler"] = "Echo",
                ["KestrelTcp__Listeners__echotls__Address"] = "127.0.0.1",
                ["KestrelTcp__Listeners__echotls__Port"] = tlsPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["KestrelTcp__Listeners__echotls__Tls__Certificate__Path"] = Path.Combine(folder, "server.pem"),
                ["KestrelTcp__Listeners__echotls__Tls__Certificate__KeyPath"] = Path.Combine(folder, "server.key"),
                ["KestrelTcp__Listeners__echoproxy__Handler"] = "Echo",
                ["KestrelTcp__Listeners__echoproxy__Address"] = "127.0.0.1",
                ["KestrelTcp__Listeners__echoproxy__Port"] = proxyPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["KestrelTcp__Listeners__echoproxy__ProxyProtocol__Mode"] = "V1",
                ["KestrelTcp__Listeners__echoproxy__ProxyProtocol__TrustedProxies__0"] = "127.0.0.1",
                ["KestrelTcp__Listeners__info__Enabled"] = "true",
                ["KestrelTcp__Listeners__info__Address"] = "127.0.0.1",
                ["KestrelTcp__Listeners__info__Port"] = infoPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["KestrelTcp__Listeners__echounix__Handler"] = "Echo",
                ["KestrelTcp__Listeners__echounix__UnixSocketPath"] = unixSocket,
                ["Serilog__WriteTo__0__Name"] = "File",
                ["Serilog__WriteTo__0__Args__path"] = log,
                ["Serilog__WriteTo__0__Args__formatter"] = "Serilog.Formatting.Compact.CompactJsonFormatter, Serilog.Formatting.Compact",
            })
            {
                environment[key] = value;
            }

            using var server = image.Start(environment);
            var httpPort = ports[settings.HttpPort];
            await server.WaitUntilReadyAsync(httpPort, StartTimeout);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = IoTimeout };

            // TLS: the handshake with the PEM pair, then echo through it.
            using (var tls = await ConnectAsync(tlsPort))
            await using (var ssl = new System.Net.Security.SslStream(new NetworkStream(tls), false,
                (_, presented, _, _) => presented?.GetCertHashString() == certificate.Thumbprint))
            {
                using var timeout = new CancellationTokenSource(IoTimeout);
                await ssl.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions { TargetHost = "localhost" }, timeout.Token);
                Assert.Equal(certificate.Thumbprint, new System.Security.Cryptography.X509Certificates.X509Certificate2(ssl.RemoteCertificate!).Thumbprint);
                await ssl.WriteAsync("secret\n"u8.ToArray(), timeout.Token);
                var echoed = new byte[7];
                await ssl.ReadExactlyAsync(echoed, timeout.Token);
                Assert.Equal("secret\n", Encoding.ASCII.GetString(echoed));
            }

            // Info: one JSON object, written with Utf8JsonWriter.
            using (var info = await ConnectAsync(infoPort))
            using (var infoStream = new NetworkStream(info))
            using (var described = JsonDocument.Parse(await ReadToEndAsync(infoStream)))
            {
                Assert.Equal("info", described.RootElement.GetProperty("listener").GetString());
            }

            // A Unix domain socket listener.
            using (var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                await unix.ConnectAsync(new UnixDomainSocketEndPoint(unixSocket));
                using var unixStream = new NetworkStream(unix);
                await unixStream.WriteAsync("local\n"u8.ToArray());
                Assert.Equal("local\n", await ReadLineAsync(unixStream));
            }

            // PROXY v1: the header's client is the connection's remote on /connections and the dashboard.
            using var proxied = await ConnectAsync(proxyPort);
            using var proxiedStream = new NetworkStream(proxied);
            await proxiedStream.WriteAsync("PROXY TCP4 192.0.2.10 192.0.2.20 5555 7007\r\nping\n"u8.ToArray());
            Assert.Equal("ping\n", await ReadLineAsync(proxiedStream));

            using (var connections = JsonDocument.Parse(await http.GetStringAsync("/connections")))
            {
                var listener = connections.RootElement.GetProperty("listeners").EnumerateArray().Single(l => l.GetProperty("name").GetString() == "echoproxy");
                Assert.Equal(1, listener.GetProperty("activeConnections").GetInt32());
                var connection = Assert.Single(listener.GetProperty("connections").EnumerateArray());
                Assert.Equal("192.0.2.10:5555", connection.GetProperty("remote").GetString());
                Assert.StartsWith("127.0.0.1:", connection.GetProperty("peer").GetString(), StringComparison.Ordinal);
                Assert.Equal(5, connection.GetProperty("bytesSent").GetInt64());
            }

            using (var dashboard = JsonDocument.Parse(await http.GetStringAsync("/dashboard/data")))
            {
                Assert.Equal("ready", dashboard.RootElement.GetProperty("server").GetProperty("state").GetString());
                var listener = dashboard.RootElement.GetProperty("listeners").EnumerateArray().Single(l => l.GetProperty("name").GetString() == "echotls");
                Assert.Equal(1, listener.GetProperty("acceptedTotal").GetInt64());
                Assert.Equal("192.0.2.10:5555", dashboard.RootElement.GetProperty("listeners").EnumerateArray()
                    .Single(l => l.GetProperty("name").GetString() == "echoproxy").GetProperty("connections")[0].GetProperty("remote").GetString());
            }

            using (var health = JsonDocument.Parse(await http.GetStringAsync("/health")))
            {
                Assert.Equal("Healthy", health.RootElement.GetProperty("status").GetString());
                var names = health.RootElement.GetProperty("listeners").EnumerateArray().Select(l => l.GetProperty("name").GetString()).ToList();
                Assert.Contains("echotls", names);
                Assert.Contains("echoproxy", names);
            }

            var metrics = await http.GetStringAsync("/metrics");
            Assert.Contains("kestreltcp_connections_accepted_total{handler=\"Echo\",listener=\"echotls\"} 1", metrics, StringComparison.Ordinal);
            Assert.Contains("\ndotnet_gc_", metrics, StringComparison.Ordinal);
            Assert.Contains("\nkestrel_", metrics, StringComparison.Ordinal);
            using (var page = await http.GetAsync("/"))
            {
                Assert.Equal(HttpStatusCode.OK, page.StatusCode);
                Assert.Contains("<html", await page.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
            }

            proxied.Shutdown(SocketShutdown.Send);
            await ReadToEndAsync(proxiedStream);
            server.Terminate();
            Assert.Equal(0, await server.WaitForExitAsync(DockerStopTimeout));

            // The File sink replaced the console: the close events are compact JSON in the file, stdout is empty.
            Assert.Equal("", server.StandardOutput);
            var events = File.ReadAllLines(log).Select(line => JsonDocument.Parse(line).RootElement).ToList();
            var closed = events.Where(e => e.TryGetProperty("Reason", out _)).ToList();
            Assert.Contains(closed, e => e.GetProperty("Listener").GetString() == "echotls" && e.GetProperty("Reason").GetString() == "Client");
            Assert.Contains(closed, e => e.GetProperty("Listener").GetString() == "echoproxy" && e.GetProperty("Remote").GetString() == "192.0.2.10:5555");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The OTLP push from the published server, both protocols (the JIT build's own test: <see cref="Diagnostics.OtlpTests"/>).</summary>
    [Theory]
    [InlineData("http/protobuf")]
    [InlineData("grpc")]
    public async Task Entrypoint_OtlpEndpointSet_SeriesArriveAtTheReceiver(string protocol)
    {
        await using var receiver = await Diagnostics.OtlpTests.OtlpReceiver.StartAsync(grpc: protocol == "grpc");
        var (environment, ports) = image.FreePortOverrides(settings);
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint;
        environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol;
        environment["OTEL_METRIC_EXPORT_INTERVAL"] = "200";
        using var server = image.Start(environment);
        await server.WaitUntilReadyAsync(ports[settings.HttpPort], StartTimeout);

        await TestServer.WaitUntilAsync(
            () => Task.FromResult(receiver.Exports.Any(e => e.Contains("kestreltcp.connections.accepted", StringComparison.Ordinal))), because: "an OTLP export with our series");
        Assert.Contains(receiver.Exports, e => e.Contains("kestreltcp.connections.accepted", StringComparison.Ordinal));
        Assert.Equal(protocol == "grpc" ? "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" : "/v1/metrics", receiver.Paths.First());
    }

    [Fact]
    public async Task HealthCheck_ServerReady_ExitsZero()
    {
        var (environment, ports) = image.FreePortOverrides(settings);
        using var server = image.Start(environment);
        await server.WaitUntilReadyAsync(ports[settings.HttpPort], StartTimeout);

        var (exitCode, output) = await image.RunHealthCheckAsync(environment);

        Assert.True(exitCode == ExitCodes.Success, output);
        Assert.Contains($"http://127.0.0.1:{ports[settings.HttpPort]}/health/ready: 200", output);
    }

    [Fact]
    public async Task HealthCheck_NothingListening_ExitsOne()
    {
        var (environment, _) = image.FreePortOverrides(settings);

        var (exitCode, output) = await image.RunHealthCheckAsync(environment);

        Assert.True(exitCode == ExitCodes.Unhealthy, output);
    }

    [Fact]
    public async Task Sigterm_OpenConnections_DrainedAndExitZeroInsideDockerStopTimeout()
    {
        var (environment, ports) = image.FreePortOverrides(settings);
        using var server = image.Start(environment);
        await server.WaitUntilReadyAsync(ports[settings.HttpPort], StartTimeout);
        var greetingPort = ports[settings.Listeners.First(l => l.Handler == "Greeting").Port];
        var echoPort = ports[settings.Listeners.First(l => l.Handler == "Echo").Port];

        using var greeting = await ConnectAsync(greetingPort);
        using var greetingStream = new NetworkStream(greeting);
        await ReadLineAsync(greetingStream);
        using var echo = await ConnectAsync(echoPort);
        // Both accepted by the server, not only by the kernel: one still in the listen backlog when the drain
        // begins is refused, as docker stop's SIGTERM means it to be, and would have nothing to drain.
        using (var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ports[settings.HttpPort]}"), Timeout = IoTimeout })
        {
            await TestServer.WaitUntilAsync(async () =>
            {
                using var health = JsonDocument.Parse(await http.GetStringAsync("/health"));
                return health.RootElement.GetProperty("listeners").EnumerateArray().Sum(l => l.GetProperty("activeConnections").GetInt32()) == 2;
            }, because: "the greeting and echo connections open on the server");
        }

        var pending = Encoding.ASCII.GetBytes("still in flight");
        await echo.SendAsync(pending);

        var stopwatch = Stopwatch.StartNew();
        server.Terminate();

        Assert.Equal("Server shutting down\r\n", Encoding.UTF8.GetString(await ReadToEndAsync(greetingStream)));
        Assert.Equal(pending, await ReadToEndAsync(new NetworkStream(echo)));
        Assert.Equal(ExitCodes.Success, await server.WaitForExitAsync(DockerStopTimeout));
        Assert.True(stopwatch.Elapsed < DockerStopTimeout, $"took {stopwatch.Elapsed}");
        var stdout = await WaitForOutputAsync(server, "drain finished");
        Assert.Contains("draining 2 open connection(s)", stdout);
        Assert.Contains("0 connection(s) aborted", stdout);
    }

    private static async Task AssertManagementPortAnswers(int port)
    {
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = IoTimeout };
        Assert.Equal("Healthy", await client.GetStringAsync("/health/live"));
        Assert.Equal("Healthy", await client.GetStringAsync("/health/ready"));
        using var metrics = await client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Equal("text/plain; version=0.0.4", metrics.Content.Headers.ContentType!.ToString().Split("; charset")[0]);
    }

    private static async Task AssertEchoAnswers(int port)
    {
        byte[] payload = [0, 1, 2, 0xFF, (byte)'\r', (byte)'\n', .. Encoding.UTF8.GetBytes("échø")];
        using var socket = await ConnectAsync(port);
        using var stream = new NetworkStream(socket);
        await socket.SendAsync(payload);
        socket.Shutdown(SocketShutdown.Send);

        Assert.Equal(payload, await ReadToEndAsync(stream));
    }

    private async Task AssertTimeAnswers(string listener, int port)
    {
        using var socket = await ConnectAsync(port);
        var reply = Encoding.ASCII.GetString(await ReadToEndAsync(new NetworkStream(socket)));

        var format = settings.Section.GetProperty("Listeners").GetProperty(listener).TryGetProperty("Options", out var options)
            && options.TryGetProperty("Format", out var f) ? f.GetString() : "ctime";
        Assert.Equal("ctime", format);
        Assert.Matches(@"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d \d{4}\r\n$", reply);
    }

    private async Task AssertGreetingAnswers(string listener, int port)
    {
        var banner = settings.Section.GetProperty("Listeners").GetProperty(listener).GetProperty("Options").GetProperty("Banner").GetString()!
            .Replace("{LocalAddress}", "127.0.0.1").Replace("{LocalPort}", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var socket = await ConnectAsync(port);
        using var stream = new NetworkStream(socket);

        Assert.Equal(banner, await ReadLineAsync(stream));
    }

    private static async Task<Socket> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(IoTimeout);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
        return socket;
    }

    private static async Task<string> ReadLineAsync(NetworkStream stream)
    {
        using var timeout = new CancellationTokenSource(IoTimeout);
        var line = new List<byte>();
        var one = new byte[1];
        while (line.Count == 0 || line[^1] != '\n')
        {
            Assert.True(await stream.ReadAsync(one, timeout.Token) == 1, $"connection closed after '{Encoding.UTF8.GetString([.. line])}'");
            line.Add(one[0]);
        }

        return Encoding.UTF8.GetString([.. line]);
    }

    private static async Task<byte[]> ReadToEndAsync(NetworkStream stream)
    {
        using var timeout = new CancellationTokenSource(IoTimeout);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, timeout.Token);
        return buffer.ToArray();
    }

    // The console sink is asynchronous: a line can trail the event that caused it by a moment.
    private static async Task<string> WaitForOutputAsync(ServerProcess server, string text)
    {
        var deadline = Stopwatch.StartNew();
        while (!server.StandardOutput.Contains(text) && deadline.Elapsed < IoTimeout)
        {
            await Task.Delay(20);
        }

        Assert.Contains(text, server.StandardOutput);
        return server.StandardOutput;
    }
}

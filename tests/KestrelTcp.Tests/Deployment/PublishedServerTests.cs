using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using KestrelTcp.Hosting;

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
        // Framework-dependent on the aspnet image: the runtime comes from the base image, not the publish output.
        Assert.False(File.Exists(Path.Combine(image.AppDirectory, "System.Private.CoreLib.dll")));
    }

    [Fact]
    public void Publish_BuildStage_ReadyToRunForThisMachinesArchitecture()
    {
        PublishedBinary.AssertApphostFor(image.Entrypoint[0], image.TargetArchitecture);
        PublishedBinary.AssertReadyToRunFor(image.AppDirectory, image.TargetArchitecture);
        PublishedBinary.AssertDepsTargetFor(image.AppDirectory, image.TargetArchitecture);
    }

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

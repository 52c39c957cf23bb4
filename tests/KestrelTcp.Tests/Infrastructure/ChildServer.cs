using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using KestrelTcp.Tests.Deployment;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>
/// The built server (<c>src/KestrelTcp/bin/&lt;Configuration&gt;/net10.0/KestrelTcp.dll</c>) run as a child
/// process, every port moved to a free loopback port by command-line overrides: for what only a real
/// process shows (signals, exit codes, its own memory).
/// </summary>
public sealed class ChildServer : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);

    private readonly ServerProcess _process;

    private ChildServer(ServerProcess process, int httpPort, IReadOnlyDictionary<string, int> ports)
    {
        _process = process;
        HttpPort = httpPort;
        Ports = ports;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(5) };
    }

    public int HttpPort { get; }

    /// <summary>The port of each listener by name.</summary>
    public IReadOnlyDictionary<string, int> Ports { get; }

    public HttpClient Http { get; }

    public int Pid => _process.Id;

    public string Output => _process.Output;

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Starts the server with the default listeners (echo, time, greeting) on free ports plus
    /// <paramref name="settings"/> (keys as in configuration, e.g. <c>KestrelTcp:Shutdown:Delay</c>), and waits until ready.
    /// </summary>
    public static async Task<ChildServer> StartAsync(params (string Key, string Value)[] settings)
    {
        string[] listeners = ["echo", "time", "greeting"];
        var free = PublishedImage.FreePorts(listeners.Length + 1);
        var ports = listeners.Select((name, i) => (name, port: free[i + 1])).ToDictionary(p => p.name, p => p.port);
        var arguments = new List<string> { "exec", ServerDll() };
        void Set(string key, string value) => arguments.Add($"--{key}={value}");
        Set("KestrelTcp:Http:Port", free[0].ToString(CultureInfo.InvariantCulture));
        Set("KestrelTcp:Http:Address", "127.0.0.1");
        foreach (var (name, port) in ports)
        {
            Set($"KestrelTcp:Listeners:{name}:Port", port.ToString(CultureInfo.InvariantCulture));
            Set($"KestrelTcp:Listeners:{name}:Address", "127.0.0.1");
        }

        Set("Serilog:MinimumLevel", "Information");
        foreach (var (key, value) in settings)
        {
            Set(key, value);
        }

        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Where(e => !((string)e.Key).StartsWith("ASPNETCORE_", StringComparison.Ordinal) && !((string)e.Key).StartsWith("KestrelTcp__", StringComparison.Ordinal))
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        environment["DOTNET_ENVIRONMENT"] = "Production";
        var process = ServerProcess.Start(["dotnet", .. arguments], Path.GetDirectoryName(ServerDll())!, environment);
        var server = new ChildServer(process, free[0], ports);
        try
        {
            await process.WaitUntilReadyAsync(free[0], StartTimeout);
        }
        catch
        {
            server.Dispose();
            throw;
        }

        return server;
    }

    public Task<TcpTestClient> ConnectAsync(string listener) => TcpTestClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Ports[listener]));

    public async Task<string> MetricsAsync() => await Http.GetStringAsync("/metrics");

    /// <summary>The HTTP status of <paramref name="path"/>, or null when nothing answers.</summary>
    public async Task<HttpStatusCode?> StatusAsync(string path)
    {
        try
        {
            using var response = await Http.GetAsync(path);
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
        catch (TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>The server's resident set size (VmRSS), in bytes.</summary>
    public long ResidentBytes()
    {
        var line = File.ReadLines($"/proc/{Pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>SIGTERM, as <c>docker stop</c> and Kubernetes send.</summary>
    public void Terminate() => _process.Terminate();

    public Task<int> WaitForExitAsync(TimeSpan timeout) => _process.WaitForExitAsync(timeout);

    public void Dispose()
    {
        Http.Dispose();
        _process.Dispose();
    }

    /// <summary>The server built alongside these tests, in the same configuration.</summary>
    public static string ServerDll()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "KestrelTcp.sln")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        var configuration = typeof(ChildServer).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        var dll = Path.Combine(directory.FullName, "src", "KestrelTcp", "bin", configuration, "net10.0", "KestrelTcp.dll");
        Assert.True(File.Exists(dll), $"{dll} is not built");
        return dll;
    }
}

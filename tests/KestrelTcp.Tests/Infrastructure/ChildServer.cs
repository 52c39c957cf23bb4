using System.Globalization;
using System.Net;
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

    public string StandardOutput => _process.StandardOutput;

    public string StandardError => _process.StandardError;

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Starts the server with the default listeners (echo, time, greeting) on free ports plus
    /// <paramref name="settings"/> (keys as in configuration, e.g. <c>KestrelTcp:Shutdown:Delay</c>), and waits until ready.
    /// </summary>
    public static Task<ChildServer> StartAsync(params (string Key, string Value)[] settings) => StartAsync(null, settings);

    /// <summary>As <see cref="StartAsync(ValueTuple{string, string}[])"/>, with <paramref name="environment"/> added to the process's environment.</summary>
    public static async Task<ChildServer> StartAsync(IReadOnlyDictionary<string, string>? environment, params (string Key, string Value)[] settings)
    {
        // The free ports are found here and bound by the child a moment later: another test's bind of port 0 can
        // take one in between (seen once on CI). That start, and only that, is retried on fresh ports.
        for (var attempt = 1; ; attempt++)
        {
            var (arguments, httpPort, ports) = BuiltServer.FreePortArguments();
            arguments.Add("--Serilog:MinimumLevel=Information");
            arguments.AddRange(settings.Select(s => $"--{s.Key}={s.Value}"));
            var process = BuiltServer.Start(arguments, environment);
            var server = new ChildServer(process, httpPort, ports);
            try
            {
                await process.WaitUntilReadyAsync(httpPort, StartTimeout);
                return server;
            }
            catch (Exception ex) when (attempt < 3 && ex.Message.Contains("address already in use", StringComparison.Ordinal))
            {
                server.Dispose();
            }
            catch
            {
                server.Dispose();
                throw;
            }
        }
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
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>
/// The real server (Program, real Kestrel via UseKestrel()) on loopback port 0, configured in
/// memory. Listeners are given as "name" => ("Handler", extra settings relative to the listener).
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplicationFactory<Program> _factory;

    private TestServer(WebApplicationFactory<Program> factory)
    {
        _factory = factory;
        Runtime = factory.Services.GetRequiredService<KestrelTcpRuntime>();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Runtime.HttpPort}"), Timeout = TimeSpan.FromSeconds(10) };
    }

    internal KestrelTcpRuntime Runtime { get; }

    public HttpClient Http { get; }

    public IServiceProvider Services => _factory.Services;

    public static Dictionary<string, string?> Listener(string name, string handler, params (string Key, string? Value)[] settings)
    {
        var result = new Dictionary<string, string?>
        {
            [$"KestrelTcp:Listeners:{name}:Handler"] = handler,
            [$"KestrelTcp:Listeners:{name}:Address"] = "127.0.0.1",
            [$"KestrelTcp:Listeners:{name}:Port"] = "0",
        };
        foreach (var (key, value) in settings)
        {
            result[$"KestrelTcp:Listeners:{name}:{key}"] = value;
        }

        return result;
    }

    /// <summary>
    /// Settings that let every event through Serilog (the console stays quiet at Warning otherwise):
    /// for tests that capture Debug events with <see cref="LogCapture"/>.
    /// </summary>
    public static Dictionary<string, string?> VerboseLogs => new() { ["Serilog:MinimumLevel"] = "Verbose" };

    public static Task<TestServer> StartAsync(params Dictionary<string, string?>[] settings) => StartAsync(settings, null);

    public static Task<TestServer> StartAsync(IEnumerable<Dictionary<string, string?>> settings, Action<IServiceCollection>? services)
    {
        var all = new Dictionary<string, string?>
        {
            ["KestrelTcp:Http:Address"] = "127.0.0.1",
            ["KestrelTcp:Http:Port"] = "0",
            ["KestrelTcp:Shutdown:DrainTimeout"] = "00:00:02",
            ["Serilog:MinimumLevel"] = "Warning",
        };
        foreach (var part in settings)
        {
            foreach (var (key, value) in part)
            {
                all[key] = value;
            }
        }

        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseEnvironment("Testing");
            builder.ConfigureAppConfiguration((_, config) => config.AddInMemoryCollection(all));
            if (services is not null)
            {
                builder.ConfigureServices(services);
            }
        });
        factory.UseKestrel();
        factory.StartServer();
        return Task.FromResult(new TestServer(factory));
    }

    /// <summary>The port a listener actually bound.</summary>
    public int Port(string listener) =>
        Runtime.Find(listener)?.ListenOptions?.IPEndPoint?.Port ?? throw new InvalidOperationException($"No listener {listener}");

    public Task<TcpTestClient> ConnectAsync(string listener) => TcpTestClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port(listener)));

    public async Task<string> MetricsAsync() => await Http.GetStringAsync("/metrics");

    /// <summary>One sample of /metrics, e.g. Metric("kestreltcp_connections_accepted_total", ("listener","echo"), ("handler","Echo")).</summary>
    public async Task<double> MetricAsync(string name, params (string Name, string Value)[] labels) =>
        PrometheusText.Value(await MetricsAsync(), name, labels);

    /// <summary>GETs a JSON endpoint whatever its status code (/health answers 503 when not ready).</summary>
    public async Task<JsonElement> JsonAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>Waits until <paramref name="condition"/> holds, polling, at most <paramref name="timeout"/> (default 10 s).</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? because = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Condition not met in time: {because}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>Waits until every listener's open set is empty (all closes recorded) and every place under the limits given back.</summary>
    public Task WaitForQuietAsync() =>
        WaitUntilAsync(() => Task.FromResult(Runtime.Listeners.All(l => l.OpenCount == 0 && l.ActiveConnections == 0 && l.Limiter.Open == 0)), because: "connections to close");

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _factory.DisposeAsync();
    }
}

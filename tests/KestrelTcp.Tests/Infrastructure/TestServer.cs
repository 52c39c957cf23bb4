using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using KestrelTcp.Connections;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

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
        Clock = factory.Services.GetRequiredService<TimeProvider>() as TestClock;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Runtime.HttpPort}"), Timeout = TimeSpan.FromSeconds(10) };
    }

    internal KestrelTcpRuntime Runtime { get; }

    public HttpClient Http { get; }

    public IServiceProvider Services => _factory.Services;

    /// <summary>The server's clock when the test gave it a <see cref="TestClock"/>; otherwise null (the system clock).</summary>
    public TestClock? Clock { get; }

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

    /// <summary>Starts the server on <paramref name="clock"/>: every wait and every time it reads moves only when the test advances it.</summary>
    public static Task<TestServer> StartAsync(TestClock clock, params Dictionary<string, string?>[] settings) =>
        StartAsync(settings, services => services.AddSingleton<TimeProvider>(clock));

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

    /// <summary>The open connections of <paramref name="listener"/> once there are <paramref name="count"/> of them (accepted and tracked).</summary>
    internal async Task<TrackedConnection[]> OpenConnectionsAsync(string listener, int count = 1)
    {
        var runtime = Runtime.Find(listener) ?? throw new InvalidOperationException($"No listener {listener}");
        await WaitUntilAsync(() => Task.FromResult(runtime.OpenCount == count), because: $"{count} open connection(s) on {listener}");
        return [.. runtime.OpenConnections];
    }

    /// <summary>
    /// Stops the server as SIGTERM does (<see cref="IHostApplicationLifetime.StopApplication"/>, which
    /// the host's run loop answers with its stop); the task completes when the host has stopped.
    /// </summary>
    public Task RequestStop()
    {
        var lifetime = Services.GetRequiredService<IHostApplicationLifetime>();
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lifetime.ApplicationStopped.Register(() => stopped.TrySetResult());
        lifetime.StopApplication();
        return stopped.Task;
    }

    /// <summary>
    /// Lets the server's <see cref="TestClock"/> run, one drain poll at a time, until <paramref name="done"/>
    /// completes: for the part of a test (or its teardown) that is not about when things happen.
    /// </summary>
    public async Task RunClockUntilAsync(Task done, TimeSpan? timeout = null)
    {
        var clock = Clock ?? throw new InvalidOperationException("The server runs on the system clock.");
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!done.IsCompleted)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Not done after the clock ran {clock.Elapsed}");
            }

            clock.Advance(KestrelTcpLifecycle.PollInterval);
            await Task.WhenAny(done, Task.Delay(1));
        }

        await done;
    }

    /// <summary>Waits until every listener's open set is empty (all closes recorded) and every place under the limits given back.</summary>
    public Task WaitForQuietAsync() =>
        WaitUntilAsync(() => Task.FromResult(Runtime.Listeners.All(l => l.OpenCount == 0 && l.ActiveConnections == 0 && l.Limiter.Open == 0)), because: "connections to close");

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        var disposing = _factory.DisposeAsync().AsTask();
        if (Clock is not null)
        {
            // The drain polls on the server's clock: at teardown, time passes for it.
            await RunClockUntilAsync(disposing);
        }

        await disposing;
    }
}

using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using KestrelTcp.Configuration;
using KestrelTcp.Tls;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Hosting;

/// <summary>Where the whole server is in its life.</summary>
internal enum ServerState
{
    /// <summary>Binding listeners.</summary>
    Starting,

    /// <summary>Every listener bound: ready.</summary>
    Ready,

    /// <summary>Shutdown began: readiness answers 503.</summary>
    ShuttingDown,
}

/// <summary>
/// The listeners of this process and the server's state: what health, metrics and shutdown read
/// and act on. Created from the validated options; handlers are created here, one per listener.
/// </summary>
internal sealed class KestrelTcpRuntime(KestrelTcpOptions options, IServiceProvider services) : IDisposable
{
    private volatile int _state;

    public KestrelTcpOptions Options { get; } = options;

    public IReadOnlyList<ListenerRuntime> Listeners { get; } =
        [.. options.Listeners.Select(l => new ListenerRuntime(l, CreateHandler(l.HandlerType!, l, services),
            services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ILoggerFactory>()))];

    /// <summary>The management port's certificates (<c>Http:Tls</c>), watched like a listener's; null for plain HTTP.</summary>
    public TlsListener? HttpTls { get; } = options.Http.Tls is { } tls
        ? new TlsListener(tls, "http", services.GetRequiredService<ILoggerFactory>().CreateLogger("KestrelTcp.Tls"), services.GetRequiredService<TimeProvider>())
        : null;

    public ListenOptions? HttpListenOptions { get; set; }

    public ServerState State
    {
        get => (ServerState)_state;
        set => _state = (int)value;
    }

    /// <summary>Ready: started, not shutting down, every listener bound.</summary>
    public bool IsReady => State == ServerState.Ready && Listeners.All(l => l.State == ListenerState.Listening);

    /// <summary>The bound HTTP management endpoint, as bound (e.g. <c>http://[::]:8080</c>).</summary>
    public string? HttpEndpoint => HttpListenOptions?.IPEndPoint is { } ip ? $"{(HttpTls is null ? "http" : "https")}://{ip}" : null;

    /// <summary>The bound HTTP port (the real one when 0 was asked), or null before start.</summary>
    public int? HttpPort => HttpListenOptions?.IPEndPoint?.Port;

    public ListenerRuntime? Find(string name) => Listeners.FirstOrDefault(l => l.Name == name);

    /// <summary>Stops watching certificate files.</summary>
    public void Dispose()
    {
        HttpTls?.Dispose();
        foreach (var listener in Listeners)
        {
            listener.Tls?.Dispose();
        }
    }

    private static ConnectionHandler CreateHandler([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] Type type, ListenerDefinition listener, IServiceProvider services)
    {
        var wantsListener = type.GetConstructors(BindingFlags.Public | BindingFlags.Instance)
            .Any(c => c.GetParameters().Any(p => p.ParameterType == typeof(ListenerDefinition)));
        return (ConnectionHandler)(wantsListener
            ? ActivatorUtilities.CreateInstance(services, type, listener)
            : ActivatorUtilities.CreateInstance(services, type));
    }
}

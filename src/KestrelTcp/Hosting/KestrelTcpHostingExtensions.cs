using KestrelTcp.Configuration;
using KestrelTcp.Diagnostics;
using KestrelTcp.Handlers;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Hosting;

/// <summary>The entry points that wire KestrelTcp into an ASP.NET Core application.</summary>
public static class KestrelTcpHostingExtensions
{
    /// <summary>The socket transport's per-connection read-ahead limit.</summary>
    public const int MaxReadBufferSize = 128 * 1024;

    /// <summary>
    /// Adds KestrelTcp: listeners from <c>KestrelTcp:Listeners</c> bound to their handlers, the HTTP
    /// management port, validation at start-up, health checks, metrics and Serilog logging. The
    /// built-in handlers Echo, Time and Greeting are registered; add more on the returned builder.
    /// </summary>
    public static KestrelTcpBuilder AddKestrelTcp(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        InlineScheduling.PrepareSockets(builder.Configuration);
        builder.Logging.AddKestrelTcpSerilog();
        return builder.Services.AddKestrelTcp();
    }

    /// <summary>The services of <see cref="AddKestrelTcp(WebApplicationBuilder)"/>, without logging.</summary>
    public static KestrelTcpBuilder AddKestrelTcp(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<IConfigureOptions<KestrelTcpOptions>, KestrelTcpOptionsReader>();
        services.AddSingleton<IValidateOptions<KestrelTcpOptions>, KestrelTcpOptionsValidator>();
        services.AddOptions<KestrelTcpOptions>().ValidateOnStart();

        services.AddSingleton<KestrelTcpRuntime>();
        services.AddSingleton(sp => new Lazy<KestrelTcpRuntime>(sp.GetRequiredService<KestrelTcpRuntime>));
        services.AddSingleton<KestrelTcpMetrics>();
        services.AddSingleton<MetricsExporter>();
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, KestrelEndpointSetup>();
        services.AddHostedService<KestrelTcpLifecycle>();
        services.AddHealthChecks().AddCheck<ReadinessHealthCheck>("listeners", tags: [ManagementEndpoints.ReadyTag]);

        // Larger transport blocks: fewer receive calls and thread hops per byte (docs/benchmarks.md).
        services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>>(new LargeBlockMemoryPoolFactory(
            LargeBlockMemoryPoolFactory.DefaultBlockSize, LargeBlockMemoryPoolFactory.DefaultRetainedBlocks));

        services.AddOptions<SocketTransportOptions>().Configure<IOptions<KestrelTcpOptions>>((transport, options) =>
        {
            // The transport reads ahead of the handler up to this much per connection whatever the
            // handler examined: it is the real per-connection input bound. Kestrel's 1 MiB suits HTTP
            // request bodies; for many small TCP conversations and clients that never read it meant
            // up to 1 MiB in plus as much echoed out per connection. 128 KiB keeps a bulk Echo
            // stream's window (two 64 KiB reads) while bounding a hostile connection to a few
            // hundred KiB (docs/operations.md).
            transport.MaxReadBufferSize = MaxReadBufferSize;
            transport.UnsafePreferInlineScheduling = InlineScheduling.IsActive(options.ValueOrNull());
            if (options.ValueOrNull()?.Backlog is { } backlog)
            {
                transport.Backlog = backlog;
            }
        });

        // KestrelTcp's own transport for the TCP listeners; it hands the HTTP port (and anything not a
        // listener endpoint) to Kestrel's socket transport. Registered last, so Kestrel asks it first.
        services.AddSingleton(sp =>
        {
            var sockets = sp.GetRequiredService<IOptions<SocketTransportOptions>>();
            var options = sp.GetRequiredService<IOptions<KestrelTcpOptions>>().ValueOrNull();
            var settings = new TcpTransportSettings(
                sockets.Value.Backlog,
                sockets.Value.NoDelay,
                sockets.Value.MaxReadBufferSize ?? long.MaxValue,
                InlineScheduling.IsActive(options),
                LargeBlockMemoryPoolFactory.DefaultBlockSize,
                TcpTransportFactory.DefaultRetainedBlocks);
            return new TcpTransportFactory(sockets, sp.GetRequiredService<ILoggerFactory>(), settings);
        });
        services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>(sp => sp.GetRequiredService<TcpTransportFactory>());

        // The drain runs inside the host's stop: give it Delay + DrainTimeout and a margin.
        services.AddOptions<HostOptions>().Configure<IOptions<KestrelTcpOptions>>((host, options) =>
        {
            if (options.ValueOrNull()?.Shutdown is { } shutdown)
            {
                var needed = shutdown.Delay + shutdown.DrainTimeout + TimeSpan.FromSeconds(5);
                host.ShutdownTimeout = needed > host.ShutdownTimeout ? needed : host.ShutdownTimeout;
            }
        });

        return new KestrelTcpBuilder(services)
            .AddHandler<EchoHandler>("Echo")
            .AddHandler<TimeHandler, TimeHandlerOptions>("Time")
            .AddHandler<GreetingHandler, GreetingOptions>("Greeting");
    }

    /// <summary>Registers one more handler on an application that already called <c>AddKestrelTcp()</c>.</summary>
    public static IServiceCollection AddKestrelTcpHandler<THandler>(this IServiceCollection services, string name)
        where THandler : Microsoft.AspNetCore.Connections.ConnectionHandler
    {
        new KestrelTcpBuilder(services).AddHandler<THandler>(name);
        return services;
    }
}

using System.Diagnostics.CodeAnalysis;
using KestrelTcp.Configuration;
using KestrelTcp.Diagnostics;
using KestrelTcp.Handlers;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;
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
    /// built-in handlers (Echo, Time, Greeting, Discard, Chargen, Qotd, Info) are registered; add more on the returned builder.
    /// </summary>
    public static KestrelTcpBuilder AddKestrelTcp(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        InlineScheduling.PrepareSockets(builder.Configuration);
        builder.AddKestrelTcpLogging();
        builder.AddKestrelTcpOtlp();
        return builder.Services.AddKestrelTcp();
    }

    /// <summary>The services of <see cref="AddKestrelTcp(WebApplicationBuilder)"/>, without logging.</summary>
    public static KestrelTcpBuilder AddKestrelTcp(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);

        // The configuration snapshot, read and validated once, when the host is built (after every
        // handler is registered): an invalid one throws KestrelTcpConfigurationException out of Build,
        // with every problem, before anything binds.
        services.AddSingleton(sp => KestrelTcpOptionsReader.Read(
            sp.GetRequiredService<IConfiguration>(), sp.GetServices<HandlerRegistration>(),
            sp.GetService<IHostEnvironment>()?.ContentRootPath ?? Directory.GetCurrentDirectory()));

        services.AddSingleton<KestrelTcpRuntime>();
        services.AddSingleton(sp => new Lazy<KestrelTcpRuntime>(sp.GetRequiredService<KestrelTcpRuntime>));
        services.AddSingleton<KestrelTcpMetrics>();
        services.AddKestrelTcpMetrics();
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, KestrelEndpointSetup>();
        services.AddHostedService<KestrelTcpLifecycle>();
        services.AddHealthChecks().AddCheck<ReadinessHealthCheck>("listeners", tags: [ManagementEndpoints.ReadyTag]);

        // Larger blocks for Kestrel's transport (the HTTP port, Unix sockets, Transport:Kind=Kestrel):
        // fewer receive calls and thread hops per byte (docs/benchmarks.md).
        services.AddSingleton<IMemoryPoolFactory<byte>>(new LargeBlockMemoryPoolFactory(
            LargeBlockMemoryPoolFactory.DefaultBlockSize, LargeBlockMemoryPoolFactory.DefaultRetainedBlocks));

        services.AddOptions<SocketTransportOptions>().Configure<KestrelTcpOptions>((transport, options) =>
        {
            // The transport reads ahead of the handler up to this much per connection whatever the
            // handler examined: it is the real per-connection input bound. Kestrel's 1 MiB suits HTTP
            // request bodies; for many small TCP conversations and clients that never read it meant
            // up to 1 MiB in plus as much echoed out per connection. 128 KiB keeps a bulk Echo
            // stream's window (two 64 KiB reads) while bounding a hostile connection to a few
            // hundred KiB (docs/operations.md).
            transport.MaxReadBufferSize = MaxReadBufferSize;
            transport.UnsafePreferInlineScheduling = InlineScheduling.IsActive(options.Transport);
            if (options.Backlog is { } backlog)
            {
                transport.Backlog = backlog;
            }
        });

        // KestrelTcp's own transport binds the listeners' TcpListenEndPoints; Kestrel's socket transport
        // (registered by UseKestrel) binds everything else. Registered after it, so Kestrel asks it first.
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<KestrelTcpOptions>();
            return new TcpTransportFactory(
                new TcpTransportOptions
                {
                    Backlog = options.Backlog ?? new TcpTransportOptions().Backlog,
                    MaxReadBufferSize = MaxReadBufferSize,
                    InlineCompletions = InlineScheduling.IsActive(options.Transport),
                    TimeProvider = sp.GetRequiredService<TimeProvider>(),
                },
                sp.GetRequiredService<ILoggerFactory>());
        });
        services.AddSingleton<IConnectionListenerFactory>(sp => sp.GetRequiredService<TcpTransportFactory>());

        // The drain runs inside the host's stop: give it Delay + DrainTimeout and a margin.
        services.AddOptions<HostOptions>().Configure<KestrelTcpOptions>((host, options) =>
        {
            var needed = options.Shutdown.Delay + options.Shutdown.DrainTimeout + TimeSpan.FromSeconds(5);
            host.ShutdownTimeout = needed > host.ShutdownTimeout ? needed : host.ShutdownTimeout;
        });

        return new KestrelTcpBuilder(services)
            .AddHandler<EchoHandler>("Echo")
            .AddHandler<TimeHandler, TimeHandlerOptions>("Time")
            .AddHandler<GreetingHandler, GreetingOptions>("Greeting")
            .AddHandler<DiscardHandler>("Discard")
            .AddHandler<ChargenHandler, ChargenOptions>("Chargen")
            .AddHandler<QotdHandler, QotdOptions>("Qotd")
            .AddHandler<InfoHandler>("Info");
    }

    /// <summary>Registers one more handler on an application that already called <c>AddKestrelTcp()</c>.</summary>
    public static IServiceCollection AddKestrelTcpHandler<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] THandler>(this IServiceCollection services, string name)
        where THandler : Microsoft.AspNetCore.Connections.ConnectionHandler
    {
        new KestrelTcpBuilder(services).AddHandler<THandler>(name);
        return services;
    }
}

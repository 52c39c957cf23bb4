using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Transport.Tests.Infrastructure;

/// <summary>Which transport a test host binds its endpoint with.</summary>
public enum TransportKind
{
    /// <summary>Kestrel's own socket transport (an <see cref="IPEndPoint"/>): the reference.</summary>
    Kestrel,

    /// <summary>KestrelTcp's transport (a <see cref="TcpListenEndPoint"/>) with inline completions, as the server runs it.</summary>
    KestrelTcp,

    /// <summary>KestrelTcp's transport with continuations on the thread pool (<see cref="TcpTransportOptions.InlineCompletions"/> off).</summary>
    KestrelTcpThreadPool,

    /// <summary>KestrelTcp's transport waiting for bytes with zero-byte receives (<see cref="TcpTransportOptions.EpollReadiness"/> off), inline: the portable path.</summary>
    KestrelTcpZeroByteReads,
}

/// <summary>What a test host changes from the transports' defaults.</summary>
public sealed record TransportHostSettings
{
    /// <summary>Set on both transports alike (<see cref="SocketTransportOptions.MaxReadBufferSize"/>, <see cref="TcpTransportOptions.MaxReadBufferSize"/>); null keeps each one's default.</summary>
    public long? MaxReadBufferSize { get; init; }

    /// <summary>Connection middleware before the handler (TLS, counting).</summary>
    public Action<ListenOptions>? ConfigureListen { get; init; }

    /// <summary>The whole application instead of a raw handler (the HTTP tests): maps its endpoints.</summary>
    public Action<WebApplication>? ConfigureApp { get; init; }

    /// <summary>Kestrel's server options (limits, HTTP protocols).</summary>
    public Action<KestrelServerOptions>? ConfigureKestrel { get; init; }

    public TimeProvider? TimeProvider { get; init; }
}

/// <summary>
/// A real Kestrel server on 127.0.0.1, port 0, whose one endpoint is bound by the transport of the
/// given kind and runs a handler. Without a handler of the test's own, it parks each connection:
/// the test drives the connection's pipes itself (<see cref="AcceptAsync"/>) and the handler
/// returns when the test lets it (<see cref="ServerConnection.Release"/>).
/// </summary>
public sealed class TransportHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<ServerConnection> _accepted = Channel.CreateUnbounded<ServerConnection>();
    private readonly ConcurrentBag<ServerConnection> _all = [];

    private TransportHost(WebApplication app, TransportKind kind, TcpTransportFactory? factory, IPEndPoint endPoint, LogCapture logs)
    {
        Logs = logs;
        _app = app;
        Kind = kind;
        Factory = factory;
        EndPoint = endPoint;
    }

    public TransportKind Kind { get; }

    /// <summary>KestrelTcp's transport; null for Kestrel's.</summary>
    public TcpTransportFactory? Factory { get; }

    public IPEndPoint EndPoint { get; private set; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Everything the host logged, from Debug up.</summary>
    public LogCapture Logs { get; }

    public static bool IsKestrelTcp(TransportKind kind) => kind != TransportKind.Kestrel;

    /// <summary>A host that parks its connections for the test to drive.</summary>
    public static Task<TransportHost> StartAsync(TransportKind kind, TransportHostSettings? settings = null) =>
        StartAsync(kind, handler: null, settings);

    public static async Task<TransportHost> StartAsync(TransportKind kind, Func<ConnectionContext, Task>? handler, TransportHostSettings? settings = null)
    {
        settings ??= new TransportHostSettings();
        var builder = WebApplication.CreateSlimBuilder();
        var logs = new LogCapture();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(logs);
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        if (settings.MaxReadBufferSize is { } max)
        {
            builder.Services.Configure<SocketTransportOptions>(o => o.MaxReadBufferSize = max);
        }

        TcpTransportFactory? factory = null;
        if (IsKestrelTcp(kind))
        {
            var options = new TcpTransportOptions
            {
                InlineCompletions = kind is TransportKind.KestrelTcp or TransportKind.KestrelTcpZeroByteReads,
                EpollReadiness = kind != TransportKind.KestrelTcpZeroByteReads,
                TimeProvider = settings.TimeProvider ?? TimeProvider.System,
            };
            if (settings.MaxReadBufferSize is { } ownMax)
            {
                options = options with { MaxReadBufferSize = ownMax };
            }

            factory = new TcpTransportFactory(options, LoggerFactory.Create(logging => logging.SetMinimumLevel(LogLevel.Debug).AddProvider(logs)));

            // After Kestrel's own: Kestrel asks the transports last registered first, and ours takes only TcpListenEndPoints.
            builder.Services.AddSingleton<IConnectionListenerFactory>(factory);
        }

        TransportHost? host = null;
        ListenOptions? listen = null;
        builder.WebHost.ConfigureKestrel(options =>
        {
            settings.ConfigureKestrel?.Invoke(options);
            var endPoint = IsKestrelTcp(kind) ? new TcpListenEndPoint(IPAddress.Loopback, 0) : new IPEndPoint(IPAddress.Loopback, 0);
            options.Listen(endPoint, l =>
            {
                listen = l;
                settings.ConfigureListen?.Invoke(l);
                if (settings.ConfigureApp is null)
                {
                    l.Run(handler ?? (context => host!.Park(context)));
                }
            });
        });

        var app = builder.Build();
        settings.ConfigureApp?.Invoke(app);
        try
        {
            await app.StartAsync().Within();
            if (factory is not null && factory.Bound != 1)
            {
                throw new InvalidOperationException($"KestrelTcp's transport bound {factory.Bound} endpoints, not the test's one: Kestrel's transport took it.");
            }

            host = new TransportHost(app, kind, factory, listen!.IPEndPoint!, logs);
            return host;
        }
        catch
        {
            await app.DisposeAsync();
            factory?.Dispose();
            throw;
        }
    }

    /// <summary>Connects a client and returns it with its server side, parked.</summary>
    public async Task<Connected> ConnectAsync(Action<Socket>? configureClient = null)
    {
        var client = await TestClient.ConnectAsync(EndPoint, configureClient);
        try
        {
            var server = await AcceptAsync();
            Assert.Equal(client.Socket.LocalEndPoint, server.Context.RemoteEndPoint);
            return new Connected(client, server);
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>The next connection parked by the handler.</summary>
    public async Task<ServerConnection> AcceptAsync() => await _accepted.Reader.ReadAsync().Within();

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _all)
        {
            connection.Release();
        }

        try
        {
            using var cts = new CancellationTokenSource(Waits.Timeout);
            await _app.StopAsync(cts.Token);
        }
        finally
        {
            await _app.DisposeAsync();
            Factory?.Dispose();
        }
    }

    private Task Park(ConnectionContext context)
    {
        var connection = new ServerConnection(context);
        _all.Add(connection);
        _accepted.Writer.TryWrite(connection);
        return connection.Released;
    }
}

/// <summary>The server side of one connection, parked in its handler while the test drives its pipes.</summary>
public sealed class ServerConnection(ConnectionContext context) : IAsyncDisposable
{
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ConnectionContext Context { get; } = context;

    public PipeReader Input => Context.Transport.Input;

    public PipeWriter Output => Context.Transport.Output;

    /// <summary>The accepted socket, as both transports expose it.</summary>
    public Socket Socket => Context.Features.Get<IConnectionSocketFeature>()?.Socket
        ?? throw new InvalidOperationException("The transport exposes no IConnectionSocketFeature.");

    public Task Released => _released.Task;

    /// <summary>Lets the handler return: Kestrel then disposes the connection.</summary>
    public void Release() => _released.TrySetResult();

    public ValueTask DisposeAsync()
    {
        Release();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A client and its server side; disposing releases the handler and closes the client.</summary>
public sealed record Connected(TestClient Client, ServerConnection Server) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        Server.Release();
        await Client.DisposeAsync();
    }
}

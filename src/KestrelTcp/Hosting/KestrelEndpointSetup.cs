using System.Net;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using KestrelTcp.Diagnostics;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Hosting;

/// <summary>
/// Binds the HTTP management port and every listener to Kestrel. Each TCP listener runs its
/// middleware outermost first: limits (refuse before counting), tracking (count, bytes, close
/// reason, log), then the handler; idle timeouts are enforced by <see cref="IdleScan"/> over the
/// tracked connections. The HTTP port gets none of them.
/// </summary>
internal sealed class KestrelEndpointSetup(KestrelTcpRuntime runtime, KestrelTcpMetrics metrics, ILoggerFactory loggers, TimeProvider time)
    : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions options)
    {
        if (!runtime.IsValid)
        {
            return;
        }

        var http = runtime.Options.Http;
        Listen(options, http.Address, http.Port, null, ownTransport: false, listen => runtime.HttpListenOptions = listen);

        var logger = loggers.CreateLogger("KestrelTcp.Connections");
        foreach (var listener in runtime.Listeners)
        {
            var definition = listener.Definition;
            Listen(options, definition.Address, definition.Port ?? 0, definition.UnixSocketPath, runtime.Options.Transport == TransportKind.KestrelTcp, listen =>
            {
                listener.ListenOptions = listen;
                // Limits, then tracking, in this order and adjacent: tracking gives back what limits took.
                listen.Use(next => new ConnectionLimitMiddleware(next, listener, logger, time).OnConnectionAsync);
                listen.Use(next => new ConnectionTrackingMiddleware(next, listener, metrics, logger, time).OnConnectionAsync);
                listen.Run(listener.Handler.OnConnectedAsync);
            });
        }
    }

    /// <summary>
    /// Adds one Kestrel endpoint. With <paramref name="ownTransport"/>, an IP endpoint is a
    /// <see cref="ListenerEndPoint"/>, which KestrelTcp's transport binds (<see cref="TcpTransportFactory"/>);
    /// <c>localhost</c> (two addresses) and Unix sockets stay on Kestrel's socket transport.
    /// </summary>
    private static void Listen(KestrelServerOptions options, string? address, int port, string? unixSocketPath, bool ownTransport, Action<ListenOptions> configure)
    {
        var wildcard = string.IsNullOrEmpty(address) || address == "*";
        if (unixSocketPath is not null)
        {
            options.ListenUnixSocket(unixSocketPath, configure);
        }
        else if (ownTransport && address != "localhost")
        {
            options.Listen(new ListenerEndPoint(wildcard ? IPAddress.IPv6Any : IPAddress.Parse(address!), port), configure);
        }
        else if (wildcard)
        {
            options.ListenAnyIP(port, configure);
        }
        else if (address == "localhost")
        {
            options.ListenLocalhost(port, configure);
        }
        else
        {
            options.Listen(IPAddress.Parse(address!), port, configure);
        }
    }
}

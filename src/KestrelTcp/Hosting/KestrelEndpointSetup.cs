using System.Net;
using KestrelTcp.Connections;
using KestrelTcp.Diagnostics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Hosting;

/// <summary>
/// Binds the HTTP management port and every listener to Kestrel. Each TCP listener runs its
/// middleware outermost first: limits (refuse before counting), tracking (count, bytes, close
/// reason, log), idle timeout, then the handler. The HTTP port gets none of them.
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
        Listen(options, http.Address, http.Port, null, listen => runtime.HttpListenOptions = listen);

        var logger = loggers.CreateLogger("KestrelTcp.Connections");
        foreach (var listener in runtime.Listeners)
        {
            var definition = listener.Definition;
            Listen(options, definition.Address, definition.Port ?? 0, definition.UnixSocketPath, listen =>
            {
                listener.ListenOptions = listen;
                // Limits, then tracking, in this order and adjacent: tracking gives back what limits took.
                listen.Use(next => new ConnectionLimitMiddleware(next, listener, logger, time).OnConnectionAsync);
                listen.Use(next => new ConnectionTrackingMiddleware(next, listener, metrics, logger, time).OnConnectionAsync);
                if (definition.Limits.IdleTimeout > TimeSpan.Zero)
                {
                    listen.Use(next => new IdleTimeoutMiddleware(next, definition.Limits.IdleTimeout).OnConnectionAsync);
                }

                listen.Run(listener.Handler.OnConnectedAsync);
            });
        }
    }

    private static void Listen(KestrelServerOptions options, string? address, int port, string? unixSocketPath, Action<ListenOptions> configure)
    {
        if (unixSocketPath is not null)
        {
            options.ListenUnixSocket(unixSocketPath, configure);
        }
        else if (string.IsNullOrEmpty(address) || address == "*")
        {
            options.ListenAnyIP(port, configure);
        }
        else if (address == "localhost")
        {
            options.ListenLocalhost(port, configure);
        }
        else
        {
            options.Listen(IPAddress.Parse(address), port, configure);
        }
    }
}

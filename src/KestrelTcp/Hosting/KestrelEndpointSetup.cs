using System.Net;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using KestrelTcp.Diagnostics;
using KestrelTcp.Faults;
using KestrelTcp.ProxyProtocol;
using KestrelTcp.Tls;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Hosting;

/// <summary>
/// Binds the HTTP management port and every listener to Kestrel. Each TCP listener's connections
/// pass, in this order (CONTRACT §6): the transport's byte counts (made for transports that keep
/// none), the PROXY protocol header (which then names the client for everything after it), the
/// access rules, the connection rates, the connection limits (all of them refusing before anything
/// counts a connection as accepted), the TLS handshake, the tracking (count, list, close reason,
/// log), the listener's deliberate faults (<c>Faults</c>), then the handler; the idle timeout (<see cref="IdleTimeout"/>) and the drain act on the
/// tracked connections. Each edge step is added only when the listener configures it, so a plain
/// listener pays for none of them. The HTTP port gets none of them but its own TLS.
/// </summary>
internal sealed class KestrelEndpointSetup(KestrelTcpRuntime runtime, KestrelTcpMetrics metrics, ILoggerFactory loggers, TimeProvider time)
    : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions options)
    {
        var http = runtime.Options.Http;
        Listen(options, http.Address, http.Port, null, ownTransport: false, listen =>
        {
            runtime.HttpListenOptions = listen;
            if (runtime.HttpTls is { } tls)
            {
                listen.UseKestrelTcpHttpsTls(tls);
            }
        });

        var logger = loggers.CreateLogger("KestrelTcp.Connections");
        var ownTransport = runtime.Options.Transport.Kind == TransportKind.KestrelTcp;
        foreach (var listener in runtime.Listeners)
        {
            var definition = listener.Definition;
            Listen(options, definition.Address, definition.Port ?? 0, definition.UnixSocketPath, ownTransport, listen =>
            {
                listener.ListenOptions = listen;
                listen.UseTransferCounting(time, listener.Stats.Transfer)
                    .UseProxyProtocol(definition.ProxyProtocol, time, logger, () => listener.Refuse(RejectReason.ProxyProtocol, logger))
                    .UseAccessRules(listener, logger)
                    .UseConnectionRates(listener, logger)
                    .UseConnectionLimits(listener, logger);
                if (listener.Tls is { } tls)
                {
                    listen.UseKestrelTcpTls(tls, () => listener.Refuse(RejectReason.TlsHandshake, logger));
                }

                listen.UseConnectionTracking(listener, metrics, logger, time)
                    .UseFaults(listener, time, loggers.CreateLogger("KestrelTcp.Faults"))
                    .Run(listener.Handler.OnConnectedAsync);
            });
        }
    }

    /// <summary>
    /// Adds one Kestrel endpoint. With <paramref name="ownTransport"/>, an IP endpoint is a
    /// <see cref="TcpListenEndPoint"/>, which KestrelTcp's transport binds (<see cref="TcpTransportFactory"/>);
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
            options.Listen(new TcpListenEndPoint(wildcard ? IPAddress.IPv6Any : IPAddress.Parse(address!), port), configure);
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

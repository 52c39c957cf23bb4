using System.Net.Security;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace KestrelTcp.Tls;

/// <summary>
/// Puts TLS in front of a listener with Kestrel's own TLS middleware (<c>UseHttps</c> with a per-handshake
/// callback), the certificate and settings coming from a <see cref="TlsListener"/>. Whatever comes after
/// sees plain bytes and Kestrel's TLS features (<c>ITlsHandshakeFeature</c>, <c>ITlsConnectionFeature</c>,
/// <c>ITlsApplicationProtocolFeature</c>).
/// </summary>
public static class TlsConnectionExtensions
{
    /// <summary>
    /// TLS for a TCP listener: ALPN exactly as configured (none by default, not Kestrel's h2 and http/1.1).
    /// <paramref name="onHandshakeFailed"/> is called for each connection whose handshake did not complete
    /// (it failed, timed out, was not TLS at all, or the client certificate was refused): Kestrel's middleware
    /// closes such a connection without calling what follows it.
    /// </summary>
    internal static ListenOptions UseKestrelTcpTls(this ListenOptions listen, TlsListener tls, Action? onHandshakeFailed) =>
        UseTls(listen, tls, onHandshakeFailed, http: false);

    /// <summary>
    /// TLS for the HTTP management port: as <see cref="UseKestrelTcpTls"/>, except that with no configured
    /// <see cref="TlsOptions.ApplicationProtocols"/> ALPN offers what Kestrel would for the endpoint's
    /// <see cref="ListenOptions.Protocols"/> (<c>h2</c>, <c>http/1.1</c>), so that HTTP/2 keeps working.
    /// </summary>
    internal static ListenOptions UseKestrelTcpHttpsTls(this ListenOptions listen, TlsListener tls, Action? onHandshakeFailed = null) =>
        UseTls(listen, tls, onHandshakeFailed, http: true);

    private static ListenOptions UseTls(ListenOptions listen, TlsListener tls, Action? onHandshakeFailed, bool http)
    {
        ArgumentNullException.ThrowIfNull(listen);
        ArgumentNullException.ThrowIfNull(tls);

        // Kestrel's middleware returns without calling next when a handshake fails (it catches
        // OperationCanceledException for the timeout, IOException and AuthenticationException): the
        // middleware around it knows the handshake failed when the marker set after it is missing.
        if (onHandshakeFailed is not null)
        {
            listen.Use(next => new TlsHandshakeOutcomeMiddleware(next, onHandshakeFailed).OnConnectionAsync);
        }

        listen.UseHttps(new TlsHandshakeCallbackOptions
        {
            OnConnection = SelectOptions,
            OnConnectionState = tls,
            HandshakeTimeout = tls.Options.HandshakeTimeout,
        });

        if (http)
        {
            // Read while the endpoint is built, as Kestrel reads it, so Protocols may be set after this call.
            listen.Use(next =>
            {
                tls.UseHttpApplicationProtocols(listen.Protocols);
                return next;
            });
        }

        if (onHandshakeFailed is not null)
        {
            listen.Use(TlsHandshakeOutcomeMiddleware.MarkCompleted);
        }

        return listen;
    }

    private static ValueTask<SslServerAuthenticationOptions> SelectOptions(TlsHandshakeCallbackContext context) =>
        ValueTask.FromResult(((TlsListener)context.State!).GetServerOptions(context.ClientHelloInfo.ServerName));
}

/// <summary>Calls back when the connection comes back out of Kestrel's TLS middleware without having gone through it.</summary>
internal sealed class TlsHandshakeOutcomeMiddleware(ConnectionDelegate next, Action onHandshakeFailed)
{
    public static ConnectionDelegate MarkCompleted(ConnectionDelegate next) => connection =>
    {
        connection.Features.Set(Completed.Instance);
        return next(connection);
    };

    public async Task OnConnectionAsync(ConnectionContext connection)
    {
        try
        {
            await next(connection);
        }
        finally
        {
            if (connection.Features.Get<Completed>() is null)
            {
                onHandshakeFailed();
            }
        }
    }

    /// <summary>The marker: one instance for all, so a completed handshake costs no allocation here.</summary>
    private sealed class Completed
    {
        public static readonly Completed Instance = new();
    }
}

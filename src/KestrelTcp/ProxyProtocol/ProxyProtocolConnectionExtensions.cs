using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.ProxyProtocol;

/// <summary>Adds the PROXY protocol to a listener's connection pipeline.</summary>
public static class ProxyProtocolConnectionExtensions
{
    /// <summary>
    /// Requires the PROXY protocol header <paramref name="options"/> describe before anything else on
    /// each connection (so before TLS): a connection from a peer outside
    /// <see cref="ProxyProtocolOptions.TrustedProxies"/>, or whose header is malformed, incomplete or
    /// later than <see cref="ProxyProtocolOptions.HeaderTimeout"/>, is closed with nothing written and
    /// reported to <paramref name="onRefused"/>. An accepted header makes its source and destination the
    /// connection's remote and local endpoints and sets <see cref="IProxyProtocolFeature"/>. With
    /// <see cref="ProxyProtocolMode.Off"/> nothing is added.
    /// </summary>
    /// <param name="builder">The listener's connection builder (a Kestrel <c>ListenOptions</c>).</param>
    /// <param name="options">The listener's <c>ProxyProtocol</c> options.</param>
    /// <param name="time">The clock of <see cref="ProxyProtocolOptions.HeaderTimeout"/>.</param>
    /// <param name="logger">Where refusals and accepted headers are logged, at Debug.</param>
    /// <param name="onRefused">Called once for each refused connection (to count it).</param>
    public static IConnectionBuilder UseProxyProtocol(this IConnectionBuilder builder, ProxyProtocolOptions options, TimeProvider time, ILogger logger, Action onRefused)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(onRefused);
        return options.Mode == ProxyProtocolMode.Off
            ? builder
            : builder.Use(next => new ProxyProtocolMiddleware(next, options, time, logger, onRefused).OnConnectionAsync);
    }
}

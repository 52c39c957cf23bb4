using KestrelTcp.Configuration;

namespace KestrelTcp.Hosting;

/// <summary>
/// Inline scheduling (<c>KestrelTcp:Transport:InlineScheduling</c>, on by default): socket completions,
/// Kestrel's transport and the handlers run on the socket event thread instead of hopping to the
/// thread pool at each step. It has two halves that only pay together: the runtime's inline socket
/// completions (the <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c> environment variable, read once
/// when the first socket is made) and Kestrel's <c>SocketTransportOptions.UnsafePreferInlineScheduling</c>.
/// Measured on the benchmark (docs/benchmarks.md): one-connection ping-pong 0.65 → 0.89 of the C
/// reference, 100 connections 0.71 → 0.96; Kestrel's half alone made bulk Echo much slower. It is
/// safe because no handler blocks a thread (the house rule for handlers, see README); a handler that
/// blocked would stall every connection on its event thread.
/// </summary>
internal static class InlineScheduling
{
    /// <summary>The runtime's switch for inline socket completions.</summary>
    public const string SocketsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// Turns the runtime's half on if <c>KestrelTcp:Transport:InlineScheduling</c> is not <c>false</c>,
    /// unless the operator set the variable (to <c>0</c> to keep socket completions on the thread
    /// pool). Must run before the process makes its first socket and before the host is built
    /// (building it creates Kestrel's transport, which reads <see cref="IsActive(TransportOptions)"/>).
    /// </summary>
    public static void PrepareSockets(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        // Read as KestrelTcpOptionsReader reads it; a bad value is reported by the reader at start-up.
        var configured = ConfigurationReading.ReadBool(
            configuration.GetSection($"{KestrelTcpOptions.SectionName}:Transport"), "InlineScheduling", true, []);
        if (SocketsVariableToSet(configured, Environment.GetEnvironmentVariable(SocketsVariable)) is { } toSet)
        {
            Environment.SetEnvironmentVariable(SocketsVariable, toSet);
        }
    }

    /// <summary>Kestrel's half follows the runtime's: on only when configured and socket completions are inline.</summary>
    public static bool IsActive(TransportOptions options) =>
        IsActive(options.InlineScheduling, Environment.GetEnvironmentVariable(SocketsVariable));

    internal static string? SocketsVariableToSet(bool configured, string? current) => configured && current is null ? "1" : null;

    internal static bool IsActive(bool configured, string? socketsVariable) => configured && socketsVariable == "1";
}

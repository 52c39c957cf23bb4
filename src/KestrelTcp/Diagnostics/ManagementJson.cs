using System.Text.Json;
using System.Text.Json.Serialization;
using KestrelTcp.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// The JSON of <c>/health</c> and <c>/connections</c>, generated at build time (camelCase, indented):
/// nothing is serialised by reflection, so the endpoints answer the same in a trimmed or Native AOT build.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
[JsonSerializable(typeof(HealthView))]
[JsonSerializable(typeof(ConnectionsView))]
internal sealed partial class ManagementJsonContext : JsonSerializerContext;

/// <summary>The body of <c>GET /health</c>: the checks' status, the server's state, the management endpoint and every listener.</summary>
internal sealed record HealthView
{
    /// <summary>The readiness checks' <see cref="HealthStatus"/>: <c>Healthy</c>, <c>Degraded</c> or <c>Unhealthy</c>.</summary>
    public required string Status { get; init; }

    /// <summary>The server's <see cref="ServerState"/>: <c>Starting</c>, <c>Ready</c> or <c>ShuttingDown</c>.</summary>
    public required string State { get; init; }

    /// <summary>The management endpoint actually bound (<c>http://address:port</c>), or null before it is.</summary>
    public required string? Http { get; init; }

    public required HealthListenerView[] Listeners { get; init; }
}

/// <summary>One listener on <c>/health</c>.</summary>
internal sealed record HealthListenerView
{
    public required string Name { get; init; }

    public required string Handler { get; init; }

    public required string Endpoint { get; init; }

    /// <summary>The listener's <see cref="ListenerState"/>: <c>Starting</c>, <c>Listening</c>, <c>Draining</c> or <c>Stopped</c>.</summary>
    public required string State { get; init; }

    public required long ActiveConnections { get; init; }
}

/// <summary>The body of <c>GET /connections</c>: every listener with its totals and its open connections.</summary>
internal sealed record ConnectionsView
{
    public required ConnectionsListenerView[] Listeners { get; init; }
}

/// <summary>One listener on <c>/connections</c>: its totals (those of <c>/metrics</c>) and up to <see cref="ManagementEndpoints.MaxListedConnections"/> of its open connections.</summary>
internal sealed record ConnectionsListenerView
{
    public required string Name { get; init; }

    public required string Handler { get; init; }

    public required string Endpoint { get; init; }

    public required long ActiveConnections { get; init; }

    public required long AcceptedTotal { get; init; }

    /// <summary>Every reject reason of <c>/metrics</c>, by its label, zeros included.</summary>
    public required Dictionary<string, long> RejectedTotal { get; init; }

    /// <summary>Every close reason of <c>/metrics</c>, by its label, zeros included.</summary>
    public required Dictionary<string, long> ClosedTotal { get; init; }

    public required long BytesReceivedTotal { get; init; }

    public required long BytesSentTotal { get; init; }

    /// <summary>How many of the open connections are listed in <see cref="Connections"/>.</summary>
    public required int Listed { get; init; }

    /// <summary>More are open than are listed.</summary>
    public required bool Truncated { get; init; }

    /// <summary>The open connections listed, newest first, read as they are serialised.</summary>
    public required IEnumerable<ConnectionView> Connections { get; init; }
}

/// <summary>One open connection on <c>/connections</c>.</summary>
internal sealed record ConnectionView
{
    public required string Id { get; init; }

    /// <summary>The client (after a PROXY protocol header, the header's source).</summary>
    public required string? Remote { get; init; }

    /// <summary>The TCP peer when a PROXY protocol header named the client, else null.</summary>
    public required string? Peer { get; init; }

    public required DateTimeOffset ConnectedAt { get; init; }

    public required long BytesReceived { get; init; }

    public required long BytesSent { get; init; }

    /// <summary>Seconds since the connection last received data (or since it was accepted), to the millisecond.</summary>
    public required double IdleSeconds { get; init; }
}

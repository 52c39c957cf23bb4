using System.Text.Json;
using System.Text.Json.Serialization;
using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;

namespace KestrelTcp.Dashboard;

/// <summary>
/// The JSON of <c>/dashboard/data</c>, generated at build time (camelCase, not indented: the page
/// polls it every second): nothing is serialised by reflection, so it answers the same in a trimmed
/// or Native AOT build.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(DashboardView))]
internal sealed partial class DashboardJsonContext : JsonSerializerContext;

/// <summary>What <c>GET /dashboard/data</c> answers (<see cref="DashboardData.Build"/>): the server's facts, the history's shape and every listener.</summary>
internal sealed record DashboardView
{
    public required DashboardServerView Server { get; init; }

    public required DashboardHistoryView History { get; init; }

    /// <summary><see cref="ManagementEndpoints.MaxListedConnections"/>: at most this many open connections per listener.</summary>
    public required int MaxListedConnections { get; init; }

    /// <summary>In the order of <see cref="KestrelTcpRuntime.Listeners"/>.</summary>
    public required DashboardListenerView[] Listeners { get; init; }
}

/// <summary>The server's facts on the dashboard.</summary>
internal sealed record DashboardServerView
{
    /// <summary>The server's <see cref="DashboardData.Version"/>.</summary>
    public required string Version { get; init; }

    public required string MachineName { get; init; }

    /// <summary><c>starting</c>, <c>ready</c> or <c>shutting_down</c>.</summary>
    public required string State { get; init; }

    /// <summary>The server's clock when the answer was built.</summary>
    public required DateTimeOffset Now { get; init; }

    /// <summary>When the host had started (every listener bound), or null before.</summary>
    public required DateTimeOffset? StartedAt { get; init; }

    /// <summary>Seconds since <see cref="StartedAt"/>, to a tenth; 0 before.</summary>
    public required double UptimeSeconds { get; init; }

    public required long WorkingSetBytes { get; init; }

    public required long ManagedHeapBytes { get; init; }

    /// <summary><c>KestrelTcp</c> when KestrelTcp's own transport bound the listeners, else <c>Kestrel</c>.</summary>
    public required string Transport { get; init; }

    public required bool InlineScheduling { get; init; }

    /// <summary>The management endpoint actually bound, or null before it is.</summary>
    public required string? Http { get; init; }
}

/// <summary>The shape of every listener's history: one sample per <see cref="IntervalSeconds"/>, at most <see cref="Capacity"/>.</summary>
internal sealed record DashboardHistoryView
{
    public required double IntervalSeconds { get; init; }

    public required int Capacity { get; init; }
}

/// <summary>One listener on the dashboard: its figures (under the names of <c>/connections</c>), its rates, its history and its open connections.</summary>
internal sealed record DashboardListenerView
{
    public required string Name { get; init; }

    public required string Handler { get; init; }

    public required string Endpoint { get; init; }

    /// <summary><c>starting</c>, <c>listening</c>, <c>draining</c> or <c>stopped</c>.</summary>
    public required string State { get; init; }

    public required long ActiveConnections { get; init; }

    /// <summary>The most open at once since start.</summary>
    public required long PeakConnections { get; init; }

    /// <summary>The listener's <c>MaxConnections</c>, or null when it is unlimited (0).</summary>
    public required int? MaxConnections { get; init; }

    public required long AcceptedTotal { get; init; }

    public required double AcceptedPerSecond { get; init; }

    /// <summary>Every reject reason of <c>/metrics</c>, by its label, zeros included.</summary>
    public required Dictionary<string, long> RejectedTotal { get; init; }

    /// <summary>Every close reason of <c>/metrics</c>, by its label, zeros included.</summary>
    public required Dictionary<string, long> ClosedTotal { get; init; }

    public required long BytesReceivedTotal { get; init; }

    public required long BytesSentTotal { get; init; }

    public required double BytesReceivedPerSecond { get; init; }

    public required double BytesSentPerSecond { get; init; }

    public required DashboardSeriesView History { get; init; }

    /// <summary>How many connections are open (counted, not only listed).</summary>
    public required int OpenConnections { get; init; }

    /// <summary>How many of them are listed in <see cref="Connections"/>.</summary>
    public required int Listed { get; init; }

    /// <summary>More are open than are listed.</summary>
    public required bool Truncated { get; init; }

    /// <summary>The open connections listed, newest first, read as they are serialised.</summary>
    public required IEnumerable<DashboardConnectionView> Connections { get; init; }
}

/// <summary>A listener's history, one series per chart, oldest sample first; each read from the samples as it is serialised.</summary>
internal sealed record DashboardSeriesView
{
    public required IEnumerable<long> Open { get; init; }

    public required IEnumerable<double> AcceptedPerSecond { get; init; }

    public required IEnumerable<double> BytesReceivedPerSecond { get; init; }

    public required IEnumerable<double> BytesSentPerSecond { get; init; }
}

/// <summary>One open connection on the dashboard: only what its table shows.</summary>
internal sealed record DashboardConnectionView
{
    public required string Id { get; init; }

    public required string? Remote { get; init; }

    public required string? Peer { get; init; }

    /// <summary>Seconds since the connection was accepted, to a tenth.</summary>
    public required double ConnectedSeconds { get; init; }

    public required long BytesReceived { get; init; }

    public required long BytesSent { get; init; }
}

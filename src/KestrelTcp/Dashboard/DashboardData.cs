using System.Reflection;
using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Dashboard;

/// <summary>
/// What <c>GET /dashboard/data</c> answers, the whole of what the page shows: the server's facts,
/// and per listener its figures, its history and its open connections. Every figure is read from
/// the counters <c>/metrics</c> and <c>/connections</c> read (<see cref="ListenerRuntime"/> and its
/// <see cref="ListenerStats"/>), under the same names as <c>/connections</c>, so the page and the
/// scrape agree; only the per-second rates and the charts come from the <see cref="DashboardSampler"/>.
/// </summary>
internal sealed class DashboardData(
    KestrelTcpRuntime runtime,
    DashboardSampler sampler,
    TimeProvider time,
    TcpTransportFactory tcpTransport,
    IOptions<SocketTransportOptions> sockets)
{
    /// <summary>The informational version of the server's assembly (e.g. <c>1.0.0+3f2c…</c>, the commit after the plus).</summary>
    public static readonly string Version =
        typeof(DashboardData).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(DashboardData).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    public DashboardSampler Sampler => sampler;

    public DashboardView Build()
    {
        var now = time.GetTimestamp();
        var wallNow = time.GetUtcNow();
        var listeners = runtime.Listeners;
        var views = new DashboardListenerView[listeners.Count];
        for (var i = 0; i < views.Length; i++)
        {
            views[i] = Listener(listeners[i], sampler.Histories[i], now);
        }

        return new DashboardView
        {
            Server = new DashboardServerView
            {
                Version = Version,
                MachineName = Environment.MachineName,
                State = Describe(runtime.State),
                Now = wallNow,
                StartedAt = sampler.StartedAt,
                UptimeSeconds = sampler.StartedAt is null ? 0 : Math.Round(time.GetElapsedTime(sampler.StartedTimestamp, now).TotalSeconds, 1),
                WorkingSetBytes = Environment.WorkingSet,
                ManagedHeapBytes = GC.GetTotalMemory(forceFullCollection: false),
                Transport = tcpTransport.Bound > 0 ? "KestrelTcp" : "Kestrel",
                InlineScheduling = sockets.Value.UnsafePreferInlineScheduling,
                Http = runtime.HttpEndpoint,
            },
            History = new DashboardHistoryView
            {
                IntervalSeconds = DashboardSampler.Interval.TotalSeconds,
                Capacity = DashboardSampler.Capacity,
            },
            MaxListedConnections = ManagementEndpoints.MaxListedConnections,
            Listeners = views,
        };
    }

    private DashboardListenerView Listener(ListenerRuntime l, ListenerHistory history, long now)
    {
        var samples = history.Snapshot();
        var latest = samples.Length == 0 ? default : samples[^1];
        var open = l.ActiveConnections;
        var openCount = l.OpenCount;
        var connections = l.Open.Snapshot(ManagementEndpoints.MaxListedConnections);
        return new DashboardListenerView
        {
            Name = l.Name,
            Handler = l.HandlerName,
            Endpoint = l.Endpoint,
            State = Describe(l.State),
            ActiveConnections = open,
            PeakConnections = Math.Max(l.Stats.PeakOpen, open),
            MaxConnections = l.Definition.Limits.MaxConnections > 0 ? l.Definition.Limits.MaxConnections : null,
            AcceptedTotal = l.Stats.Accepted,
            AcceptedPerSecond = latest.AcceptedPerSecond,
            RejectedTotal = KestrelTcpMetrics.RejectedByReason(l.Stats),
            ClosedTotal = KestrelTcpMetrics.ClosedByReason(l.Stats),
            BytesReceivedTotal = l.BytesReceived,
            BytesSentTotal = l.BytesSent,
            BytesReceivedPerSecond = latest.BytesReceivedPerSecond,
            BytesSentPerSecond = latest.BytesSentPerSecond,
            History = new DashboardSeriesView
            {
                Open = samples.Select(s => s.Open),
                AcceptedPerSecond = samples.Select(s => s.AcceptedPerSecond),
                BytesReceivedPerSecond = samples.Select(s => s.BytesReceivedPerSecond),
                BytesSentPerSecond = samples.Select(s => s.BytesSentPerSecond),
            },
            OpenConnections = openCount,
            Listed = connections.Length,
            Truncated = openCount > connections.Length,
            // Only what the table shows: up to 1000 of these per listener go out every second.
            Connections = connections.Select(c => new DashboardConnectionView
            {
                Id = c.Id,
                Remote = c.Remote?.ToString(),
                Peer = c.Peer?.ToString(),
                ConnectedSeconds = Math.Round(time.GetElapsedTime(c.StartTimestamp, now).TotalSeconds, 1),
                BytesReceived = c.Transfer.BytesReceived,
                BytesSent = c.Transfer.BytesSent,
            }),
        };
    }

    internal static string Describe(ListenerState state) => state switch
    {
        ListenerState.Starting => "starting",
        ListenerState.Listening => "listening",
        ListenerState.Draining => "draining",
        _ => "stopped",
    };

    internal static string Describe(ServerState state) => state switch
    {
        ServerState.Starting => "starting",
        ServerState.Ready => "ready",
        _ => "shutting_down",
    };
}

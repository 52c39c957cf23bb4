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

    public object Build()
    {
        var now = time.GetTimestamp();
        var wallNow = time.GetUtcNow();
        return new
        {
            server = new
            {
                version = Version,
                machineName = Environment.MachineName,
                state = Describe(runtime.State),
                now = wallNow,
                startedAt = sampler.StartedAt,
                uptimeSeconds = sampler.StartedAt is null ? 0 : Math.Round(time.GetElapsedTime(sampler.StartedTimestamp, now).TotalSeconds, 1),
                workingSetBytes = Environment.WorkingSet,
                managedHeapBytes = GC.GetTotalMemory(forceFullCollection: false),
                transport = tcpTransport.Bound > 0 ? "KestrelTcp" : "Kestrel",
                inlineScheduling = sockets.Value.UnsafePreferInlineScheduling,
                http = runtime.HttpEndpoint,
            },
            history = new
            {
                intervalSeconds = DashboardSampler.Interval.TotalSeconds,
                capacity = DashboardSampler.Capacity,
            },
            maxListedConnections = ManagementEndpoints.MaxListedConnections,
            listeners = runtime.Listeners.Select((l, i) => Listener(l, sampler.Histories[i], now)),
        };
    }

    private object Listener(ListenerRuntime l, ListenerHistory history, long now)
    {
        var samples = history.Snapshot();
        var latest = samples.Length == 0 ? default : samples[^1];
        var open = l.ActiveConnections;
        var openCount = l.OpenCount;
        var connections = l.Open.Snapshot(ManagementEndpoints.MaxListedConnections);
        return new
        {
            name = l.Name,
            handler = l.HandlerName,
            endpoint = l.Endpoint,
            state = Describe(l.State),
            activeConnections = open,
            peakConnections = Math.Max(l.Stats.PeakOpen, open),
            maxConnections = l.Definition.Limits.MaxConnections > 0 ? l.Definition.Limits.MaxConnections : (int?)null,
            acceptedTotal = l.Stats.Accepted,
            acceptedPerSecond = latest.AcceptedPerSecond,
            rejectedTotal = KestrelTcpMetrics.RejectedByReason(l.Stats),
            closedTotal = KestrelTcpMetrics.ClosedByReason(l.Stats),
            bytesReceivedTotal = l.BytesReceived,
            bytesSentTotal = l.BytesSent,
            bytesReceivedPerSecond = latest.BytesReceivedPerSecond,
            bytesSentPerSecond = latest.BytesSentPerSecond,
            history = new
            {
                open = samples.Select(s => s.Open),
                acceptedPerSecond = samples.Select(s => s.AcceptedPerSecond),
                bytesReceivedPerSecond = samples.Select(s => s.BytesReceivedPerSecond),
                bytesSentPerSecond = samples.Select(s => s.BytesSentPerSecond),
            },
            openConnections = openCount,
            listed = connections.Length,
            truncated = openCount > connections.Length,
            // Only what the table shows: up to 1000 of these per listener go out every second.
            connections = connections.Select(c => new
            {
                id = c.Id,
                remote = c.Remote?.ToString(),
                peer = c.Peer?.ToString(),
                connectedSeconds = Math.Round(time.GetElapsedTime(c.StartTimestamp, now).TotalSeconds, 1),
                bytesReceived = c.Transfer.BytesReceived,
                bytesSent = c.Transfer.BytesSent,
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

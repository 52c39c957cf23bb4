using System.Text.Json;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KestrelTcp.Diagnostics;

/// <summary>The HTTP management endpoints: health, metrics and the live connections view.</summary>
public static class ManagementEndpoints
{
    /// <summary>At most this many open connections are listed per listener on <c>/connections</c>.</summary>
    public const int MaxListedConnections = 1000;

    internal const string ReadyTag = "ready";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Maps <c>/health/live</c>, <c>/health/ready</c>, <c>/health</c>, <c>/metrics</c> and <c>/connections</c>.</summary>
    public static IEndpointRouteBuilder MapKestrelTcpManagement(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        endpoints.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag) });
        endpoints.MapHealthChecks("/health", new HealthCheckOptions
        {
            Predicate = c => c.Tags.Contains(ReadyTag),
            ResponseWriter = WriteHealthAsync,
        });
        endpoints.MapGet("/metrics", (MetricsExporter exporter) => Results.Text(exporter.Render(), PrometheusTextWriter.ContentType));
        endpoints.MapGet("/connections", (KestrelTcpRuntime runtime, TimeProvider time) => Results.Json(ConnectionsView(runtime, time), Json));
        return endpoints;
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        var runtime = context.RequestServices.GetRequiredService<KestrelTcpRuntime>();
        context.Response.ContentType = "application/json; charset=utf-8";
        var body = new
        {
            status = report.Status.ToString(),
            state = runtime.State.ToString(),
            http = runtime.HttpEndpoint,
            listeners = runtime.Listeners.Select(l => new
            {
                name = l.Name,
                handler = l.HandlerName,
                endpoint = l.Endpoint,
                state = l.State.ToString(),
                activeConnections = l.ActiveConnections,
            }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, Json));
    }

    private static object ConnectionsView(KestrelTcpRuntime runtime, TimeProvider time)
    {
        var now = time.GetTimestamp();
        var wallNow = time.GetUtcNow();
        return new
        {
            listeners = runtime.Listeners.Select(l => new
            {
                name = l.Name,
                handler = l.HandlerName,
                endpoint = l.Endpoint,
                activeConnections = l.ActiveConnections,
                acceptedTotal = l.Stats.Accepted,
                rejectedTotal = KestrelTcpMetrics.RejectReasons.ToDictionary(KestrelTcpMetrics.Label, l.Stats.Rejected),
                closedTotal = KestrelTcpMetrics.CloseReasons.ToDictionary(KestrelTcpMetrics.Label, l.Stats.Closed),
                bytesReceivedTotal = l.BytesReceived,
                bytesSentTotal = l.BytesSent,
                listed = Math.Min(l.OpenCount, MaxListedConnections),
                truncated = l.OpenCount > MaxListedConnections,
                connections = l.Open.Snapshot(MaxListedConnections).Select(c => new
                {
                    id = c.Id,
                    remote = c.Remote?.ToString(),
                    connectedAt = wallNow - time.GetElapsedTime(c.StartTimestamp, now),
                    bytesReceived = c.Transfer.BytesReceived,
                    bytesSent = c.Transfer.BytesSent,
                    idleSeconds = Math.Round(time.GetElapsedTime(c.Transfer.LastReceivedTimestamp, now).TotalSeconds, 3),
                }),
            }),
        };
    }
}

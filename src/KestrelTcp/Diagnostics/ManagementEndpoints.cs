using System.Text.Json;
using KestrelTcp.Dashboard;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Serilog;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KestrelTcp.Diagnostics;

/// <summary>The HTTP management endpoints: health, metrics, the live connections view and the dashboard.</summary>
public static class ManagementEndpoints
{
    /// <summary>At most this many open connections are listed per listener on <c>/connections</c>.</summary>
    public const int MaxListedConnections = 1000;

    internal const string ReadyTag = "ready";

    internal const string MetricsPath = "/metrics";

    /// <summary>Readiness and liveness probes, Prometheus scrapes and the dashboard's polls: routine, logged at Debug.</summary>
    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/health") || path.StartsWithSegments(MetricsPath) || DashboardEndpoints.IsRoutine(path);

    /// <summary>Liveness: no check runs; answering at all is alive.</summary>
    private static readonly HealthCheckOptions LiveProbe = new() { Predicate = _ => false };

    /// <summary>Readiness: the checks tagged <see cref="ReadyTag"/>.</summary>
    private static readonly HealthCheckOptions ReadyProbe = new() { Predicate = c => c.Tags.Contains(ReadyTag) };

    /// <summary>
    /// The management port: request logging (Serilog's, one event per request; the probes of
    /// <c>/health*</c>, <c>/metrics</c> and the dashboard's assets and polls at Debug so that a probe a second
    /// does not flood the log; opening the dashboard, <c>GET /</c>, is logged),
    /// then the two probes as middleware ahead of routing, then the endpoints of <see cref="MapKestrelTcpManagement"/>.
    /// </summary>
    public static WebApplication UseKestrelTcpManagement(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseSerilogRequestLogging(options =>
        {
            options.Logger = app.Services.GetService<Serilog.ILogger>();
            // A probe's 503 (starting, draining) is routine too.
            options.GetLevel = static (context, _, exception) =>
                IsProbe(context.Request.Path) ? Serilog.Events.LogEventLevel.Debug
                : exception is not null || context.Response.StatusCode >= StatusCodes.Status500InternalServerError ? Serilog.Events.LogEventLevel.Error
                : Serilog.Events.LogEventLevel.Information;
        });
        // The probes answer ahead of routing: the endpoint matcher is built on the first request that
        // reaches it, and built for the first readiness probe it was ~250 JIT-compiled methods and
        // 60-100 ms of process start to ready (issue 16); now the first /metrics or dashboard request
        // builds it. The mapped /health/live and /health/ready endpoints stay behind, for the paths the
        // middleware does not take (a trailing slash).
        app.UseHealthChecks("/health/live", LiveProbe);
        app.UseHealthChecks("/health/ready", ReadyProbe);
        app.UseRouting();
        app.MapKestrelTcpManagement();
        return app;
    }

    /// <summary>
    /// Maps <c>/health/live</c>, <c>/health/ready</c>, <c>/health</c>, <c>/metrics</c>, <c>/connections</c>
    /// and the dashboard: <c>/</c> and its assets, and <c>/dashboard/data</c> (docs/dashboard.md).
    /// </summary>
    public static IEndpointRouteBuilder MapKestrelTcpManagement(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks("/health/live", LiveProbe);
        endpoints.MapHealthChecks("/health/ready", ReadyProbe);
        endpoints.MapHealthChecks("/health", new HealthCheckOptions
        {
            Predicate = c => c.Tags.Contains(ReadyTag),
            ResponseWriter = WriteHealthAsync,
        });
        // OpenTelemetry's Prometheus exporter: the KestrelTcp meter, Kestrel's and the runtime's (KestrelTcpTelemetry).
        endpoints.MapPrometheusScrapingEndpoint(MetricsPath);
        endpoints.MapGet("/connections", (KestrelTcpRuntime runtime, TimeProvider time) => Results.Json(DescribeConnections(runtime, time), ManagementJsonContext.Default.ConnectionsView));
        endpoints.MapKestrelTcpDashboard();
        return endpoints;
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        var runtime = context.RequestServices.GetRequiredService<KestrelTcpRuntime>();
        context.Response.ContentType = "application/json; charset=utf-8";
        var listeners = runtime.Listeners;
        var views = new HealthListenerView[listeners.Count];
        for (var i = 0; i < views.Length; i++)
        {
            var l = listeners[i];
            views[i] = new HealthListenerView
            {
                Name = l.Name,
                Handler = l.HandlerName,
                Endpoint = l.Endpoint,
                State = l.State.ToString(),
                ActiveConnections = l.ActiveConnections,
            };
        }

        var body = new HealthView
        {
            Status = report.Status.ToString(),
            State = runtime.State.ToString(),
            Http = runtime.HttpEndpoint,
            Listeners = views,
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, ManagementJsonContext.Default.HealthView));
    }

    private static ConnectionsView DescribeConnections(KestrelTcpRuntime runtime, TimeProvider time)
    {
        var now = time.GetTimestamp();
        var wallNow = time.GetUtcNow();
        var listeners = runtime.Listeners;
        var views = new ConnectionsListenerView[listeners.Count];
        for (var i = 0; i < views.Length; i++)
        {
            var l = listeners[i];
            views[i] = new ConnectionsListenerView
            {
                Name = l.Name,
                Handler = l.HandlerName,
                Endpoint = l.Endpoint,
                ActiveConnections = l.ActiveConnections,
                AcceptedTotal = l.Stats.Accepted,
                RejectedTotal = KestrelTcpMetrics.RejectedByReason(l.Stats),
                ClosedTotal = KestrelTcpMetrics.ClosedByReason(l.Stats),
                BytesReceivedTotal = l.BytesReceived,
                BytesSentTotal = l.BytesSent,
                Listed = Math.Min(l.OpenCount, MaxListedConnections),
                Truncated = l.OpenCount > MaxListedConnections,
                Connections = l.Open.Snapshot(MaxListedConnections).Select(c => new ConnectionView
                {
                    Id = c.Id,
                    Remote = c.Remote?.ToString(),
                    Peer = c.Peer?.ToString(),
                    ConnectedAt = wallNow - time.GetElapsedTime(c.StartTimestamp, now),
                    BytesReceived = c.Transfer.BytesReceived,
                    BytesSent = c.Transfer.BytesSent,
                    IdleSeconds = Math.Round(time.GetElapsedTime(c.Transfer.LastReceivedTimestamp, now).TotalSeconds, 3),
                }),
            };
        }

        return new ConnectionsView { Listeners = views };
    }
}

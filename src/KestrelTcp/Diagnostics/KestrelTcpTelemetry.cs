using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// Metrics on OpenTelemetry: the <c>KestrelTcp</c> meter (<see cref="KestrelTcpMetrics"/>), Kestrel's
/// own meter and the .NET runtime's, served as Prometheus text on <c>/metrics</c> of the management
/// port (exact at every scrape: no response cache; no scope labels on the series) and, when the
/// standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, pushed over OTLP too (the exporter honours
/// <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, and the reader <c>OTEL_METRIC_EXPORT_INTERVAL</c>).
/// </summary>
internal static class KestrelTcpTelemetry
{
    /// <summary>Kestrel's meter: connections, TLS handshakes, queued connections of the management port and the listeners.</summary>
    public const string KestrelMeter = "Microsoft.AspNetCore.Server.Kestrel";

    /// <summary>
    /// The series each kept instrument may have: 500 (OpenTelemetry's default is 2,000, each point
    /// preallocated). KestrelTcp's largest family has a series per listener and reason, 7 reasons:
    /// room for 70 listeners.
    /// </summary>
    private static readonly MetricStreamConfiguration Kept = new() { CardinalityLimit = 500 };

    /// <summary>The standard OpenTelemetry variable that turns the OTLP push on.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The meters and the Prometheus exporter behind <c>/metrics</c>.</summary>
    public static IServiceCollection AddKestrelTcpMetrics(this IServiceCollection services)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("kestreltcp"))
            .WithMetrics(metrics => metrics
                .AddMeter(KestrelTcpMetrics.MeterName, KestrelMeter)
                .AddRuntimeInstrumentation()
                .AddPrometheusExporter(options =>
                {
                    options.ScrapeResponseCacheDurationMilliseconds = 0;
                    options.ScopeInfoEnabled = false;
                }));

        // OpenTelemetry listens to meters by name, process-wide. Two hosts in one process (tests, an
        // application hosting two servers) would each export the other's KestrelTcp and Kestrel
        // series as well; only the meters made by this host's IMeterFactory are this host's.
        services.ConfigureOpenTelemetryMeterProvider((provider, metrics) =>
        {
            var factory = provider.GetRequiredService<IMeterFactory>();
            metrics.AddView(instrument =>
                instrument.Meter.Scope is { } scope && !ReferenceEquals(scope, factory) ? MetricStreamConfiguration.Drop : Kept);
        });
        return services;
    }

    /// <summary>The OTLP push, when <see cref="OtlpEndpointVariable"/> is configured (an environment variable, usually).</summary>
    public static void AddKestrelTcpOtlp(this WebApplicationBuilder builder)
    {
        if (builder.Configuration[OtlpEndpointVariable] is { Length: > 0 })
        {
            builder.Services.AddOpenTelemetry().WithMetrics(AddOtlp);
        }
    }

    // Its own method, so that without OTLP the exporter's assembly is never loaded (the JIT loads an
    // assembly when it compiles the first method that names one of its types).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AddOtlp(MeterProviderBuilder metrics) => metrics.AddOtlpExporter();
}

using System.Diagnostics;
using System.Diagnostics.Metrics;
using KestrelTcp.Connections;
using KestrelTcp.Hosting;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// The <c>KestrelTcp</c> meter, so <c>dotnet-counters</c> and OpenTelemetry see the same figures as
/// <c>/metrics</c>: the counters are observed from the listeners' own counts (read at collection
/// time, nothing extra per connection), the duration histogram is recorded at each close.
/// </summary>
internal sealed class KestrelTcpMetrics
{
    public const string MeterName = "KestrelTcp";

    private readonly Histogram<double> _duration;

    public KestrelTcpMetrics(IMeterFactory meterFactory, Lazy<KestrelTcpRuntime> runtime)
    {
        var meter = meterFactory.Create(MeterName);
        _duration = meter.CreateHistogram<double>("kestreltcp.connection.duration", "s", "Connection lifetimes",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = ListenerStats.DurationBuckets });

        meter.CreateObservableUpDownCounter("kestreltcp.connections.active",
            () => runtime.Value.Listeners.Select(l => new Measurement<long>(l.ActiveConnections, Tags(l))), "{connection}", "Open connections");
        meter.CreateObservableCounter("kestreltcp.connections.accepted",
            () => runtime.Value.Listeners.Select(l => new Measurement<long>(l.Stats.Accepted, Tags(l))), "{connection}", "Connections accepted");
        meter.CreateObservableCounter("kestreltcp.connections.rejected",
            () => runtime.Value.Listeners.SelectMany(l => RejectReasons.Select(r => new Measurement<long>(l.Stats.Rejected(r),
                new KeyValuePair<string, object?>("listener", l.Name), new KeyValuePair<string, object?>("reason", Label(r))))),
            "{connection}", "Connections refused");
        meter.CreateObservableCounter("kestreltcp.connections.closed",
            () => runtime.Value.Listeners.SelectMany(l => CloseReasons.Select(r => new Measurement<long>(l.Stats.Closed(r),
                new KeyValuePair<string, object?>("listener", l.Name), new KeyValuePair<string, object?>("reason", Label(r))))),
            "{connection}", "Connections ended");
        meter.CreateObservableCounter("kestreltcp.bytes.received",
            () => runtime.Value.Listeners.Select(l => new Measurement<long>(l.BytesReceived, new KeyValuePair<string, object?>("listener", l.Name))), "By", "Bytes read from clients");
        meter.CreateObservableCounter("kestreltcp.bytes.sent",
            () => runtime.Value.Listeners.Select(l => new Measurement<long>(l.BytesSent, new KeyValuePair<string, object?>("listener", l.Name))), "By", "Bytes written to clients");
    }

    public static IReadOnlyList<CloseReason> CloseReasons { get; } = [.. Enum.GetValues<CloseReason>().Where(r => r != CloseReason.None)];

    public static IReadOnlyList<RejectReason> RejectReasons { get; } = [.. Enum.GetValues<RejectReason>().Where(r => r != RejectReason.None)];

    public void RecordDuration(ListenerRuntime listener, double seconds)
    {
        if (_duration.Enabled)
        {
            _duration.Record(seconds, new TagList { { "listener", listener.Name } });
        }
    }

    /// <summary>The label value of a close reason: <c>idle_timeout</c>, <c>line_too_long</c>, …</summary>
    public static string Label(CloseReason reason) => reason switch
    {
        CloseReason.Client => "client",
        CloseReason.Server => "server",
        CloseReason.IdleTimeout => "idle_timeout",
        CloseReason.LineTooLong => "line_too_long",
        CloseReason.Shutdown => "shutdown",
        CloseReason.Error => "error",
        _ => "none",
    };

    /// <summary>The label value of a reject reason: <c>max_connections</c>, …</summary>
    public static string Label(RejectReason reason) => reason switch
    {
        RejectReason.MaxConnections => "max_connections",
        RejectReason.MaxConnectionsPerClient => "max_connections_per_client",
        RejectReason.ShuttingDown => "shutting_down",
        _ => "none",
    };

    private static KeyValuePair<string, object?>[] Tags(ListenerRuntime l) =>
        [new("listener", l.Name), new("handler", l.HandlerName)];
}

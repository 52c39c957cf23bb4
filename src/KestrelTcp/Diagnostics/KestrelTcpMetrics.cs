using System.Diagnostics;
using System.Diagnostics.Metrics;
using KestrelTcp.Connections;
using KestrelTcp.Faults;
using KestrelTcp.Hosting;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// The <c>KestrelTcp</c> meter: the one place KestrelTcp's instruments are declared. <c>/metrics</c>
/// (OpenTelemetry's Prometheus exporter), OTLP and <c>dotnet-counters</c> all read it. The counters
/// are observed from the listeners' own counts (read at collection time, nothing per connection);
/// the duration histogram is recorded at each close. Names and units are chosen so that the
/// Prometheus exporter's translation gives the contract's families exactly: dots become
/// underscores, counters get <c>_total</c>, a unit in braces adds nothing (<c>{byte}</c>, not
/// <c>By</c>, which would add <c>_bytes</c>), <c>s</c> adds <c>_seconds</c>.
/// </summary>
internal sealed class KestrelTcpMetrics
{
    public const string MeterName = "KestrelTcp";

    /// <summary>Upper bounds, in seconds, of the connection duration histogram: from a probe to an hour-long session.</summary>
    public static readonly double[] DurationBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600];

    private readonly Histogram<double> _duration;

    public KestrelTcpMetrics(IMeterFactory meterFactory, Lazy<KestrelTcpRuntime> runtime)
    {
        var meter = meterFactory.Create(MeterName);
        _duration = meter.CreateHistogram<double>("kestreltcp.connection.duration", "s", "Connection lifetimes in seconds.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

        meter.CreateObservableUpDownCounter("kestreltcp.connections.active",
            () => runtime.Value.Listeners.Select(l => new Measurement<long>(l.ActiveConnections, Tags(l))), "{connection}", "Open connections now.");
        meter.CreateObservableCounter("kestreltcp.connections.accepted",
            () => runtime.Value.Listeners.Select(l => new Measurement<long>(l.Stats.Accepted, Tags(l))), "{connection}", "Connections accepted.");
        meter.CreateObservableCounter("kestreltcp.connections.rejected",
            () => runtime.Value.Listeners.SelectMany(l => RejectReasons.Select(r => new Measurement<long>(l.Stats.Rejected(r),
                new KeyValuePair<string, object?>("listener", l.Name), new KeyValuePair<string, object?>("reason", Label(r))))),
            "{connection}", "Connections refused, by reason.");
        meter.CreateObservableCounter("kestreltcp.connections.closed",
            () => runtime.Value.Listeners.SelectMany(l => CloseReasons.Select(r => new Measurement<long>(l.Stats.Closed(r),
                new KeyValuePair<string, object?>("listener", l.Name), new KeyValuePair<string, object?>("reason", Label(r))))),
            "{connection}", "Connections ended, by reason.");
        meter.CreateObservableCounter("kestreltcp.bytes.received",
            () => runtime.Value.Listeners.Select(l => new Measurement<long>(l.BytesReceived, new KeyValuePair<string, object?>("listener", l.Name))), "{byte}", "Bytes read from clients.");
        meter.CreateObservableCounter("kestreltcp.bytes.sent",
            () => runtime.Value.Listeners.Select(l => new Measurement<long>(l.BytesSent, new KeyValuePair<string, object?>("listener", l.Name))), "{byte}", "Bytes written to clients.");
        meter.CreateObservableCounter("kestreltcp.faults", () => FaultCounters.Measure(runtime.Value.Listeners), "{fault}", "Faults applied, by kind: each once per connection it applied to.");
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

    /// <summary>A listener's refusals by <c>reason</c> label, every reason present: what <c>/connections</c> and the dashboard show.</summary>
    public static Dictionary<string, long> RejectedByReason(ListenerStats stats) => RejectReasons.ToDictionary(Label, stats.Rejected);

    /// <summary>A listener's closes by <c>reason</c> label, every reason present.</summary>
    public static Dictionary<string, long> ClosedByReason(ListenerStats stats) => CloseReasons.ToDictionary(Label, stats.Closed);

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
        RejectReason.AccessDenied => "access_denied",
        RejectReason.RateLimited => "rate_limited",
        RejectReason.ProxyProtocol => "proxy_protocol",
        RejectReason.TlsHandshake => "tls_handshake",
        _ => "none",
    };

    private static KeyValuePair<string, object?>[] Tags(ListenerRuntime l) =>
        [new("listener", l.Name), new("handler", l.HandlerName)];
}

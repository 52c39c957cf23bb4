using System.Text;
using KestrelTcp.Hosting;

namespace KestrelTcp.Diagnostics;

/// <summary>Renders every listener's counters as the <c>/metrics</c> Prometheus exposition.</summary>
internal sealed class MetricsExporter(KestrelTcpRuntime runtime)
{
    public string Render()
    {
        var text = new StringBuilder(4096);
        var writer = new PrometheusTextWriter(text);
        var listeners = runtime.Listeners;

        writer.WriteFamily("kestreltcp_connections_active", "gauge", "Open connections now.");
        foreach (var l in listeners)
        {
            writer.WriteSample("kestreltcp_connections_active", l.ActiveConnections, ("listener", l.Name), ("handler", l.HandlerName));
        }

        writer.WriteFamily("kestreltcp_connections_accepted_total", "counter", "Connections accepted.");
        foreach (var l in listeners)
        {
            writer.WriteSample("kestreltcp_connections_accepted_total", l.Stats.Accepted, ("listener", l.Name), ("handler", l.HandlerName));
        }

        writer.WriteFamily("kestreltcp_connections_rejected_total", "counter", "Connections refused, by reason.");
        foreach (var l in listeners)
        {
            foreach (var reason in KestrelTcpMetrics.RejectReasons)
            {
                writer.WriteSample("kestreltcp_connections_rejected_total", l.Stats.Rejected(reason), ("listener", l.Name), ("reason", KestrelTcpMetrics.Label(reason)));
            }
        }

        writer.WriteFamily("kestreltcp_connections_closed_total", "counter", "Connections ended, by reason.");
        foreach (var l in listeners)
        {
            foreach (var reason in KestrelTcpMetrics.CloseReasons)
            {
                writer.WriteSample("kestreltcp_connections_closed_total", l.Stats.Closed(reason), ("listener", l.Name), ("reason", KestrelTcpMetrics.Label(reason)));
            }
        }

        writer.WriteFamily("kestreltcp_bytes_received_total", "counter", "Bytes read from clients.");
        foreach (var l in listeners)
        {
            writer.WriteSample("kestreltcp_bytes_received_total", l.BytesReceived, ("listener", l.Name));
        }

        writer.WriteFamily("kestreltcp_bytes_sent_total", "counter", "Bytes written to clients.");
        foreach (var l in listeners)
        {
            writer.WriteSample("kestreltcp_bytes_sent_total", l.BytesSent, ("listener", l.Name));
        }

        writer.WriteFamily("kestreltcp_connection_duration_seconds", "histogram", "Connection lifetimes in seconds.");
        foreach (var l in listeners)
        {
            var (counts, sum, count) = l.Stats.DurationSnapshot();
            long cumulative = 0;
            for (var i = 0; i < ListenerStats.DurationBuckets.Length; i++)
            {
                cumulative += counts[i];
                writer.WriteSample("kestreltcp_connection_duration_seconds_bucket", cumulative,
                    ("listener", l.Name), ("le", PrometheusTextWriter.FormatValue(ListenerStats.DurationBuckets[i])));
            }

            writer.WriteSample("kestreltcp_connection_duration_seconds_bucket", count, ("listener", l.Name), ("le", "+Inf"));
            writer.WriteSample("kestreltcp_connection_duration_seconds_sum", sum, ("listener", l.Name));
            writer.WriteSample("kestreltcp_connection_duration_seconds_count", count, ("listener", l.Name));
        }

        return text.ToString();
    }
}

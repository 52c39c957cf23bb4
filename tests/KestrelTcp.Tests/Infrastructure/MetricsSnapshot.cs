namespace KestrelTcp.Tests.Infrastructure;

/// <summary>One scrape of /metrics, validated against the format's rules, with lookups by labels.</summary>
public sealed class MetricsSnapshot
{
    private MetricsSnapshot(string text, IReadOnlyDictionary<string, ExpositionFamily> families)
    {
        Text = text;
        Families = families;
    }

    public string Text { get; }

    public IReadOnlyDictionary<string, ExpositionFamily> Families { get; }

    public static async Task<MetricsSnapshot> ScrapeAsync(TestServer server)
    {
        var text = await server.MetricsAsync();
        return new MetricsSnapshot(text, ExpositionValidator.Validate(text));
    }

    /// <summary>The sample of <paramref name="name"/> whose labels are exactly <paramref name="labels"/> (any order).</summary>
    public double Value(string name, params (string Name, string Value)[] labels)
    {
        var matches = Samples(name).Where(s => s.Labels.Count == labels.Length && labels.All(l => s.Label(l.Name) == l.Value)).ToList();
        return matches.Count == 1 ? matches[0].Value : throw new KeyNotFoundException($"{matches.Count} samples {name}{{{string.Join(",", labels)}}} in:\n{Text}");
    }

    /// <summary>The sum over every sample of <paramref name="name"/> for <paramref name="listener"/> (e.g. closed_total over reasons).</summary>
    public double Sum(string name, string listener) => Samples(name).Where(s => s.Label("listener") == listener).Sum(s => s.Value);

    public IEnumerable<ExpositionSample> Samples(string name) => Families.Values.SelectMany(f => f.Samples).Where(s => s.Name == name);

    public double Active(string listener, string handler) => Value("kestreltcp_connections_active", ("listener", listener), ("handler", handler));

    public double Accepted(string listener, string handler) => Value("kestreltcp_connections_accepted_total", ("listener", listener), ("handler", handler));

    public double Closed(string listener, string reason) => Value("kestreltcp_connections_closed_total", ("listener", listener), ("reason", reason));

    public double ClosedTotal(string listener) => Sum("kestreltcp_connections_closed_total", listener);

    public double Rejected(string listener, string reason) => Value("kestreltcp_connections_rejected_total", ("listener", listener), ("reason", reason));

    public double BytesReceived(string listener) => Value("kestreltcp_bytes_received_total", ("listener", listener));

    public double BytesSent(string listener) => Value("kestreltcp_bytes_sent_total", ("listener", listener));

    public double DurationCount(string listener) => Value("kestreltcp_connection_duration_seconds_count", ("listener", listener));

    public double DurationSum(string listener) => Value("kestreltcp_connection_duration_seconds_sum", ("listener", listener));
}

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>One sample of an exposition.</summary>
public sealed record ExpositionSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public string? Label(string name) => Labels.GetValueOrDefault(name);
}

/// <summary>One family of an exposition: its <c># TYPE</c>, <c># HELP</c> and samples.</summary>
public sealed record ExpositionFamily(string Name, string? Type, string? Help, IReadOnlyList<ExpositionSample> Samples);

/// <summary>
/// One scrape of /metrics with lookups by labels. The format itself is checked by the real
/// Prometheus tooling (<see cref="Promtool"/>), not here.
/// </summary>
public sealed class MetricsSnapshot
{
    private MetricsSnapshot(string text)
    {
        Text = text;
        var types = new Dictionary<string, string>();
        var helps = new Dictionary<string, string>();
        foreach (var line in text.Split('\n'))
        {
            var parts = line.Split(' ', 4);
            if (parts is ["#", "TYPE", var name, var type])
            {
                types[name] = type;
            }
            else if (parts is ["#", "HELP", var helpName, ..])
            {
                helps[helpName] = parts.Length > 3 ? parts[3] : "";
            }
        }

        var samples = PrometheusText.Samples(text).Select(s => new ExpositionSample(s.Name, s.Labels, s.Value)).ToList();
        Families = types.Keys.ToDictionary(name => name, name => new ExpositionFamily(name, types[name], helps.GetValueOrDefault(name),
            [.. samples.Where(s => FamilyOf(s.Name, types) == name)]));
    }

    public string Text { get; }

    public IReadOnlyDictionary<string, ExpositionFamily> Families { get; }

    public static async Task<MetricsSnapshot> ScrapeAsync(TestServer server) => new(await server.MetricsAsync());

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

    /// <summary>The histogram's count for <paramref name="listener"/>; 0 before its first close (OpenTelemetry exports a histogram from its first measurement).</summary>
    public double DurationCount(string listener) =>
        Samples("kestreltcp_connection_duration_seconds_count").Any(s => s.Label("listener") == listener)
            ? Value("kestreltcp_connection_duration_seconds_count", ("listener", listener))
            : 0;

    public double DurationSum(string listener) => Value("kestreltcp_connection_duration_seconds_sum", ("listener", listener));

    // A histogram's samples (_bucket, _sum, _count) belong to the family of its base name.
    private static string FamilyOf(string sample, Dictionary<string, string> types)
    {
        if (types.ContainsKey(sample))
        {
            return sample;
        }

        foreach (var suffix in (string[])["_bucket", "_sum", "_count"])
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal) && types.TryGetValue(sample[..^suffix.Length], out var type) && type == "histogram")
            {
                return sample[..^suffix.Length];
            }
        }

        return sample;
    }
}

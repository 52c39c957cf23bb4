using System.Globalization;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>Reads samples out of a Prometheus text exposition (labels matched as a set: their order carries no meaning).</summary>
public static class PrometheusText
{
    public static double Value(string exposition, string name, params (string Name, string Value)[] labels)
    {
        var wanted = labels.ToDictionary(l => l.Name, l => l.Value);
        foreach (var sample in Samples(exposition))
        {
            if (sample.Name == name && sample.Labels.Count == wanted.Count && wanted.All(w => sample.Labels.GetValueOrDefault(w.Key) == w.Value))
            {
                return sample.Value;
            }
        }

        throw new KeyNotFoundException($"No sample {name}{{{string.Join(",", labels.Select(l => $"{l.Name}=\"{l.Value}\""))}}} in:\n{exposition}");
    }

    public static double Sum(string exposition, string name, string listener) =>
        Samples(exposition).Where(s => s.Name == name && s.Labels.GetValueOrDefault("listener") == listener).Sum(s => s.Value);

    /// <summary>Every sample line: its name, labels and value (label values without escapes, which KestrelTcp's never need).</summary>
    public static IEnumerable<(string Name, IReadOnlyDictionary<string, string> Labels, double Value)> Samples(string exposition)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var space = line.LastIndexOf(' ');
            var labels = new Dictionary<string, string>();
            string name;
            if (brace >= 0 && brace < space)
            {
                name = line[..brace];
                var body = line[(brace + 1)..line.LastIndexOf('}')];
                foreach (var pair in body.Split("\",", StringSplitOptions.RemoveEmptyEntries))
                {
                    var equals = pair.IndexOf('=', StringComparison.Ordinal);
                    labels[pair[..equals]] = pair[(equals + 1)..].Trim('"');
                }
            }
            else
            {
                name = line[..line.IndexOf(' ', StringComparison.Ordinal)];
            }

            var value = line[(space + 1)..];
            yield return (name, labels, value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                "NaN" => double.NaN,
                _ => double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture),
            });
        }
    }
}

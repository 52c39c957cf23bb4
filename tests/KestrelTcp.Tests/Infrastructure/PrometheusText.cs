using System.Globalization;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>Reads samples out of a Prometheus text exposition.</summary>
public static class PrometheusText
{
    public static double Value(string exposition, string name, params (string Name, string Value)[] labels)
    {
        var wanted = labels.Length == 0 ? name : $"{name}{{{string.Join(",", labels.Select(l => $"{l.Name}=\"{l.Value}\""))}}}";
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith(wanted + " ", StringComparison.Ordinal))
            {
                return double.Parse(line[(wanted.Length + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture);
            }
        }

        throw new KeyNotFoundException($"No sample {wanted} in:\n{exposition}");
    }

    public static double Sum(string exposition, string name, string listener) =>
        exposition.Split('\n')
            .Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains($"listener=\"{listener}\"", StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture));
}

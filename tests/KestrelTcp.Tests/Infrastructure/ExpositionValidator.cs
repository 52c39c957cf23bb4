using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>One sample of an exposition: its name, its labels (unescaped, in order) and its value.</summary>
public sealed record ExpositionSample(string Name, IReadOnlyList<KeyValuePair<string, string>> Labels, double Value)
{
    public string? Label(string name) => Labels.FirstOrDefault(l => l.Key == name).Value;

    /// <summary>The series key: name and labels sorted by name.</summary>
    public string SeriesKey => Name + "{" + string.Join(",", Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) + "}";
}

/// <summary>A metric family: its HELP, TYPE and samples, as parsed.</summary>
public sealed class ExpositionFamily(string name)
{
    public string Name { get; } = name;

    public string? Help { get; set; }

    public string? Type { get; set; }

    public List<ExpositionSample> Samples { get; } = [];
}

/// <summary>
/// Parses a whole Prometheus text exposition (format 0.0.4) and checks its rules, throwing with the
/// line at fault: metric and label names, escapes, one HELP and one TYPE per family before its samples,
/// families not interleaved, no duplicate series, counters named <c>_total</c>, histogram buckets
/// cumulative with <c>le</c> ascending up to <c>+Inf</c> equal to <c>_count</c>, and <c>_sum</c> present.
/// </summary>
public static partial class ExpositionValidator
{
    private static readonly string[] Types = ["counter", "gauge", "histogram", "summary", "untyped"];

    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    private static partial Regex MetricName();

    [GeneratedRegex("^[a-zA-Z_][a-zA-Z0-9_]*$")]
    private static partial Regex LabelName();

    /// <summary>Validates <paramref name="text"/>; returns its families by name, in order of appearance.</summary>
    public static IReadOnlyDictionary<string, ExpositionFamily> Validate(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw Fail(0, "", "the exposition does not end with a line feed");
        }

        var families = new Dictionary<string, ExpositionFamily>(StringComparer.Ordinal);
        var finished = new HashSet<string>(StringComparer.Ordinal);
        var series = new HashSet<string>(StringComparer.Ordinal);
        ExpositionFamily? current = null;
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var number = i + 1;
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length < 3 || parts[0] != "#" || parts[1] is not ("HELP" or "TYPE"))
                {
                    continue; // an ordinary comment
                }

                var name = parts[2];
                if (!MetricName().IsMatch(name))
                {
                    throw Fail(number, line, $"'{name}' is not a metric name");
                }

                var family = Enter(name, number, line);
                if (family.Samples.Count > 0)
                {
                    throw Fail(number, line, $"{parts[1]} of {name} after its samples");
                }

                if (parts[1] == "HELP")
                {
                    if (family.Help is not null)
                    {
                        throw Fail(number, line, $"a second HELP for {name}");
                    }

                    family.Help = Unescape(parts.Length > 3 ? parts[3] : "", allowQuote: false, number, line);
                }
                else
                {
                    if (family.Type is not null)
                    {
                        throw Fail(number, line, $"a second TYPE for {name}");
                    }

                    var type = parts.Length > 3 ? parts[3] : "";
                    if (!Types.Contains(type))
                    {
                        throw Fail(number, line, $"'{type}' is not a metric type");
                    }

                    family.Type = type;
                    if (type == "counter" && !name.EndsWith("_total", StringComparison.Ordinal))
                    {
                        throw Fail(number, line, $"counter {name} does not end in _total");
                    }
                }

                continue;
            }

            var sample = ParseSample(line, number);
            var familyName = FamilyOf(sample.Name, families);
            var owner = Enter(familyName, number, line);
            if (!series.Add(sample.SeriesKey))
            {
                throw Fail(number, line, $"duplicate series {sample.SeriesKey}");
            }

            CheckSampleName(owner, sample, number, line);
            owner.Samples.Add(sample);
        }

        foreach (var family in families.Values.Where(f => f.Type == "histogram"))
        {
            CheckHistogram(family);
        }

        return families;

        ExpositionFamily Enter(string name, int number, string line)
        {
            if (current?.Name == name)
            {
                return current;
            }

            if (current is not null)
            {
                finished.Add(current.Name);
            }

            if (finished.Contains(name))
            {
                throw Fail(number, line, $"family {name} continues after another family began");
            }

            current = new ExpositionFamily(name);
            families.Add(name, current);
            return current;
        }
    }

    private static string FamilyOf(string sampleName, Dictionary<string, ExpositionFamily> families)
    {
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sampleName.EndsWith(suffix, StringComparison.Ordinal)
                && families.TryGetValue(sampleName[..^suffix.Length], out var family)
                && family.Type is "histogram" or "summary")
            {
                return family.Name;
            }
        }

        return sampleName;
    }

    private static void CheckSampleName(ExpositionFamily family, ExpositionSample sample, int number, string line)
    {
        if (family.Type is "histogram")
        {
            if (sample.Name == family.Name + "_bucket")
            {
                if (sample.Label("le") is null)
                {
                    throw Fail(number, line, "a histogram bucket without le");
                }
            }
            else if (sample.Name != family.Name + "_sum" && sample.Name != family.Name + "_count")
            {
                throw Fail(number, line, $"{sample.Name} is not a sample of histogram {family.Name}");
            }
            else if (sample.Label("le") is not null)
            {
                throw Fail(number, line, "le on a histogram's _sum or _count");
            }
        }
        else if (sample.Name != family.Name)
        {
            throw Fail(number, line, $"{sample.Name} is not a sample of {family.Name}");
        }

        if (family.Type is "counter" or "histogram" && sample.Name != family.Name + "_sum" && (sample.Value < 0 || double.IsNaN(sample.Value)))
        {
            throw Fail(number, line, "a negative or NaN count");
        }
    }

    private static void CheckHistogram(ExpositionFamily family)
    {
        static string Key(ExpositionSample s) => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));

        foreach (var group in family.Samples.GroupBy(Key))
        {
            var buckets = group.Where(s => s.Name == family.Name + "_bucket").ToList();
            var count = group.SingleOrDefault(s => s.Name == family.Name + "_count")
                ?? throw new FormatException($"{family.Name}{{{group.Key}}} has no _count");
            _ = group.SingleOrDefault(s => s.Name == family.Name + "_sum")
                ?? throw new FormatException($"{family.Name}{{{group.Key}}} has no _sum");
            if (buckets.Count == 0 || buckets[^1].Label("le") != "+Inf")
            {
                throw new FormatException($"{family.Name}{{{group.Key}}}: the last bucket is not le=\"+Inf\"");
            }

            var previousLe = double.NegativeInfinity;
            var previousCount = 0.0;
            foreach (var bucket in buckets)
            {
                var le = ParseValue(bucket.Label("le")!) ?? throw new FormatException($"{family.Name}: le=\"{bucket.Label("le")}\" is not a number");
                if (le <= previousLe)
                {
                    throw new FormatException($"{family.Name}{{{group.Key}}}: le {le} after {previousLe}, not ascending");
                }

                if (bucket.Value < previousCount)
                {
                    throw new FormatException($"{family.Name}{{{group.Key}}}: bucket le={le} holds {bucket.Value} < {previousCount}, not cumulative");
                }

                previousLe = le;
                previousCount = bucket.Value;
            }

            if (buckets[^1].Value != count.Value)
            {
                throw new FormatException($"{family.Name}{{{group.Key}}}: +Inf bucket {buckets[^1].Value} != _count {count.Value}");
            }
        }
    }

    private static ExpositionSample ParseSample(string line, int number)
    {
        var i = 0;
        while (i < line.Length && line[i] is not ('{' or ' '))
        {
            i++;
        }

        var name = line[..i];
        if (!MetricName().IsMatch(name))
        {
            throw Fail(number, line, $"'{name}' is not a metric name");
        }

        var labels = new List<KeyValuePair<string, string>>();
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                if (i < line.Length && line[i] == '}')
                {
                    i++;
                    break;
                }

                var eq = line.IndexOf('=', i);
                if (eq < 0)
                {
                    throw Fail(number, line, "a label without '='");
                }

                var labelName = line[i..eq];
                if (!LabelName().IsMatch(labelName) || labelName.StartsWith("__", StringComparison.Ordinal))
                {
                    throw Fail(number, line, $"'{labelName}' is not a label name");
                }

                if (labels.Any(l => l.Key == labelName))
                {
                    throw Fail(number, line, $"label {labelName} twice");
                }

                if (eq + 1 >= line.Length || line[eq + 1] != '"')
                {
                    throw Fail(number, line, "a label value not in quotes");
                }

                var value = new StringBuilder();
                var j = eq + 2;
                for (; j < line.Length && line[j] != '"'; j++)
                {
                    if (line[j] == '\\')
                    {
                        j++;
                        value.Append(j < line.Length ? line[j] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            var other => throw Fail(number, line, $"invalid escape \\{other} in a label value"),
                        } : throw Fail(number, line, "a label value ends in a lone backslash"));
                    }
                    else
                    {
                        value.Append(line[j]);
                    }
                }

                if (j >= line.Length)
                {
                    throw Fail(number, line, "an unterminated label value");
                }

                labels.Add(new(labelName, value.ToString()));
                i = j + 1;
                if (i < line.Length && line[i] == ',')
                {
                    i++;
                }
                else if (i >= line.Length || line[i] != '}')
                {
                    throw Fail(number, line, "labels not separated by ','");
                }
            }
        }

        if (i >= line.Length || line[i] != ' ')
        {
            throw Fail(number, line, "no space before the value");
        }

        var rest = line[(i + 1)..].Split(' ');
        if (rest.Length > 2)
        {
            throw Fail(number, line, "more than a value and a timestamp");
        }

        var parsed = ParseValue(rest[0]) ?? throw Fail(number, line, $"'{rest[0]}' is not a Prometheus float");
        if (rest.Length == 2 && !long.TryParse(rest[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
        {
            throw Fail(number, line, $"'{rest[1]}' is not a timestamp");
        }

        return new ExpositionSample(name, labels, parsed);
    }

    /// <summary>A value as Go's ParseFloat reads it (what Prometheus uses), or null.</summary>
    public static double? ParseValue(string text) => text switch
    {
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ when text.Length > 0 && text.All(c => char.IsAsciiDigit(c) || c is '.' or 'e' or 'E' or '+' or '-')
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) => value,
        _ => null,
    };

    private static string Unescape(string text, bool allowQuote, int number, string line)
    {
        var result = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\')
            {
                result.Append(text[i]);
                continue;
            }

            i++;
            result.Append(i < text.Length ? text[i] switch
            {
                '\\' => '\\',
                'n' => '\n',
                '"' when allowQuote => '"',
                var other => throw Fail(number, line, $"invalid escape \\{other}"),
            } : throw Fail(number, line, "a lone backslash at the end"));
        }

        return result.ToString();
    }

    private static FormatException Fail(int number, string line, string why) => new($"line {number}: {why}: {line}");
}

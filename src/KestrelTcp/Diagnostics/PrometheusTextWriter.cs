using System.Globalization;
using System.Text;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// Writes the Prometheus text exposition format 0.0.4: one <c># HELP</c> and <c># TYPE</c> per
/// family, then its samples; label values escaped (<c>\\</c>, <c>\"</c>, <c>\n</c>); numbers in
/// Go's float syntax (<c>+Inf</c>, <c>-Inf</c>, <c>NaN</c>).
/// </summary>
internal sealed class PrometheusTextWriter(StringBuilder output)
{
    /// <summary>The content type of the format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Starts a metric family: its <c># HELP</c> and <c># TYPE</c> lines.</summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a metric name or <paramref name="type"/> not a type of the format.</exception>
    public void WriteFamily(string name, string type, string help)
    {
        ArgumentNullException.ThrowIfNull(help);
        CheckName(name, allowColon: true);
        if (type is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
        {
            throw new ArgumentException($"'{type}' is not a metric type of the Prometheus text format", nameof(type));
        }

        output.Append("# HELP ").Append(name).Append(' ');
        foreach (var c in help)
        {
            _ = c switch
            {
                '\\' => output.Append(@"\\"),
                '\n' => output.Append(@"\n"),
                _ => output.Append(c),
            };
        }

        output.Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
    }

    /// <summary>Writes one sample; <paramref name="labels"/> are name/value pairs in order.</summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> or a label name is not a valid name.</exception>
    public void WriteSample(string name, double value, params ReadOnlySpan<(string Name, string Value)> labels)
    {
        CheckName(name, allowColon: true);
        output.Append(name);
        if (labels.Length > 0)
        {
            output.Append('{');
            for (var i = 0; i < labels.Length; i++)
            {
                if (i > 0)
                {
                    output.Append(',');
                }

                CheckName(labels[i].Name, allowColon: false);
                output.Append(labels[i].Name).Append("=\"");
                AppendEscaped(labels[i].Value);
                output.Append('"');
            }

            output.Append('}');
        }

        output.Append(' ').Append(FormatValue(value)).Append('\n');
    }

    /// <summary>Formats a sample value as Prometheus reads it.</summary>
    public static string FormatValue(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    // Names are constants of the exporter: a wrong one is a bug to catch in tests, not text to escape.
    private static void CheckName(string name, bool allowColon)
    {
        ArgumentNullException.ThrowIfNull(name);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (!(char.IsAsciiLetter(c) || c == '_' || (c == ':' && allowColon) || (i > 0 && char.IsAsciiDigit(c))))
            {
                throw new ArgumentException($"'{name}' is not a valid {(allowColon ? "metric" : "label")} name", nameof(name));
            }
        }

        if (name.Length == 0)
        {
            throw new ArgumentException("A name cannot be empty", nameof(name));
        }
    }

    private void AppendEscaped(string value)
    {
        foreach (var c in value)
        {
            _ = c switch
            {
                '\\' => output.Append(@"\\"),
                '"' => output.Append("\\\""),
                '\n' => output.Append(@"\n"),
                _ => output.Append(c),
            };
        }
    }
}

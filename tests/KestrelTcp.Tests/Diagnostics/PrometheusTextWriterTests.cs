using System.Text;
using KestrelTcp.Diagnostics;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Diagnostics;

public class PrometheusTextWriterTests
{
    [Fact]
    public void WriteFamily_HelpAndType_TwoLinesInOrder()
    {
        var (text, writer) = Create();
        writer.WriteFamily("demo_total", "counter", "A demo.");
        Assert.Equal("# HELP demo_total A demo.\n# TYPE demo_total counter\n", text.ToString());
    }

    [Fact]
    public void WriteFamily_HelpWithBackslashAndNewline_EscapedButQuoteKept()
    {
        var (text, writer) = Create();
        writer.WriteFamily("demo", "gauge", "C:\\dir \"quoted\"\nsecond line");
        Assert.Equal("# HELP demo C:\\\\dir \"quoted\"\\nsecond line\n# TYPE demo gauge\n", text.ToString());
    }

    [Fact]
    public void WriteSample_NoLabels_NameSpaceValue()
    {
        var (text, writer) = Create();
        writer.WriteSample("demo", 42);
        Assert.Equal("demo 42\n", text.ToString());
    }

    [Fact]
    public void WriteSample_LabelsInGivenOrder_CommaSeparatedQuoted()
    {
        var (text, writer) = Create();
        writer.WriteSample("demo_total", 3, ("listener", "echo"), ("handler", "Echo"));
        Assert.Equal("demo_total{listener=\"echo\",handler=\"Echo\"} 3\n", text.ToString());
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("back\\slash", "back\\\\slash")]
    [InlineData("a \"quote\"", "a \\\"quote\\\"")]
    [InlineData("line\nfeed", "line\\nfeed")]
    [InlineData("all\\\"\n", "all\\\\\\\"\\n")]
    [InlineData("tab\tand cr\r stay raw", "tab\tand cr\r stay raw")]
    [InlineData("ünïcödé ✓", "ünïcödé ✓")]
    [InlineData("", "")]
    public void WriteSample_LabelValue_EscapedAsTheFormatRequires(string value, string expected)
    {
        var (text, writer) = Create();
        writer.WriteSample("demo", 1, ("l", value));
        Assert.Equal($"demo{{l=\"{expected}\"}} 1\n", text.ToString());
    }

    [Theory]
    [InlineData("back\\slash")]
    [InlineData("a \"quote\"")]
    [InlineData("line\nfeed")]
    [InlineData("\\\\\"\"\n\n")]
    [InlineData("ends with backslash\\")]
    public void WriteSample_LabelValue_ValidatorReadsBackTheOriginal(string value)
    {
        var (text, writer) = Create();
        writer.WriteFamily("demo", "gauge", "help with \\ and \n");
        writer.WriteSample("demo", 1, ("l", value));
        var family = ExpositionValidator.Validate(text.ToString())["demo"];
        Assert.Equal(value, family.Samples.Single().Label("l"));
        Assert.Equal("help with \\ and \n", family.Help);
    }

    [Theory]
    [InlineData(double.PositiveInfinity, "+Inf")]
    [InlineData(double.NegativeInfinity, "-Inf")]
    [InlineData(double.NaN, "NaN")]
    [InlineData(0.0, "0")]
    [InlineData(1.0, "1")]
    [InlineData(-2.0, "-2")]
    [InlineData(0.5, "0.5")]
    [InlineData(0.001, "0.001")]
    [InlineData(0.1 + 0.2, "0.30000000000000004")]
    [InlineData(1234567890123.0, "1234567890123")]
    [InlineData(1e-7, "1E-07")]
    [InlineData(1e21, "1E+21")]
    public void FormatValue_Number_GoFloatSyntaxThatRoundTrips(double value, string expected)
    {
        var formatted = PrometheusTextWriter.FormatValue(value);
        Assert.Equal(expected, formatted);
        var parsed = ExpositionValidator.ParseValue(formatted);
        Assert.NotNull(parsed);
        Assert.Equal(value, parsed!.Value);
    }

    [Fact]
    public void WriteSample_LargeCounter_WrittenExactly()
    {
        var (text, writer) = Create();
        writer.WriteSample("bytes_total", 9_007_199_254_740_992); // 2^53: the largest count a double holds exactly
        Assert.Equal("bytes_total 9007199254740992\n", text.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("0starts_with_digit")]
    [InlineData("has-dash")]
    [InlineData("has space")]
    [InlineData("ünicode")]
    public void WriteSample_InvalidMetricName_Throws(string name)
    {
        var (_, writer) = Create();
        Assert.Throws<ArgumentException>(() => writer.WriteSample(name, 1));
        Assert.Throws<ArgumentException>(() => writer.WriteFamily(name, "gauge", "x"));
    }

    [Theory]
    [InlineData("has:colon")]
    [InlineData("1digit")]
    [InlineData("dash-ed")]
    public void WriteSample_InvalidLabelName_Throws(string label)
    {
        var (_, writer) = Create();
        Assert.Throws<ArgumentException>(() => writer.WriteSample("demo", 1, (label, "v")));
    }

    [Fact]
    public void WriteSample_ColonInMetricName_Allowed()
    {
        var (text, writer) = Create();
        writer.WriteSample("job:demo:rate5m", 1);
        Assert.Equal("job:demo:rate5m 1\n", text.ToString());
    }

    [Fact]
    public void WriteFamily_UnknownType_Throws()
    {
        var (_, writer) = Create();
        Assert.Throws<ArgumentException>(() => writer.WriteFamily("demo", "timer", "x"));
    }

    [Fact]
    public void ContentType_IsTextFormat004()
    {
        Assert.StartsWith("text/plain; version=0.0.4", PrometheusTextWriter.ContentType, StringComparison.Ordinal);
    }

    [Fact]
    public void Writer_HistogramFamily_PassesValidator()
    {
        var (text, writer) = Create();
        writer.WriteFamily("demo_seconds", "histogram", "Durations.");
        foreach (var listener in new[] { "a", "b\"c" })
        {
            writer.WriteSample("demo_seconds_bucket", 1, ("listener", listener), ("le", PrometheusTextWriter.FormatValue(0.1)));
            writer.WriteSample("demo_seconds_bucket", 3, ("listener", listener), ("le", PrometheusTextWriter.FormatValue(1)));
            writer.WriteSample("demo_seconds_bucket", 3, ("listener", listener), ("le", "+Inf"));
            writer.WriteSample("demo_seconds_sum", 1.25, ("listener", listener));
            writer.WriteSample("demo_seconds_count", 3, ("listener", listener));
        }

        var families = ExpositionValidator.Validate(text.ToString());
        Assert.Equal(10, families["demo_seconds"].Samples.Count);
    }

    // The validator must itself reject what the format forbids, or the tests that lean on it prove nothing.
    [Theory]
    [InlineData("# TYPE a_total counter\n# TYPE a_total counter\na_total 1\n", "second TYPE")]
    [InlineData("# HELP a x\n# HELP a y\na 1\n", "second HELP")]
    [InlineData("a 1\n# TYPE a gauge\n", "after its samples")]
    [InlineData("# TYPE a counter\na 1\n", "does not end in _total")]
    [InlineData("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n", "continues after another family")]
    [InlineData("a{x=\"1\"} 1\na{x=\"1\"} 2\n", "duplicate series")]
    [InlineData("a-b 1\n", "not a metric name")]
    [InlineData("a{x:y=\"1\"} 1\n", "not a label name")]
    [InlineData("a{x=\"\\t\"} 1\n", "invalid escape")]
    [InlineData("a{x=\"1} 1\n", "unterminated")]
    [InlineData("a 1,5\n", "not a Prometheus float")]
    [InlineData("a 1", "line feed")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n", "not cumulative")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n", "not ascending")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 2\nh_sum 1\nh_count 2\n", "+Inf")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", "!= _count")]
    [InlineData("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n", "no _sum")]
    public void ExpositionValidator_BrokenExposition_Rejected(string text, string why)
    {
        var error = Assert.Throws<FormatException>(() => ExpositionValidator.Validate(text));
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
    }

    private static (StringBuilder Text, PrometheusTextWriter Writer) Create()
    {
        var text = new StringBuilder();
        return (text, new PrometheusTextWriter(text));
    }
}

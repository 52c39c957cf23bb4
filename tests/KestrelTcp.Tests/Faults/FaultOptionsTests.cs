using KestrelTcp.Faults;
using static KestrelTcp.Tests.Configuration.KestrelTcpOptionsReaderTests;

namespace KestrelTcp.Tests.Faults;

/// <summary><c>Listeners:{name}:Faults</c> read through the real options reader: every key, the defaults, and every problem named by its key.</summary>
public class FaultOptionsTests
{
    private static (string, string?)[] Echo(params (string Key, string? Value)[] faults) =>
        [("Listeners:echo:Handler", "Echo"), ("Listeners:echo:Port", "0"), .. faults.Select(f => ($"Listeners:echo:Faults:{f.Key}", f.Value))];

    [Fact]
    public void Read_NoFaultsSection_Null()
    {
        var echo = Assert.Single(Read(With(Echo())).Listeners);
        Assert.Null(echo.Faults);
    }

    [Fact]
    public void Read_EveryKey_Parsed()
    {
        var echo = Assert.Single(Read(With(Echo(
            ("Latency", "00:00:00.200"), ("Jitter", "00:00:00.050"), ("BandwidthBytesPerSecond", "1000000"),
            ("SliceBytes", "10"), ("SliceDelay", "00:00:00.010"), ("ConnectDelay", "00:00:01"),
            ("LimitBytes", "5000000000"), ("ResetAfterBytes", "1"), ("ResetAfter", "00:00:30"),
            ("Timeout", "00:00:00"), ("CloseDelay", "00:00:02"), ("Probability", "0.25")))).Listeners);

        Assert.Equal(new FaultOptions
        {
            Latency = TimeSpan.FromMilliseconds(200),
            Jitter = TimeSpan.FromMilliseconds(50),
            BandwidthBytesPerSecond = 1_000_000,
            SliceBytes = 10,
            SliceDelay = TimeSpan.FromMilliseconds(10),
            ConnectDelay = TimeSpan.FromSeconds(1),
            LimitBytes = 5_000_000_000,
            ResetAfterBytes = 1,
            ResetAfter = TimeSpan.FromSeconds(30),
            Timeout = TimeSpan.Zero,
            CloseDelay = TimeSpan.FromSeconds(2),
            Probability = 0.25,
        }, echo.Faults);
    }

    [Fact]
    public void Read_OneKey_OthersAtTheirDefaults()
    {
        var faults = Assert.Single(Read(With(Echo(("Latency", "00:00:00.100")))).Listeners).Faults!;

        Assert.Equal(new FaultOptions { Latency = TimeSpan.FromMilliseconds(100) }, faults);
        Assert.Null(faults.Timeout);
        Assert.Equal(1.0, faults.Probability);
        Assert.Equal([FaultKind.Latency], faults.ConfiguredKinds());
    }

    [Fact]
    public void ConfiguredKinds_JitterAndSliceDelay_CountWithTheKeyTheyModify()
    {
        var faults = new FaultOptions { Jitter = TimeSpan.FromMilliseconds(5), SliceDelay = TimeSpan.FromMilliseconds(5), Timeout = TimeSpan.Zero };
        Assert.Equal([FaultKind.Latency, FaultKind.SliceBytes, FaultKind.Timeout], faults.ConfiguredKinds());
        Assert.Equal(["latency", "slice_bytes", "timeout"], faults.ConfiguredKinds().Select(FaultKinds.Label));
        Assert.Empty(new FaultOptions { Probability = 0.5 }.ConfiguredKinds());
    }

    [Theory]
    [InlineData("Latency", "-00:00:01", "KestrelTcp:Listeners:echo:Faults:Latency: -00:00:01 is negative")]
    [InlineData("Jitter", "-00:00:00.5", "KestrelTcp:Listeners:echo:Faults:Jitter: -00:00:00.5 is negative")]
    [InlineData("SliceDelay", "-1.00:00:00", "KestrelTcp:Listeners:echo:Faults:SliceDelay: -1.00:00:00 is negative")]
    [InlineData("ConnectDelay", "-00:00:01", "KestrelTcp:Listeners:echo:Faults:ConnectDelay: -00:00:01 is negative")]
    [InlineData("ResetAfter", "-00:00:01", "KestrelTcp:Listeners:echo:Faults:ResetAfter: -00:00:01 is negative")]
    [InlineData("Timeout", "-00:00:01", "KestrelTcp:Listeners:echo:Faults:Timeout: -00:00:01 is negative")]
    [InlineData("CloseDelay", "-00:00:01", "KestrelTcp:Listeners:echo:Faults:CloseDelay: -00:00:01 is negative")]
    [InlineData("Latency", "soon", "KestrelTcp:Listeners:echo:Faults:Latency: 'soon' is not a time span (expected [d.]hh:mm:ss[.fff], e.g. 00:05:00)")]
    [InlineData("BandwidthBytesPerSecond", "-1", "KestrelTcp:Listeners:echo:Faults:BandwidthBytesPerSecond: -1 is negative (0 = unpaced)")]
    [InlineData("SliceBytes", "-10", "KestrelTcp:Listeners:echo:Faults:SliceBytes: -10 is negative (0 = not sliced)")]
    [InlineData("SliceBytes", "3000000000", "KestrelTcp:Listeners:echo:Faults:SliceBytes: 3000000000 is too large (at most 2147483647 bytes)")]
    [InlineData("LimitBytes", "-5", "KestrelTcp:Listeners:echo:Faults:LimitBytes: -5 is negative (0 = no limit)")]
    [InlineData("ResetAfterBytes", "-1", "KestrelTcp:Listeners:echo:Faults:ResetAfterBytes: -1 is negative (0 = never)")]
    [InlineData("LimitBytes", "1e3", "KestrelTcp:Listeners:echo:Faults:LimitBytes: '1e3' is not a whole number of bytes (0 = no limit)")]
    [InlineData("Probability", "1.5", "KestrelTcp:Listeners:echo:Faults:Probability: 1.5 is out of range (a share from 0 to 1, e.g. 0.25)")]
    [InlineData("Probability", "-0.1", "KestrelTcp:Listeners:echo:Faults:Probability: -0.1 is out of range (a share from 0 to 1, e.g. 0.25)")]
    [InlineData("Probability", "NaN", "KestrelTcp:Listeners:echo:Faults:Probability: NaN is out of range (a share from 0 to 1, e.g. 0.25)")]
    [InlineData("Probability", "0,5", "KestrelTcp:Listeners:echo:Faults:Probability: '0,5' is not a number (a share from 0 to 1, e.g. 0.25)")]
    [InlineData("Latancy", "00:00:01", "KestrelTcp:Listeners:echo:Faults:Latancy: not a fault (known: Latency, Jitter, BandwidthBytesPerSecond, SliceBytes, SliceDelay, ConnectDelay, LimitBytes, ResetAfterBytes, ResetAfter, Timeout, CloseDelay, Probability)")]
    public void Read_BadValue_OneProblemNamingTheKey(string key, string value, string expected) =>
        Assert.Equal([expected], Problems(With(Echo((key, value)))));

    [Fact]
    public void Read_ScalarSection_Problem()
    {
        var problems = Problems(With(("Listeners:echo:Handler", "Echo"), ("Listeners:echo:Port", "0"), ("Listeners:echo:Faults", "Latency")));
        Assert.Equal(["KestrelTcp:Listeners:echo:Faults: 'Latency' is a value, not a section (give Latency, BandwidthBytesPerSecond, … under it)"], problems);
    }

    [Fact]
    public void Read_SeveralProblems_AllReportedInKeyOrder()
    {
        var problems = Problems(With(Echo(("Latency", "-00:00:01"), ("Probability", "2"), ("LimitBytes", "-1"))));
        Assert.Equal(
        [
            "KestrelTcp:Listeners:echo:Faults:Latency: -00:00:01 is negative",
            "KestrelTcp:Listeners:echo:Faults:LimitBytes: -1 is negative (0 = no limit)",
            "KestrelTcp:Listeners:echo:Faults:Probability: 2 is out of range (a share from 0 to 1, e.g. 0.25)",
        ], problems);
    }

    [Theory]
    [InlineData("0", 0.0)]
    [InlineData("1", 1.0)]
    [InlineData("0.5", 0.5)]
    [InlineData("1e-1", 0.1)]
    public void Read_Probability_InvariantCulture(string text, double expected) =>
        Assert.Equal(expected, Assert.Single(Read(With(Echo(("Latency", "00:00:00.001"), ("Probability", text)))).Listeners).Faults!.Probability);
}

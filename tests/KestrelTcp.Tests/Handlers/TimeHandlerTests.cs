using System.Text;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Time.Testing;

namespace KestrelTcp.Tests.Handlers;

public class TimeHandlerTests
{
    // Wed Jan 29 19:14:15.123 2014 UTC, the contract's example.
    private static readonly DateTimeOffset Moment = new(2014, 1, 29, 19, 14, 15, 123, TimeSpan.Zero);

    private static async Task<byte[]> RunAsync(DateTimeOffset now, params (string, string?)[] options)
    {
        var connection = new PipeConnection();
        await connection.RunAsync(new TimeHandler(Listeners.Time(options), new FakeTimeProvider(now)));
        return await connection.ReadAllAsync();
    }

    [Theory]
    [InlineData("ctime", "Wed Jan 29 19:14:15 2014\r\n")]
    [InlineData(null, "Wed Jan 29 19:14:15 2014\r\n")]
    [InlineData("iso8601", "2014-01-29T19:14:15.123Z\r\n")]
    [InlineData("rfc1123", "Wed, 29 Jan 2014 19:14:15 GMT\r\n")]
    [InlineData("unix", "1391022855\r\n")]
    [InlineData("ISO8601", "2014-01-29T19:14:15.123Z\r\n")]
    [InlineData("xinetd", "29 JAN 2014 19:14:15 UTC\r\n")]
    public async Task OnConnectedAsync_TextFormats_WritesTimeAndCloses(string? format, string expected)
    {
        Assert.Equal(expected, Encoding.ASCII.GetString(await RunAsync(Moment, ("Format", format))));
    }

    [Fact]
    public async Task OnConnectedAsync_TimeZoneLocal_TheClocksLocalZone()
    {
        // Local is the injected clock's zone, not the machine's: here India, +05:30.
        var clock = new FakeTimeProvider(Moment);
        clock.SetLocalTimeZone(TimeZoneInfo.FindSystemTimeZoneById("Asia/Kolkata"));
        var connection = new PipeConnection();
        await connection.RunAsync(new TimeHandler(Listeners.Time(("Format", "iso8601"), ("TimeZone", "Local")), clock));
        Assert.Equal("2014-01-30T00:44:15.123+05:30\r\n", Encoding.ASCII.GetString(await connection.ReadAllAsync()));
    }

    [Fact]
    public async Task OnConnectedAsync_XinetdInAZone_OffsetForTheZoneName()
    {
        var bytes = await RunAsync(new DateTimeOffset(2014, 2, 3, 4, 5, 6, TimeSpan.Zero), ("Format", "xinetd"), ("TimeZone", "Europe/Paris"));
        Assert.Equal("03 FEB 2014 05:05:06 +0100\r\n", Encoding.ASCII.GetString(bytes));
    }

    [Fact]
    public async Task OnConnectedAsync_Ctime_PadsSingleDigitDayWithSpace()
    {
        var bytes = await RunAsync(new DateTimeOffset(2014, 2, 3, 4, 5, 6, TimeSpan.Zero), ("Format", "ctime"));
        Assert.Equal("Mon Feb  3 04:05:06 2014\r\n", Encoding.ASCII.GetString(bytes));
    }

    [Fact]
    public async Task OnConnectedAsync_Rfc868_FourBytesBigEndianSince1900()
    {
        // 1391022855 + 2208988800 = 3600011655 = 0xD693D187
        Assert.Equal(new byte[] { 0xD6, 0x93, 0xD1, 0x87 }, await RunAsync(Moment, ("Format", "rfc868")));
    }

    [Fact]
    public async Task OnConnectedAsync_Rfc868After2036_WrapsModulo2Pow32()
    {
        // 2036-02-07T06:28:16Z is 2^32 seconds after 1900-01-01: the 32-bit value wraps to 0.
        var wrap = new DateTimeOffset(2036, 2, 7, 6, 28, 16, TimeSpan.Zero);
        Assert.Equal(new byte[] { 0, 0, 0, 0 }, await RunAsync(wrap, ("Format", "rfc868")));
        Assert.Equal(new byte[] { 0, 0, 0, 5 }, await RunAsync(wrap.AddSeconds(5), ("Format", "rfc868")));
    }

    [Theory]
    [InlineData("iso8601", "2014-01-29T20:14:15.123+01:00\r\n")]
    [InlineData("ctime", "Wed Jan 29 20:14:15 2014\r\n")]
    [InlineData("rfc1123", "Wed, 29 Jan 2014 19:14:15 GMT\r\n")]
    [InlineData("unix", "1391022855\r\n")]
    public async Task OnConnectedAsync_IanaTimeZone_LocalTimeWithOffset(string format, string expected)
    {
        var bytes = await RunAsync(Moment, ("Format", format), ("TimeZone", "Europe/Paris"));
        Assert.Equal(expected, Encoding.ASCII.GetString(bytes));
    }

    [Fact]
    public void Parse_UnknownFormatAndZone_ReportsBothKeys()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["KestrelTcp:Listeners:time:Options:Format"] = "julian",
            ["KestrelTcp:Listeners:time:Options:TimeZone"] = "Mars/Olympus",
        }).Build();
        var problems = new List<string>();
        TimeHandlerOptions.Parse(configuration.GetSection("KestrelTcp:Listeners:time:Options"), problems);
        Assert.Equal(
        [
            "KestrelTcp:Listeners:time:Options:Format: 'julian' is not a time format (ctime, iso8601, rfc1123, unix, rfc868, xinetd)",
            "KestrelTcp:Listeners:time:Options:TimeZone: 'Mars/Olympus' is not a known time zone (UTC, Local, or an IANA id such as Europe/Paris)",
        ], problems);
    }
}

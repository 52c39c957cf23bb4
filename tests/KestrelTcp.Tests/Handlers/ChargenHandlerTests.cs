using System.Buffers;
using System.Text;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace KestrelTcp.Tests.Handlers;

public class ChargenHandlerTests
{
    // BSD inetd's ring starts at the space (isprint(0x20)): line 0 is space to 'g', 72 characters; line 1,
    // from '!' to 'h', is the line RFC 864 shows.
    private const string Line0 = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg";
    private const int Cycle = 95 * 74;
    private static readonly TimeSpan Tenth = TimeSpan.FromMilliseconds(100);

    /// <summary>BSD inetd's chargen, written out independently: line n is 72 characters from ring position n mod 95, then CR LF.</summary>
    private static byte[] Expected(long count)
    {
        var bytes = new byte[count];
        for (long i = 0; i < count; i++)
        {
            var line = i / 74;
            var column = i % 74;
            bytes[i] = column switch
            {
                72 => (byte)'\r',
                73 => (byte)'\n',
                _ => (byte)(0x20 + ((line + column) % 95)),
            };
        }

        return bytes;
    }

    private static string Line(byte[] stream, int n) => Encoding.ASCII.GetString(stream, n * 74, 74);

    private static ChargenHandler Handler(TimeProvider? clock = null, params (string, string?)[] options) =>
        new(ServiceListeners.Chargen(options), clock ?? new TestClock());

    [Fact]
    public async Task OnConnectedAsync_FirstLines_BsdPatternByteForByteAndLine95IsLine0()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(Handler(null, ("MaxBytes", (97 * 74).ToString())));
        var stream = await connection.ReadAllAsync();
        await run;

        Assert.Equal(97 * 74, stream.Length);
        Assert.Equal(Line0 + "\r\n", Line(stream, 0));
        Assert.Equal("!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n", Line(stream, 1));
        // Line 23 ends on the ring's last character, line 24 is the first to wrap to the space.
        Assert.Equal("789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\r\n", Line(stream, 23));
        Assert.Equal("89:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~ \r\n", Line(stream, 24));
        Assert.Equal("~ !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdef\r\n", Line(stream, 94));
        Assert.Equal(Line(stream, 0), Line(stream, 95));
        Assert.Equal(Line(stream, 1), Line(stream, 96));
        Assert.Equal(Expected(stream.Length), stream);
    }

    [Fact]
    public void Lines_PrecomputedBlock_The95LinesOf72CharactersAndCrLf()
    {
        Assert.Equal(Expected(Cycle), ChargenHandler.Lines.ToArray());
    }

    [Fact]
    public void Fill_FromAnyPosition_ContinuesTheStreamAcrossTheWrap()
    {
        var expected = Expected(3 * Cycle);
        foreach (var start in new[] { 0, 1, 73, 74, Cycle - 1 })
        {
            var position = start;
            var destination = new byte[Cycle + 100];
            ChargenHandler.Fill(destination, ref position);
            Assert.Equal(expected.AsSpan(start, destination.Length).ToArray(), destination);
            Assert.Equal((start + destination.Length) % Cycle, position);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(72)]
    [InlineData(73)]
    [InlineData(74)]
    [InlineData(100)]
    [InlineData(Cycle)]
    [InlineData(Cycle + 1)]
    [InlineData((3 * ChargenHandler.FlushBytes) + 5)]
    [InlineData(1_000_000)]
    public async Task OnConnectedAsync_MaxBytes_ExactlyThatManyThenClosed(int maxBytes)
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(Handler(null, ("MaxBytes", maxBytes.ToString())));
        var stream = await connection.ReadAllAsync();
        await run;
        Assert.Equal(Expected(maxBytes), stream);
    }

    [Fact]
    public async Task OnConnectedAsync_InputDiscardedThenClientCloses_Stops()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(Handler());
        Assert.Equal(Expected(10_000), await connection.ReadAsync(10_000));
        await connection.SendAsync(new byte[100_000]); // read and dropped: never echoed, never buffered
        connection.CompleteSending();

        // Whatever was written before the FIN was seen is the stream, uninterrupted.
        var rest = await connection.ReadAllAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(Expected(10_000 + rest.Length).AsSpan(10_000).ToArray(), rest);
    }

    [Fact]
    public async Task OnConnectedAsync_ClientClosesWithoutEverReading_StopsThoughTheFlushIsStalled()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(Handler());
        await WaitForBufferedAsync(connection, 64 * 1024);
        connection.CompleteSending();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task OnConnectedAsync_CloseRequested_Stops()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(Handler());
        Assert.Equal(Expected(1000), await connection.ReadAsync(1000));
        connection.RequestClose();
        var rest = await connection.ReadAllAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(Expected(1000 + rest.Length).AsSpan(1000).ToArray(), rest);
    }

    [Fact]
    public async Task OnConnectedAsync_ClientNeverReads_StopsAtThePipesPauseThresholdThenResumes()
    {
        // The test's output pipe pauses its writer at 64 KiB unread (the Pipe default) and resumes it below 32 KiB.
        var connection = new PipeConnection();
        var run = connection.RunAsync(Handler());

        var buffered = await WaitForBufferedAsync(connection, 64 * 1024);
        Assert.Equal(64 * 1024, buffered); // four flushes of 16 KiB, the fourth one waiting
        await AssertNothingMoreArrivesAsync(connection);
        Assert.False(run.IsCompleted);

        // The client reads: the stream goes on from where it stood, byte for byte.
        var read = await connection.ReadAsync(200_000);
        Assert.Equal(Expected(200_000), read);
        connection.CompleteSending();
        await connection.ReadAllAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task OnConnectedAsync_BytesPerSecond_ATenthOfTheRateEvery100Milliseconds()
    {
        var clock = new TestClock();
        var connection = new PipeConnection();
        var armed = clock.WhenArmed(Tenth);
        var run = connection.RunAsync(Handler(clock, ("BytesPerSecond", "1000")));
        await armed;
        Assert.Equal(0, Buffered(connection)); // nothing before the first tenth

        var expected = Expected(1000);
        for (var tenth = 0; tenth < 10; tenth++)
        {
            armed = clock.WhenArmed(Tenth);
            clock.Advance(Tenth);
            Assert.Equal(expected.AsSpan(tenth * 100, 100).ToArray(), await connection.ReadAsync(100));
            await armed;
            Assert.Equal(0, Buffered(connection));
        }

        // One second: exactly the rate.
        Assert.Equal(TimeSpan.FromSeconds(1), clock.Elapsed);
        connection.CompleteSending();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task OnConnectedAsync_BytesPerSecondAfterAStall_NoBurstBeyondTwoTenths()
    {
        var clock = new TestClock();
        var connection = new PipeConnection();
        var armed = clock.WhenArmed(Tenth);
        var run = connection.RunAsync(Handler(clock, ("BytesPerSecond", "1000")));
        await armed;

        // The handler's timer fires once, a second late: two tenths' worth, not ten, then the pace again.
        armed = clock.WhenArmed(Tenth);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(Expected(200), await connection.ReadAsync(200));
        await armed;
        Assert.Equal(0, Buffered(connection));
        clock.Advance(Tenth);
        Assert.Equal(Expected(300).AsSpan(200).ToArray(), await connection.ReadAsync(100));

        connection.CompleteSending();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task OnConnectedAsync_BytesPerSecondWithMaxBytes_TheLastPieceWhenDueThenClosed()
    {
        var clock = new TestClock();
        var connection = new PipeConnection();
        var armed = clock.WhenArmed(Tenth);
        var run = connection.RunAsync(Handler(clock, ("BytesPerSecond", "1000"), ("MaxBytes", "250")));
        await armed;
        for (var tenth = 0; tenth < 2; tenth++)
        {
            armed = clock.WhenArmed(tenth == 0 ? Tenth : TimeSpan.FromMilliseconds(50));
            clock.Advance(Tenth);
            await connection.ReadAsync(100);
            await armed;
        }

        // 50 bytes are due 250 ms after the start.
        clock.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(Expected(250).AsSpan(200).ToArray(), await connection.ReadAllAsync());
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task OnConnectedAsync_BytesPerSecondCloseRequestedWhileWaiting_Stops()
    {
        var clock = new TestClock();
        var connection = new PipeConnection();
        var armed = clock.WhenArmed(Tenth);
        var run = connection.RunAsync(Handler(clock, ("BytesPerSecond", "10")));
        await armed;
        connection.RequestClose();
        Assert.Empty(await connection.ReadAllAsync());
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void Parse_Defaults_UnlimitedAndUnpaced()
    {
        var options = ChargenOptions.Parse(ServiceListeners.Section("chargen"), new List<string>());
        Assert.Equal((0L, 0L), (options.MaxBytes, options.BytesPerSecond));
    }

    [Fact]
    public void Parse_NegativeAndNotANumber_ReportsBothKeys()
    {
        var problems = new List<string>();
        ChargenOptions.Parse(ServiceListeners.Section("chargen", ("MaxBytes", "-1"), ("BytesPerSecond", "fast")), problems);
        Assert.Equal(
        [
            "KestrelTcp:Listeners:chargen:Options:MaxBytes: -1 is negative (0 = until the client closes)",
            "KestrelTcp:Listeners:chargen:Options:BytesPerSecond: 'fast' is not a whole number of bytes (0 = unlimited)",
        ], problems);
    }

    private static long Buffered(PipeConnection connection)
    {
        if (!connection.ClientInput.TryRead(out var result))
        {
            return 0;
        }

        connection.ClientInput.AdvanceTo(result.Buffer.Start);
        return result.Buffer.Length;
    }

    /// <summary>
    /// Waits, reading nothing, until at least <paramref name="count"/> bytes are waiting for the client;
    /// returns how many. Only peeks: a read that examined everything would let the pipe resume its writer
    /// (a reader that wants more is never left deadlocked behind the pause threshold).
    /// </summary>
    private static async Task<long> WaitForBufferedAsync(PipeConnection connection, long count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Buffered(connection) is var buffered && buffered < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{buffered} of {count} bytes buffered");
            await Task.Delay(5);
        }

        return Buffered(connection);
    }

    /// <summary>For 200 ms, the handler writes nothing more: it waits on its flush.</summary>
    private static async Task AssertNothingMoreArrivesAsync(PipeConnection connection)
    {
        var buffered = Buffered(connection);
        var until = DateTime.UtcNow + TimeSpan.FromMilliseconds(200);
        while (DateTime.UtcNow < until)
        {
            await Task.Delay(10);
            Assert.Equal(buffered, Buffered(connection));
        }
    }
}

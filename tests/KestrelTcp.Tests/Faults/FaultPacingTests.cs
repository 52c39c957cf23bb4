using KestrelTcp.Faults;

namespace KestrelTcp.Tests.Faults;

/// <summary>The pump's arithmetic, without I/O: piece sizes, paced durations, latency with jitter.</summary>
public class FaultPacingTests
{
    [Theory]
    [InlineData(1L, 1)]              // below one byte per step: one byte per step, paced by its duration
    [InlineData(19L, 1)]
    [InlineData(20L, 1)]
    [InlineData(1000L, 50)]          // 50 ms of 1000 B/s
    [InlineData(20_000L, 1000)]
    [InlineData(1_000_000L, 50_000)]
    [InlineData(100_000_000L, FaultPacing.MaxPiece)]
    public void PacedChunk_FiftyMillisecondsWorth_AtLeastOneByte_AtMostMaxPiece(long rate, int expected) =>
        Assert.Equal(expected, FaultPacing.PacedChunk(rate));

    [Theory]
    [InlineData(50L, 1000L, 500_000L)]          // 50 bytes at 1000 B/s: 50 ms
    [InlineData(1L, 10L, 1_000_000L)]           // one byte at 10 B/s: 100 ms
    [InlineData(1L, 3L, 3_333_334L)]            // rounded up to the tick: never faster than the rate
    [InlineData(65_536L, 1L, 655_360_000_000L)]
    public void Duration_BytesAtRate_InTicks(long bytes, long rate, long ticks) =>
        Assert.Equal(TimeSpan.FromTicks(ticks), FaultPacing.Duration(bytes, rate));

    [Fact]
    public void Pacing_OverTwoSeconds_SendsTheRate()
    {
        // What the pump does with a backlog: piece after piece, each one starting when the last one's duration is over.
        const long rate = 20_000;
        var chunk = FaultPacing.PacedChunk(rate);
        var allows = TimeSpan.Zero;
        long sent = 0;
        var steps = 0;
        while (allows < TimeSpan.FromSeconds(2))
        {
            var start = FaultPacing.PacedStart(allows, TimeSpan.Zero);
            sent += chunk;
            allows = start + FaultPacing.Duration(chunk, rate);
            steps++;
        }

        Assert.Equal(2 * rate, sent);
        Assert.Equal(40, steps);
    }

    [Fact]
    public void PacedStart_IdlePump_NoCreditSavedUp()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), FaultPacing.PacedStart(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10)));
        Assert.Equal(TimeSpan.FromSeconds(2), FaultPacing.PacedStart(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1)));
    }

    [Theory]
    [InlineData(200, 0, 0.0, 200)]
    [InlineData(200, 0, 0.99, 200)]
    [InlineData(200, 50, 0.0, 150)]     // the random draw spans -jitter ..
    [InlineData(200, 50, 0.5, 200)]
    [InlineData(200, 50, 0.75, 225)]    // .. +jitter
    [InlineData(10, 50, 0.0, 0)]        // never below zero
    [InlineData(0, 50, 1.0, 50)]
    public void Delay_LatencyPlusMinusJitter(int latencyMs, int jitterMs, double random, int expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), FaultPacing.Delay(TimeSpan.FromMilliseconds(latencyMs), TimeSpan.FromMilliseconds(jitterMs), random));

    [Fact]
    public void Delivery_ShorterDelayAfterALongerOne_NotBeforeTheWriteAhead()
    {
        var first = FaultPacing.Delivery(TimeSpan.FromMilliseconds(0), TimeSpan.FromMilliseconds(250), TimeSpan.Zero);
        var second = FaultPacing.Delivery(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(150), first);
        var third = FaultPacing.Delivery(TimeSpan.FromMilliseconds(400), TimeSpan.FromMilliseconds(150), second);

        Assert.Equal(TimeSpan.FromMilliseconds(250), first);
        Assert.Equal(TimeSpan.FromMilliseconds(250), second);
        Assert.Equal(TimeSpan.FromMilliseconds(550), third);
    }

    [Theory]
    [InlineData(100L, 0L, 0, 0, long.MaxValue, 100)]        // nothing cuts it
    [InlineData(1_000_000L, 0L, 0, 0, long.MaxValue, FaultPacing.MaxPiece)]
    [InlineData(100L, 30L, 0, 0, long.MaxValue, 30)]        // the rest of the current write (latency)
    [InlineData(100L, 0L, 10, 0, long.MaxValue, 10)]        // a slice
    [InlineData(100L, 0L, 0, 50, long.MaxValue, 50)]        // a paced step
    [InlineData(100L, 0L, 0, 0, 7L, 7)]                     // what the limit leaves
    [InlineData(100L, 0L, 0, 0, 0L, 0)]                     // the limit reached: nothing
    [InlineData(100L, 40L, 25, 30, 27L, 25)]                // the smallest wins
    public void Piece_CutToEveryBound(long available, long restOfWrite, int slice, int chunk, long limitLeft, int expected) =>
        Assert.Equal(expected, FaultPacing.Piece(available, restOfWrite, slice, chunk, limitLeft));

    [Fact]
    public void WriteMarks_Full_NewBatchJoinsTheNewestWithItsLaterTime()
    {
        var marks = new WriteMarks();
        for (var i = 1; i <= WriteMarks.Capacity + 10; i++)
        {
            marks.Add(i * 10, TimeSpan.FromMilliseconds(i));
        }

        Assert.Equal(WriteMarks.Capacity, marks.Count);
        Assert.True(marks.TryNext(0, out var oldest));
        Assert.Equal((10L, TimeSpan.FromMilliseconds(1)), oldest);
        Assert.True(marks.TryNext((WriteMarks.Capacity - 1) * 10, out var newest));
        Assert.Equal(((WriteMarks.Capacity + 10) * 10L, TimeSpan.FromMilliseconds(WriteMarks.Capacity + 10)), newest);
        Assert.Equal(1, marks.Count);
        Assert.False(marks.TryNext((WriteMarks.Capacity + 10) * 10, out _));
    }

    [Theory]
    [InlineData(0L, 0L)]
    [InlineData(1L, 10_000L)]
    [InlineData(10_000L, 10_000L)]
    [InlineData(1_999_999L, 2_000_000L)]
    [InlineData(2_000_001L, 2_010_000L)]
    public void RoundUp_WholeMillisecondsNeverLess(long ticks, long expected) =>
        Assert.Equal(TimeSpan.FromTicks(expected), FaultSession.RoundUp(TimeSpan.FromTicks(ticks)));

    [Fact]
    public void WriteMarks_FlushWithNothingNew_NoMark()
    {
        var marks = new WriteMarks();
        marks.Add(5, TimeSpan.FromMilliseconds(1));
        marks.Add(5, TimeSpan.FromMilliseconds(2));
        Assert.Equal(1, marks.Count);
    }
}

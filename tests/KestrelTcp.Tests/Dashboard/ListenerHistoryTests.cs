using KestrelTcp.Dashboard;

namespace KestrelTcp.Tests.Dashboard;

public class ListenerHistoryTests
{
    [Fact]
    public void Record_FirstSample_SetsTheBaselineWithZeroRates()
    {
        var history = new ListenerHistory(5);
        history.Record(0, open: 4, accepted: 10, bytesReceived: 1000, bytesSent: 2000);

        Assert.Equal([new HistorySample(4, 0, 0, 0)], history.Snapshot());
        Assert.Equal(new HistorySample(4, 0, 0, 0), history.Latest);
    }

    [Fact]
    public void Record_ConsecutiveTotals_RatesPerSecondOfTheInterval()
    {
        var history = new ListenerHistory(5);
        history.Record(0, 0, 0, 0, 0);
        history.Record(1, 2, 3, 1500, 700);
        history.Record(2, 1, 7, 2500, 700);
        history.Record(0.5, 1, 7, 2501, 701);

        Assert.Equal(
            [new HistorySample(0, 0, 0, 0), new HistorySample(2, 3, 1500, 700), new HistorySample(1, 2, 500, 0), new HistorySample(1, 0, 2, 2)],
            history.Snapshot());
    }

    [Fact]
    public void Record_RateRoundedToATenth()
    {
        var history = new ListenerHistory(2);
        history.Record(0, 0, 0, 0, 0);
        history.Record(3, 0, 1, 10, 20);

        Assert.Equal(new HistorySample(0, 0.3, 3.3, 6.7), history.Latest);
    }

    [Fact]
    public void Snapshot_PastCapacity_KeepsTheNewestOldestFirst()
    {
        var history = new ListenerHistory(5);
        for (var i = 0; i < 12; i++)
        {
            history.Record(1, open: i, accepted: 0, bytesReceived: 0, bytesSent: 0);
            Assert.Equal(Math.Min(i + 1, 5), history.Count);
        }

        Assert.Equal(5, history.Capacity);
        Assert.Equal([7L, 8, 9, 10, 11], history.Snapshot().Select(s => s.Open));
        Assert.Equal(11, history.Latest.Open);
    }

    [Fact]
    public void Record_NoTimeGoneBy_TheChangeCountsInTheNextSample()
    {
        // A clock that jumped fires its timer twice at one instant: nothing is lost, nothing divided by zero.
        var history = new ListenerHistory(5);
        history.Record(0, 0, 0, 0, 0);
        history.Record(0, 1, 1, 100, 100);
        history.Record(1, 1, 1, 300, 100);

        Assert.Equal([new HistorySample(0, 0, 0, 0), new HistorySample(1, 0, 0, 0), new HistorySample(1, 1, 300, 100)], history.Snapshot());
    }

    [Fact]
    public void Record_TotalWentDown_RateIsZeroNotNegative()
    {
        var history = new ListenerHistory(3);
        history.Record(0, 0, 5, 500, 500);
        history.Record(1, 0, 4, 400, 400);

        Assert.Equal(new HistorySample(0, 0, 0, 0), history.Latest);
    }

    [Fact]
    public void Empty_SnapshotIsEmptyAndLatestIsZero()
    {
        var history = new ListenerHistory(DashboardSampler.Capacity);

        Assert.Empty(history.Snapshot());
        Assert.Equal(0, history.Count);
        Assert.Equal(default, history.Latest);
        Assert.Equal(300, history.Capacity);
    }

    [Fact]
    public void Constructor_ZeroCapacity_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ListenerHistory(0));
    }

    [Fact]
    public async Task Record_WhileSnapshotsAreTaken_EverySnapshotIsOrdered()
    {
        var history = new ListenerHistory(50);
        history.Record(0, 0, 0, 0, 0);
        var writer = Task.Run(() =>
        {
            for (var i = 1; i <= 20_000; i++)
            {
                history.Record(1, i, i, i, i);
            }
        });

        while (!writer.IsCompleted)
        {
            var snapshot = history.Snapshot();
            Assert.InRange(snapshot.Length, 1, 50);
            for (var i = 1; i < snapshot.Length; i++)
            {
                Assert.Equal(snapshot[i - 1].Open + 1, snapshot[i].Open);
            }
        }

        await writer;
        Assert.Equal(20_000, history.Latest.Open);
    }
}

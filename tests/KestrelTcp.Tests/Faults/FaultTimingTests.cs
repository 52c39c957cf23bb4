using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using KestrelTcp.Tests.Infrastructure;
using Xunit.Abstractions;
using static KestrelTcp.Tests.Faults.FaultIntegrationTests;

namespace KestrelTcp.Tests.Faults;

/// <summary>Runs its tests alone: a rate or the spacing of pieces measured by a client is the scheduler's to spoil.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingCollection
{
    public const string Name = "Timing";
}

/// <summary>
/// What a client measures of the paced and sliced output, over real sockets and both transports, in a
/// collection of its own: on a 2-core machine running the rest of the suite beside it, a starved thread
/// pool (child servers, 100 MB floods) delays timers by hundreds of milliseconds, which no pacing survives.
/// </summary>
[Collection(TimingCollection.Name)]
public class FaultTimingTests
{
    private static readonly TimeSpan Ms = TimeSpan.FromMilliseconds(1);

    private readonly ITestOutputHelper output;

    static FaultTimingTests()
    {
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        ThreadPool.SetMinThreads(Math.Max(workers, 8 * Environment.ProcessorCount), completionPorts);
    }

    // The suite's leftovers, not the pacing, are what a client here can be stalled by. A thread pool
    // whose workers the rest of the suite has left blocked adds one thread per 0.5 s, which is exactly
    // the silences seen on CI (two quarter seconds of nothing, on both transports at once): the static
    // constructor raises the pool's minimum. The rest of the suite's garbage is collected before each
    // test, not in the middle of its measurement. Neither touches what is measured: the server's pacing
    // against its own clock.
    public FaultTimingTests(ITestOutputHelper output)
    {
        this.output = output;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task Bandwidth_EchoOfALargeSend_PacedEvenlyWithinTwentyPercent(string transport)
    {
        const int Rate = 20_000;
        await using var server = await StartAsync(transport, "Echo", ("BandwidthBytesPerSecond", $"{Rate}"));
        await using var client = await server.ConnectAsync("echo");
        var data = new byte[55_000];
        new Random(7).NextBytes(data);
        await client.SendAsync(data);

        // Every receive with its time since the first byte arrived.
        var arrivals = new List<(TimeSpan At, int Bytes)>();
        var buffer = new byte[64 * 1024];
        var received = new List<byte>();
        Stopwatch? clock = null;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (received.Count < data.Length)
        {
            var read = await client.Socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            Assert.NotEqual(0, read);
            clock ??= Stopwatch.StartNew();
            arrivals.Add((clock.Elapsed, read));
            received.AddRange(buffer.AsSpan(0, read));
        }

        Assert.Equal(data, received);
        long In(TimeSpan from, TimeSpan to) => arrivals.Where(a => a.At >= from && a.At < to).Sum(a => (long)a.Bytes);

        // Over 2 s: the rate ±20 %. Never faster, in any 2 s window. Not slower either, counted from
        // where the stream runs: a stall of the test host itself (a gen2 collection of the whole
        // suite's heap, a starved timer; seen once on CI as 0.6 s of nothing after the first piece)
        // delays the stream but is not the fault's pacing, so the lower bound is taken over the 2 s
        // that follow the longest pause of the first second.
        var steadyFrom = arrivals.Zip(arrivals.Skip(1)).Where(p => p.Second.At < TimeSpan.FromSeconds(1))
            .Select(p => (Gap: p.Second.At - p.First.At, From: p.Second.At))
            .DefaultIfEmpty((Gap: TimeSpan.Zero, From: TimeSpan.FromSeconds(0.25)))
            .MaxBy(p => p.Gap).From;
        steadyFrom = steadyFrom < TimeSpan.FromSeconds(0.25) ? TimeSpan.FromSeconds(0.25) : steadyFrom;
        var twoSeconds = In(steadyFrom, steadyFrom + TimeSpan.FromSeconds(2));
        output.WriteLine($"{twoSeconds} bytes in 2 s from {steadyFrom.TotalSeconds:0.000} s ({twoSeconds / 2.0:0} B/s); quarter seconds: " +
            string.Join(" ", Enumerable.Range(1, 8).Select(q => In(TimeSpan.FromSeconds(q * 0.25), TimeSpan.FromSeconds((q + 1) * 0.25)))) +
            $"; all in {arrivals[^1].At.TotalSeconds:0.000} s, {arrivals.Count} receives");
        Assert.InRange(twoSeconds, 0.8 * 2 * Rate, 1.2 * 2 * Rate);
        foreach (var (at, _) in arrivals)
        {
            Assert.InRange(In(at, at + TimeSpan.FromSeconds(2)), 0, 1.2 * 2 * Rate + 1000); // + the piece that starts the window
        }

        // Evenly: no quarter second carries more than twice its share (no burst). Not a floor: on a
        // loaded 2-core CI machine a starved timer can leave one quarter short, and the 2 s total above
        // is what the contract promises. The pacing's evenness itself is tested exactly on a fake clock.
        for (var start = TimeSpan.FromSeconds(0.25); start < TimeSpan.FromSeconds(2.25); start += TimeSpan.FromSeconds(0.25))
        {
            Assert.InRange(In(start, start + TimeSpan.FromSeconds(0.25)), 0, 2.0 * Rate / 4);
        }

        // The whole: (55,000 - the first 1,000-byte step) at 20,000 B/s is 2.7 s; never sooner.
        Assert.InRange(arrivals[^1].At, TimeSpan.FromSeconds(2.7 * 0.8), TimeSpan.FromSeconds(2.7 * 1.6));
    }

    [Theory]
    [InlineData("KestrelTcp")]
    [InlineData("Kestrel")]
    public async Task Slices_EchoArrivesInPiecesOfAtMostSliceBytes(string transport)
    {
        // A client sees pieces only as the network delivers them: with 100 ms between sends (and TCP_NODELAY
        // on the server's socket, both transports' default) each arrives alone, and a receive waiting for
        // it returns it alone. Two pieces could merge only if this client fell 100 ms behind.
        await using var server = await StartAsync(transport, "Echo", ("SliceBytes", "10"), ("SliceDelay", "00:00:00.100"));
        await using var client = await server.ConnectAsync("echo");
        var data = Encoding.ASCII.GetBytes("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX");
        var stopwatch = Stopwatch.StartNew();
        await client.SendAsync(data);

        var sizes = new List<int>();
        var received = new List<byte>();
        var buffer = new byte[1024];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (received.Count < data.Length)
        {
            var read = await client.Socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            Assert.NotEqual(0, read);
            sizes.Add(read);
            received.AddRange(buffer.AsSpan(0, read));
        }

        Assert.Equal(data, received);
        output.WriteLine($"receives: {string.Join(" ", sizes)} in {stopwatch.Elapsed.TotalMilliseconds:0} ms");
        Assert.All(sizes, size => Assert.InRange(size, 1, 10));
        Assert.True(stopwatch.Elapsed >= 400 * Ms, $"five pieces 100 ms apart arrived in {stopwatch.Elapsed}");
    }
}

using System.Diagnostics;
using System.Globalization;

namespace KestrelTcp.Bench;

/// <summary>
/// The clock of a throughput scenario: warm-up, then a measured window, then stop. Loops poll
/// <see cref="Stop"/> and record latencies only while <see cref="Recording"/>; the counter read at the
/// window's edges gives the rate, and the server's CPU time over the window how busy it was.
/// </summary>
internal sealed class Timed(Args args, string scenario)
{
    private volatile bool _stop;
    private volatile bool _recording;

    public bool Stop => _stop;

    public bool Recording => _recording;

    public string Target { get; } = args.Str("target", "server");

    /// <summary>The server's processes (<c>--pid 123</c>, or <c>--pid 123,456</c> for a proxy and its backend): their CPU is summed.</summary>
    public int[] Pids { get; } = (args.Str("pid") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(p => int.Parse(p, CultureInfo.InvariantCulture)).Where(p => p > 0).ToArray();

    public double Warmup { get; } = args.Double("warmup", 1);

    public double Seconds { get; } = args.Double("seconds", 5);

    /// <summary>A hard bound on operations per connection or worker, whatever the clock says.</summary>
    public long MaxOps { get; } = (long)args.Double("max-ops", 100_000_000);

    public Failures Failures { get; } = new();

    public sealed record Window(long Count, double Seconds, double ServerCpu, double ClientCpu);

    /// <summary>Sums per-connection counters kept one per cache line (every 8th long), as the loops write them.</summary>
    public static long SumPadded(long[] counters)
    {
        long total = 0;
        for (var i = 0; i < counters.Length; i += 8)
        {
            total += Volatile.Read(ref counters[i]);
        }

        return total;
    }

    /// <summary>CPU seconds of all the server's processes, or -1 when one cannot be read.</summary>
    private double ServerCpuSeconds()
    {
        var total = 0.0;
        foreach (var pid in Pids)
        {
            var cpu = Probe.CpuSeconds(pid);
            if (cpu < 0)
            {
                return -1;
            }

            total += cpu;
        }

        return total;
    }

    /// <summary>Runs warm-up and the measured window, showing progress on stderr, then sets <see cref="Stop"/>.</summary>
    public async Task<Window> RunAsync(Func<long> counter, string unit, double unitScale)
    {
        var sw = Stopwatch.StartNew();
        var last = counter();
        var lastAt = 0.0;
        long startCount = 0;
        double startAt = 0, srvCpu0 = 0, cliCpu0 = 0;
        var total = Warmup + Seconds;
        while (true)
        {
            var now = sw.Elapsed.TotalSeconds;
            if (!_recording && now >= Warmup)
            {
                startCount = counter();
                startAt = sw.Elapsed.TotalSeconds;
                srvCpu0 = ServerCpuSeconds();
                cliCpu0 = Probe.OwnCpuSeconds();
                _recording = true;
            }

            if (now >= total)
            {
                break;
            }

            var next = Math.Min(Math.Floor(now) + 1, now >= Warmup ? total : Warmup);
            await Task.Delay(TimeSpan.FromSeconds(Math.Max(0.001, next - now)));
            var c = counter();
            var at = sw.Elapsed.TotalSeconds;
            if (at - lastAt >= 0.9)
            {
                var phase = at <= Warmup + 0.05 ? "warm-up" : "measure";
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  [{scenario} {Target}] {at,5:0.0}s {phase}  {(c - last) * unitScale / (at - lastAt),12:0.0} {unit}  failures {Failures.Total}"));
                last = c;
                lastAt = at;
            }
        }

        var endCount = counter();
        var endAt = sw.Elapsed.TotalSeconds;
        var srvCpu = ServerCpuSeconds();
        var cliCpu = Probe.OwnCpuSeconds();
        _recording = false;
        _stop = true;
        var secs = endAt - startAt;
        return new Window(endCount - startCount, secs, Pids.Length > 0 && srvCpu >= 0 && srvCpu0 >= 0 ? (srvCpu - srvCpu0) / secs : -1, (cliCpu - cliCpu0) / secs);
    }

    /// <summary>Waits for the loops to finish after <see cref="Stop"/>, then closes whatever is stuck.</summary>
    public async Task DrainAsync(Task loops, IEnumerable<IDisposable> resources, double graceSeconds = 5)
    {
        if (await Task.WhenAny(loops, Task.Delay(TimeSpan.FromSeconds(graceSeconds))) != loops)
        {
            Console.Error.WriteLine($"  [{scenario} {Target}] loops did not finish within {graceSeconds}s of the end: closing their sockets");
            foreach (var r in resources)
            {
                r.Dispose();
            }

            await Task.WhenAny(loops, Task.Delay(TimeSpan.FromSeconds(graceSeconds)));
        }
    }
}

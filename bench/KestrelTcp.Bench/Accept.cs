using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace KestrelTcp.Bench;

/// <summary>
/// accept: P workers each connect to Time, read to EOF, check the reply is one CRLF-terminated line,
/// close, and go again. Reports connections/s, latency from connect to EOF, and failures by kind.
/// A connection is a new socket by nature: that allocation is the one this loop makes.
/// </summary>
internal static class Accept
{
    public static async Task<int> RunAsync(Args args)
    {
        var timed = new Timed(args, "accept");
        var endPoint = args.EndPoint("port");
        var workers = args.Int("workers", 32);
        var timeoutMs = args.Int("timeout-ms", 5000);

        var counters = new long[workers * 8];
        var histograms = new Histogram[workers];
        var current = new Socket?[workers];
        var loops = new Task[workers];
        var started = new long[workers * 8];
        for (var i = 0; i < workers; i++)
        {
            histograms[i] = new Histogram();
            loops[i] = LoopAsync(endPoint, i, counters, started, histograms[i], current, timeoutMs, timed);
        }

        var all = Task.WhenAll(loops);
        var watchdog = WatchdogAsync(started, current, timeoutMs, timed);
        var w = await timed.RunAsync(() => Timed.SumPadded(counters), "connections/s", 1);
        await timed.DrainAsync(all, current.Where(s => s is not null).Select(s => (IDisposable)s!).ToArray());
        await watchdog;

        var merged = new Histogram();
        foreach (var h in histograms)
        {
            merged.Add(h);
        }

        new Result("accept", timed.Target)
            .Add("workers", workers).Add("seconds", w.Seconds)
            .Add("conn_s", w.Count / w.Seconds)
            .Add("p50_us", merged.Quantile(0.50) / 1000).Add("p99_us", merged.Quantile(0.99) / 1000)
            .Add("max_us", merged.Max / 1000.0)
            .Add("failures", timed.Failures.Total).Add("failure_kinds", timed.Failures.ToString())
            .Add("srv_cpu", w.ServerCpu).Add("cli_cpu", w.ClientCpu)
            .Print();
        return 0;
    }

    internal const long TimedOut = -1;

    // One timer for all workers instead of a CancellationTokenSource per connection: a connection that has
    // not reached EOF within the timeout has its socket closed and is counted as a timeout.
    internal static async Task WatchdogAsync(long[] started, Socket?[] current, int timeoutMs, Timed timed)
    {
        var limit = timeoutMs * Stopwatch.Frequency / 1000;
        while (!timed.Stop)
        {
            await Task.Delay(100);
            var now = Stopwatch.GetTimestamp();
            for (var i = 0; i < current.Length; i++)
            {
                var at = Volatile.Read(ref started[i * 8]);
                if (at > 0 && now - at > limit && Interlocked.CompareExchange(ref started[i * 8], TimedOut, at) == at)
                {
                    current[i]?.Dispose();
                }
            }
        }
    }

    private static async Task LoopAsync(IPEndPoint endPoint, int worker, long[] counters, long[] started, Histogram histogram, Socket?[] current, int timeoutMs, Timed timed)
    {
        await Task.Yield();
        var buffer = new byte[256];
        long done = 0;
        while (!timed.Stop && done < timed.MaxOps)
        {
            var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            current[worker] = socket;
            var start = Stopwatch.GetTimestamp();
            try
            {
                Volatile.Write(ref started[worker * 8], start);
                await socket.ConnectAsync(endPoint);
                var got = 0;
                while (true)
                {
                    var n = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None);
                    if (n == 0)
                    {
                        break;
                    }

                    got += n;
                    if (got == buffer.Length)
                    {
                        throw new BenchException("too_long");
                    }
                }

                if (got < 3 || buffer[got - 2] != '\r' || buffer[got - 1] != '\n')
                {
                    throw new BenchException(got == 0 ? "empty" : "bad_reply");
                }

                var end = Stopwatch.GetTimestamp();
                if (timed.Recording)
                {
                    histogram.Record(PingPong.Nanos(end - start));
                }

                Volatile.Write(ref counters[worker * 8], ++done);
            }
            catch (Exception) when (Volatile.Read(ref started[worker * 8]) == TimedOut)
            {
                timed.Failures.Add("timeout");
            }
            catch (Exception e) when (!timed.Stop || e is BenchException)
            {
                timed.Failures.Add(e);
            }
            catch (Exception)
            {
            }
            finally
            {
                Volatile.Write(ref started[worker * 8], 0);
                socket.Dispose();
            }
        }
    }
}

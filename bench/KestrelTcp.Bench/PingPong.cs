using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;

namespace KestrelTcp.Bench;

/// <summary>
/// pingpong: C connections each send an M-byte message and wait for its whole echo, repeatedly.
/// Reports round trips/s and latency percentiles. One connection runs blocking calls on one thread
/// (the cheapest client there is, so the server's cost shows); several run async loops.
/// </summary>
internal static class PingPong
{
    public static async Task<int> RunAsync(Args args)
    {
        var timed = new Timed(args, "pingpong");
        var endPoint = args.EndPoint("port");
        var conns = args.Int("connections", 1);
        var size = Math.Max(8, args.Int("size", 64));
        var sync = args.Str("mode", conns == 1 ? "sync" : "async") == "sync";

        var sockets = await Connect.ManyAsync(endPoint, conns);
        var counters = new long[conns * 8];
        var histograms = new Histogram[conns];
        var loops = new Task[conns];
        for (var i = 0; i < conns; i++)
        {
            histograms[i] = new Histogram();
            if (sync)
            {
                var (s, h, slot) = (sockets[i], histograms[i], i * 8);
                var thread = new Thread(() => LoopSync(s, size, counters, slot, h, timed)) { IsBackground = true, Name = "pingpong" };
                var done = new TaskCompletionSource();
                loops[i] = done.Task;
                thread.Start();
                _ = Task.Run(() =>
                {
                    thread.Join();
                    done.SetResult();
                });
            }
            else
            {
                loops[i] = LoopAsync(sockets[i], size, counters, i * 8, histograms[i], timed);
            }
        }

        var all = Task.WhenAll(loops);
        var w = await timed.RunAsync(() => Timed.SumPadded(counters), "round trips/s", 1);
        await timed.DrainAsync(all, sockets);
        foreach (var s in sockets)
        {
            s.Dispose();
        }

        var merged = new Histogram();
        foreach (var h in histograms)
        {
            merged.Add(h);
        }

        new Result("pingpong", timed.Target)
            .Add("connections", conns).Add("size", size).Add("mode", sync ? "sync" : "async").Add("seconds", w.Seconds)
            .Add("rt_s", w.Count / w.Seconds)
            .Add("p50_us", merged.Quantile(0.50) / 1000).Add("p99_us", merged.Quantile(0.99) / 1000)
            .Add("p999_us", merged.Quantile(0.999) / 1000).Add("max_us", merged.Max / 1000.0)
            .Add("failures", timed.Failures.Total).Add("failure_kinds", timed.Failures.ToString())
            .Add("srv_cpu", w.ServerCpu).Add("cli_cpu", w.ClientCpu)
            .Print();
        return 0;
    }


    private static void LoopSync(Socket socket, int size, long[] counters, int slot, Histogram histogram, Timed timed)
    {
        var send = new byte[size];
        var receive = new byte[size];
        new Random(slot).NextBytes(send);
        long i = 0;
        try
        {
            while (!timed.Stop && i < timed.MaxOps)
            {
                BinaryPrimitives.WriteInt64LittleEndian(send, i);
                var start = Stopwatch.GetTimestamp();
                socket.Send(send, SocketFlags.None);
                Probe.ReadExactly(socket, receive, size);

                var end = Stopwatch.GetTimestamp();
                if (!receive.AsSpan().SequenceEqual(send))
                {
                    throw new BenchException("corrupt");
                }

                if (timed.Recording)
                {
                    histogram.Record(Nanos(end - start));
                }

                Volatile.Write(ref counters[slot], ++i);
            }
        }
        catch (Exception e) when (!timed.Stop || e is BenchException)
        {
            timed.Failures.Add(e);
        }
        catch (Exception)
        {
        }
    }

    private static async Task LoopAsync(Socket socket, int size, long[] counters, int slot, Histogram histogram, Timed timed)
    {
        await Task.Yield();
        var send = new byte[size];
        var receive = new byte[size];
        new Random(slot).NextBytes(send);
        long i = 0;
        try
        {
            while (!timed.Stop && i < timed.MaxOps)
            {
                BinaryPrimitives.WriteInt64LittleEndian(send, i);
                var start = Stopwatch.GetTimestamp();
                await socket.SendAsync(send.AsMemory(), SocketFlags.None);
                var got = 0;
                while (got < size)
                {
                    var n = await socket.ReceiveAsync(receive.AsMemory(got), SocketFlags.None);
                    if (n == 0)
                    {
                        throw new BenchException("eof");
                    }

                    got += n;
                }

                var end = Stopwatch.GetTimestamp();
                if (!receive.AsSpan().SequenceEqual(send))
                {
                    throw new BenchException("corrupt");
                }

                if (timed.Recording)
                {
                    histogram.Record(Nanos(end - start));
                }

                Volatile.Write(ref counters[slot], ++i);
            }
        }
        catch (Exception e) when (!timed.Stop || e is BenchException)
        {
            timed.Failures.Add(e);
        }
        catch (Exception)
        {
        }
    }

    internal static long Nanos(long ticks) => Stopwatch.Frequency == 1_000_000_000 ? ticks : (long)(ticks * (1e9 / Stopwatch.Frequency));
}

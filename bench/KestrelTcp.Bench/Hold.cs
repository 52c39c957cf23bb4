using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KestrelTcp.Bench;

/// <summary>
/// hold: opens N connections to Echo (or Greeting), keeps them D seconds with an occasional ping on
/// each, and counts those that stayed healthy (every ping answered right, up to a last sweep at the
/// end). Alongside: the server's resident memory before and while holding, and the latency of
/// <c>/health/ready</c> probed on a fresh connection every few hundred milliseconds from start to end.
/// Blocking sockets on a few threads: the client needs one descriptor per connection and little else.
/// </summary>
internal static class Hold
{
    /// <summary>A readiness probe slower than this is reported as it happens, with when.</summary>
    private const long SlowProbeNanos = 100_000_000;

    public static int Run(Args args)
    {
        var target = args.Str("target", "server");
        var endPoint = args.EndPoint("port");
        var greeting = args.Str("protocol", "echo") == "greeting";
        var count = args.Int("connections", 10_000);
        var holdSeconds = args.Double("seconds", 30);
        var pingInterval = args.Double("ping-interval", 10);
        var threads = args.Int("threads", 16);
        var timeoutMs = args.Int("timeout-ms", 5000);
        var pid = args.Int("pid", 0);
        var httpPort = args.Int("http-port", 0);
        var probeEvery = args.Int("probe-ms", 100);
        var warmupConnections = args.Int("warmup-connections", 200);

        var sockets = new Socket?[count];
        var healthy = new bool[count];
        var failures = new Failures();
        var stop = false;

        // Warm the server's accept and echo paths (JIT, pools) so that "before" is a server that has served.
        WarmUp(endPoint, warmupConnections, greeting, timeoutMs);

        // Memory before: after a GC-settling pause, the lowest of a few samples.
        Thread.Sleep(1000);
        var rssBefore = Enumerable.Range(0, 3).Select(_ =>
        {
            Thread.Sleep(200);
            return Probe.RssKib(pid);
        }).Min();

        var probes = new Histogram();
        var openProbes = new Histogram();
        var opening = true;
        long probeFailures = 0, probeCount = 0;
        var sw = Stopwatch.StartNew();
        Thread? prober = null;
        if (httpPort > 0)
        {
            var http = new IPEndPoint(endPoint.Address, httpPort);
            prober = new Thread(() =>
            {
                var scratch = new byte[4096];
                while (!Volatile.Read(ref stop))
                {
                    var start = Stopwatch.GetTimestamp();
                    var status = Probe.HttpGet(http, "/health/ready", 2000, scratch);
                    var took = PingPong.Nanos(Stopwatch.GetTimestamp() - start);
                    if (took > SlowProbeNanos)
                    {
                        Console.Error.WriteLine($"  [hold {target}] {sw.Elapsed.TotalSeconds,5:0.0}s slow /health/ready: {took / 1e6:0} ms (status {status})");
                    }

                    lock (probes)
                    {
                        probeCount++;
                        probes.Record(took);
                        if (Volatile.Read(ref opening))
                        {
                            openProbes.Record(took);
                        }
                        if (status != 200)
                        {
                            probeFailures++;
                        }
                    }

                    Thread.Sleep(probeEvery);
                }
            }) { IsBackground = true, Name = "ready-probe" };
            prober.Start();
        }

        var banner = greeting ? ReadBannerLength(endPoint, timeoutMs) : 0;
        long rssPeak = rssBefore;
        var peakLock = new object();
        void SampleRss()
        {
            var rss = Probe.RssKib(pid);
            lock (peakLock)
            {
                rssPeak = Math.Max(rssPeak, rss);
            }
        }

        // Open, threads sharing the index space.
        var next = -1;
        var opened = 0;
        Parallel(threads, () =>
        {
            var scratch = new byte[256];
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                try
                {
                    var s = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = timeoutMs, SendTimeout = timeoutMs };
                    sockets[i] = s;
                    s.Connect(endPoint);
                    if (greeting)
                    {
                        Probe.ReadExactly(s, scratch, banner);
                    }

                    healthy[i] = true;
                    Interlocked.Increment(ref opened);
                }
                catch (Exception e)
                {
                    failures.Add("open_" + Failures.Kind(e));
                }
            }
        }, () =>
        {
            Console.Error.WriteLine($"  [hold {target}] {sw.Elapsed.TotalSeconds,5:0.0}s opening   {Volatile.Read(ref opened),6} open  rss {Probe.RssKib(pid) / 1024.0:0.0} MiB  failures {failures.Total}");
        });
        var openSeconds = sw.Elapsed.TotalSeconds;
        Volatile.Write(ref opening, false);
        SampleRss();

        // Hold: every connection pinged about once per interval, spread evenly over it.
        long pings = 0;
        var holdStart = sw.Elapsed.TotalSeconds;
        var perThread = (count + threads - 1) / threads;
        Parallel(threads, t =>
        {
            var scratch = new byte[64];
            var payload = new byte[greeting ? 16 : 8];
            var gap = pingInterval / Math.Max(1, perThread);
            var started = Stopwatch.GetTimestamp();
            long k = 0;
            while (true)
            {
                for (var j = 0; j < perThread; j++, k++)
                {
                    var due = (k * gap) + (t * gap / threads);
                    var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
                    if (elapsed >= holdSeconds)
                    {
                        return;
                    }

                    if (due > elapsed)
                    {
                        Thread.Sleep(TimeSpan.FromSeconds(Math.Min(due - elapsed, holdSeconds - elapsed)));
                    }

                    var i = (j * threads) + t;
                    if (i < count && healthy[i] && !Ping(sockets[i]!, payload, scratch, greeting, k, failures))
                    {
                        healthy[i] = false;
                    }

                    Interlocked.Increment(ref pings);
                }
            }
        }, () =>
        {
            SampleRss();
            Console.Error.WriteLine($"  [hold {target}] {sw.Elapsed.TotalSeconds,5:0.0}s holding   {healthy.Count(h => h),6} healthy  rss {Probe.RssKib(pid) / 1024.0:0.0} MiB  pings {Volatile.Read(ref pings)}  failures {failures.Total}");
        });
        SampleRss();
        var heldSeconds = sw.Elapsed.TotalSeconds - holdStart;

        // Last sweep: each connection must still answer.
        Parallel(threads, t =>
        {
            var scratch = new byte[64];
            var payload = new byte[greeting ? 16 : 8];
            for (var i = t; i < count; i += threads)
            {
                if (healthy[i] && !Ping(sockets[i]!, payload, scratch, greeting, -i, failures))
                {
                    healthy[i] = false;
                }
            }
        }, () => { });
        var rssHeld = Probe.RssKib(pid);
        SampleRss();
        var healthyCount = healthy.Count(h => h);

        foreach (var s in sockets)
        {
            s?.Dispose();
        }

        Volatile.Write(ref stop, true);
        prober?.Join();
        Thread.Sleep(1000);
        var rssAfter = Probe.RssKib(pid);

        var result = new Result("hold", target)
            .Add("protocol", greeting ? "greeting" : "echo").Add("connections", count).Add("opened", opened).Add("healthy", healthyCount)
            .Add("open_s", openSeconds).Add("held_s", heldSeconds).Add("pings", pings)
            .Add("failures", failures.Total).Add("failure_kinds", failures.ToString())
            .Add("rss_before_kib", rssBefore).Add("rss_held_kib", rssHeld).Add("rss_peak_kib", rssPeak).Add("rss_after_kib", rssAfter)
            .Add("bytes_per_conn", pid > 0 && opened > 0 ? (rssHeld - rssBefore) * 1024.0 / opened : -1);
        if (httpPort > 0)
        {
            result.Add("ready_probes", probeCount).Add("ready_failures", probeFailures)
                .Add("ready_p50_ms", probes.Quantile(0.5) / 1e6).Add("ready_p99_ms", probes.Quantile(0.99) / 1e6)
                .Add("ready_max_ms", probes.Max / 1e6).Add("ready_opening_max_ms", openProbes.Max / 1e6);
        }

        result.Print();
        return 0;
    }

    private static void WarmUp(IPEndPoint endPoint, int count, bool greeting, int timeoutMs)
    {
        if (count <= 0)
        {
            return;
        }

        var banner = greeting ? ReadBannerLength(endPoint, timeoutMs) : 0;
        var sockets = new List<Socket>(count);
        var scratch = new byte[256];
        var payload = new byte[16];
        var ignored = new Failures();
        for (var i = 0; i < count; i++)
        {
            var s = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = timeoutMs };
            s.Connect(endPoint);
            if (greeting)
            {
                Probe.ReadExactly(s, scratch, banner);
            }

            Ping(s, payload, scratch, greeting, i, ignored);
            sockets.Add(s);
        }

        foreach (var s in sockets)
        {
            s.Dispose();
        }
    }

    private static bool Ping(Socket socket, byte[] payload, byte[] scratch, bool greeting, long seq, Failures failures)
    {
        try
        {
            if (greeting)
            {
                // "p" + 14 hex digits + "\n" → "Hello, p…!\r\n"
                var line = Encoding.ASCII.GetBytes($"p{seq & 0xFFFFFFFFFFFFF:x14}\n");
                socket.Send(line);
                var expected = Encoding.ASCII.GetBytes($"Hello, p{seq & 0xFFFFFFFFFFFFF:x14}!\r\n");
                Probe.ReadExactly(socket, scratch, expected.Length);
                if (!scratch.AsSpan(0, expected.Length).SequenceEqual(expected))
                {
                    throw new BenchException("corrupt");
                }
            }
            else
            {
                BinaryPrimitives.WriteInt64LittleEndian(payload, seq);
                socket.Send(payload);
                Probe.ReadExactly(socket, scratch, payload.Length);
                if (!scratch.AsSpan(0, payload.Length).SequenceEqual(payload))
                {
                    throw new BenchException("corrupt");
                }
            }

            return true;
        }
        catch (Exception e)
        {
            failures.Add(Failures.Kind(e));
            return false;
        }
    }

    private static int ReadBannerLength(IPEndPoint endPoint, int timeoutMs)
    {
        using var s = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = timeoutMs };
        s.Connect(endPoint);
        var buffer = new byte[1024];
        var got = 0;
        while (got < buffer.Length)
        {
            var n = s.Receive(buffer, got, buffer.Length - got, SocketFlags.None);
            if (n == 0)
            {
                break;
            }

            got += n;
            if (buffer.AsSpan(0, got).IndexOf("\r\n"u8) is >= 0 and var at)
            {
                return at + 2;
            }
        }

        throw new BenchException("no_banner");
    }

    private static void Parallel(int threads, Action body, Action progress) => Parallel(threads, _ => body(), progress);

    /// <summary>Runs <paramref name="body"/> on dedicated threads, calling <paramref name="progress"/> each second until all end.</summary>
    private static void Parallel(int threads, Action<int> body, Action progress)
    {
        var all = new Thread[threads];
        for (var t = 0; t < threads; t++)
        {
            var index = t;
            all[t] = new Thread(() => body(index)) { IsBackground = true };
            all[t].Start();
        }

        foreach (var thread in all)
        {
            while (!thread.Join(1000))
            {
                progress();
            }
        }
    }
}

using System.Net;
using System.Net.Sockets;

namespace KestrelTcp.Bench;

/// <summary>
/// bulk: C connections stream K-byte chunks through Echo, at most W bytes in flight per connection,
/// verifying every echoed byte against the pseudo-random stream that was sent. Reports MB/s echoed.
/// </summary>
internal static class Bulk
{
    // A prime period, so the stream never lines up with chunk or buffer sizes.
    private const int Period = 65521;
    internal const int ReceiveSize = 65536;

    public static async Task<int> RunAsync(Args args)
    {
        var timed = new Timed(args, "bulk");
        var endPoint = args.EndPoint("port");
        var conns = args.Int("connections", 64);
        var chunk = args.Int("chunk", 16384);
        var window = Math.Max(chunk, args.Int("window", 4 * chunk));
        if (chunk > ReceiveSize)
        {
            throw new ArgumentException("--chunk must be at most 65536");
        }

        var pattern = Pattern();
        var sockets = await Connect.ManyAsync(endPoint, conns);
        var received = new long[conns * 8]; // one per cache line
        var loops = new Task[conns];
        for (var i = 0; i < conns; i++)
        {
            loops[i] = LoopAsync(sockets[i], pattern, chunk, window, received, i * 8, timed);
        }

        var all = Task.WhenAll(loops);
        var w = await timed.RunAsync(() => Timed.SumPadded(received), "MB/s", 1e-6);
        await timed.DrainAsync(all, sockets);
        foreach (var s in sockets)
        {
            s.Dispose();
        }

        new Result("bulk", timed.Target)
            .Add("connections", conns).Add("chunk", chunk).Add("window", window).Add("seconds", w.Seconds)
            .Add("mb_s", w.Count / w.Seconds / 1e6)
            .Add("failures", timed.Failures.Total).Add("failure_kinds", timed.Failures.ToString())
            .Add("srv_cpu", w.ServerCpu).Add("cli_cpu", w.ClientCpu)
            .Print();
        return 0;
    }


    /// <summary>The pseudo-random stream sent: one period, then its repetition for a read's length, so any read-sized window from any offset is one contiguous slice.</summary>
    internal static byte[] Pattern()
    {
        var pattern = new byte[Period + ReceiveSize];
        new Random(862).NextBytes(pattern.AsSpan(0, Period));
        // (Not one CopyTo: source and destination overlap past 2 × Period - ReceiveSize.)
        for (var i = Period; i < pattern.Length; i++)
        {
            pattern[i] = pattern[i - Period];
        }

        return pattern;
    }

    /// <summary>The slice of the stream that starts at stream offset <paramref name="sent"/>.</summary>
    internal static ReadOnlyMemory<byte> Slice(byte[] pattern, long sent, int length) => pattern.AsMemory((int)(sent % Period), length);

    private static async Task LoopAsync(Socket socket, byte[] pattern, int chunk, int window, long[] counters, int slot, Timed timed)
    {
        await Task.Yield();
        var buffer = GC.AllocateUninitializedArray<byte>(ReceiveSize);
        long sent = 0, received = 0;
        var limit = timed.MaxOps * (long)chunk;
        try
        {
            while (!timed.Stop && received < limit)
            {
                while (sent - received + chunk <= window)
                {
                    var off = (int)(sent % Period);
                    var done = 0;
                    while (done < chunk)
                    {
                        done += await socket.SendAsync(pattern.AsMemory(off + done, chunk - done), SocketFlags.None);
                    }

                    sent += chunk;
                }

                received += await ReceiveAndVerifyAsync(socket, buffer, pattern, received);
                Volatile.Write(ref counters[slot], received);
            }

            // Everything still in flight must come back too: the stream is verified to its end.
            while (received < sent)
            {
                received += await ReceiveAndVerifyAsync(socket, buffer, pattern, received);
            }
        }
        catch (Exception e) when (!timed.Stop || e is BenchException)
        {
            timed.Failures.Add(e);
        }
        catch (Exception)
        {
            // Closed by the drain after the end: counted there as stuck.
        }
    }

    private static async ValueTask<int> ReceiveAndVerifyAsync(Socket socket, byte[] buffer, byte[] pattern, long received)
    {
        var n = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
        Verify(buffer, n, pattern, received);
        return n;
    }

    /// <summary>Checks the <paramref name="n"/> bytes received at stream offset <paramref name="received"/>; EOF (0) or wrong bytes throw.</summary>
    internal static void Verify(byte[] buffer, int n, byte[] pattern, long received)
    {
        if (n == 0)
        {
            throw new BenchException("eof");
        }

        var expected = pattern.AsSpan((int)(received % Period), n);
        if (!buffer.AsSpan(0, n).SequenceEqual(expected))
        {
            var at = buffer.AsSpan(0, n).CommonPrefixLength(expected);
            // Where the stream went wrong tells a lost, repeated or reordered block from a flipped byte.
            var found = -1L;
            for (var back = -(long)Math.Min(received, 1 << 20); back <= 1 << 20 && found < 0; back++)
            {
                var o = (int)(((received + at + back) % Period + Period) % Period);
                if (buffer.AsSpan(at, Math.Min(32, n - at)).SequenceEqual(pattern.AsSpan(o, Math.Min(32, n - at))))
                {
                    found = back;
                }
            }

            Console.Error.WriteLine($"  corrupt: stream offset {received + at} (read of {n} bytes at {received}, first bad byte {at}); the bytes there belong {found} bytes away in the stream");
            throw new BenchException("corrupt");
        }
    }
}

/// <summary>Opening connections for a scenario.</summary>
internal static class Connect
{
    public static async Task<Socket[]> ManyAsync(IPEndPoint endPoint, int count)
    {
        var sockets = new Socket[count];
        for (var i = 0; i < count; i++)
        {
            var s = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await s.ConnectAsync(endPoint);
            sockets[i] = s;
        }

        return sockets;
    }
}

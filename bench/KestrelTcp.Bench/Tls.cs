using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace KestrelTcp.Bench;

/// <summary>
/// What the TLS scenarios share: the client's options (TLS 1.3 only by default, target host
/// 127.0.0.1, no certificate validation, no revocation check, no session resumption) and the
/// description of what was negotiated, so a run shows both sides spoke the same TLS.
/// </summary>
internal static class Tls
{
    public static SslClientAuthenticationOptions ClientOptions(Args args) => new()
    {
        // An IP address as the target host: no SNI is sent, as for any client dialing an address.
        TargetHost = args.Str("tls-host", "127.0.0.1"),
        EnabledSslProtocols = args.Str("tls-protocols", "tls13") switch
        {
            "tls13" => SslProtocols.Tls13,
            "tls12" => SslProtocols.Tls12,
            "any" => SslProtocols.None,
            var other => throw new ArgumentException($"--tls-protocols: '{other}' (tls13, tls12 or any)"),
        },
        // The benchmark's certificate is self-signed and made for the run: the server's identity is not what is measured.
#pragma warning disable CA5359 // accepts any certificate: by design, loopback benchmark only
        RemoteCertificateValidationCallback = static (_, _, _, _) => true,
#pragma warning restore CA5359
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        // SslStream builds the server's chain even when the callback accepts anything; against the system's
        // roots that cost the client ~0.7 ms a handshake here, a third of its work (OpenSSL sorts the whole
        // store each time). An empty custom trust store keeps the chain trivial: the callback sees an
        // untrusted root and accepts it. --tls-system-roots puts the system's roots back.
        CertificateChainPolicy = args.Flag("tls-system-roots") ? null : new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        },
        // Every handshake a full one: a resumed session skips the certificate and its signature, the server's main
        // cost. (.NET resumes only towards a host name, not an IP address, but this says so whatever the host.)
        // --tls-resume allows it, to compare: hs_bytes_in then drops from ~1,350 (RSA 2048) to ~350.
        AllowTlsResume = args.Flag("tls-resume"),
    };

    /// <summary>Protocol, cipher suite and server key of an authenticated stream, for the RESULT line.</summary>
    public static (string Protocol, string Cipher, string Key) Describe(SslStream tls)
    {
        var key = "unknown";
        if (tls.RemoteCertificate is { } remote)
        {
            using var cert = new X509Certificate2(remote);
            key = cert.GetECDsaPublicKey() is { } ec ? $"ecdsa{ec.KeySize}" : cert.GetRSAPublicKey() is { } rsa ? $"rsa{rsa.KeySize}" : cert.PublicKey.Oid.FriendlyName ?? "other";
        }

        return (tls.SslProtocol.ToString().ToLowerInvariant(), tls.NegotiatedCipherSuite.ToString(), key);
    }

    /// <summary>Connects and authenticates one TLS connection, giving up after <paramref name="timeoutMs"/>.</summary>
    public static async Task<(Socket Socket, SslStream Tls)> ConnectAsync(IPEndPoint endPoint, SslClientAuthenticationOptions options, int timeoutMs)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var cts = new CancellationTokenSource(timeoutMs);
            await socket.ConnectAsync(endPoint, cts.Token);
            var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
            await tls.AuthenticateAsClientAsync(options, cts.Token);
            return (socket, tls);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>
/// tls-bulk: <see cref="Bulk"/> through TLS. C connections, each an <see cref="SslStream"/> (TLS 1.3
/// unless told otherwise), stream K-byte chunks through Echo, at most W bytes in flight per connection,
/// verifying every echoed byte against the pseudo-random stream that was sent. Reports MB/s of
/// plaintext echoed. The handshakes happen before the clock starts.
/// </summary>
internal static class TlsBulk
{
    public static async Task<int> RunAsync(Args args)
    {
        var timed = new Timed(args, "tls-bulk");
        var endPoint = args.EndPoint("port");
        var conns = args.Int("connections", 64);
        var chunk = args.Int("chunk", 16384);
        var window = Math.Max(chunk, args.Int("window", 4 * chunk));
        var timeoutMs = args.Int("timeout-ms", 5000);
        if (chunk > Bulk.ReceiveSize)
        {
            throw new ArgumentException("--chunk must be at most 65536");
        }

        var options = Tls.ClientOptions(args);
        var pattern = Bulk.Pattern();
        var sockets = new Socket[conns];
        var streams = new SslStream[conns];
        for (var i = 0; i < conns; i++)
        {
            try
            {
                (sockets[i], streams[i]) = await Tls.ConnectAsync(endPoint, options, timeoutMs);
            }
            catch (Exception e)
            {
                // No figure without every connection: a server that cannot complete the handshakes has no bulk rate.
                Console.Error.WriteLine($"  [tls-bulk {timed.Target}] connection {i + 1} of {conns}: TLS setup failed: {Failures.Kind(e)}: {e.Message}");
                foreach (var s in sockets.Take(i))
                {
                    s.Dispose();
                }

                new Result("tls-bulk", timed.Target)
                    .Add("connections", conns).Add("chunk", chunk).Add("window", window).Add("seconds", 0)
                    .Add("failures", 1).Add("failure_kinds", "setup_" + Failures.Kind(e))
                    .Print();
                return 0;
            }
        }

        var (protocol, cipher, key) = Tls.Describe(streams[0]);
        var received = new long[conns * 8]; // one per cache line
        var loops = new Task[conns];
        for (var i = 0; i < conns; i++)
        {
            loops[i] = LoopAsync(streams[i], pattern, chunk, window, received, i * 8, timed);
        }

        var all = Task.WhenAll(loops);
        var w = await timed.RunAsync(() => Timed.SumPadded(received), "MB/s", 1e-6);
        await timed.DrainAsync(all, sockets);
        foreach (var s in streams)
        {
            s.Dispose();
        }

        new Result("tls-bulk", timed.Target)
            .Add("connections", conns).Add("chunk", chunk).Add("window", window).Add("seconds", w.Seconds)
            .Add("mb_s", w.Count / w.Seconds / 1e6)
            .Add("failures", timed.Failures.Total).Add("failure_kinds", timed.Failures.ToString())
            .Add("srv_cpu", w.ServerCpu).Add("cli_cpu", w.ClientCpu)
            .Add("protocol", protocol).Add("cipher", cipher).Add("server_key", key)
            .Print();
        return 0;
    }

    private static async Task LoopAsync(SslStream tls, byte[] pattern, int chunk, int window, long[] counters, int slot, Timed timed)
    {
        await Task.Yield();
        var buffer = GC.AllocateUninitializedArray<byte>(Bulk.ReceiveSize);
        long sent = 0, received = 0;
        var limit = timed.MaxOps * (long)chunk;
        try
        {
            while (!timed.Stop && received < limit)
            {
                while (sent - received + chunk <= window)
                {
                    // One write, one TLS record (16 KiB is the largest record's plaintext).
                    await tls.WriteAsync(Bulk.Slice(pattern, sent, chunk));
                    sent += chunk;
                }

                var n = await tls.ReadAsync(buffer.AsMemory());
                Bulk.Verify(buffer, n, pattern, received);
                received += n;
                Volatile.Write(ref counters[slot], received);
            }

            // Everything still in flight must come back too: the stream is verified to its end.
            while (received < sent)
            {
                var n = await tls.ReadAsync(buffer.AsMemory());
                Bulk.Verify(buffer, n, pattern, received);
                received += n;
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
}

/// <summary>
/// tls-handshake: C workers each connect to a TLS Echo, complete a full TLS 1.3 handshake (no
/// session resumption: the client offers no ticket), send a few bytes, read them back, check them,
/// close (close_notify, FIN, then the server's end), and go again. Reports handshakes/s (whole
/// cycles completed) and the handshake's latency (connect → authenticated), and the bytes the client
/// received during each handshake: a full handshake carries the server's certificate, a resumed one
/// would not, so the figure shows none was resumed.
/// </summary>
internal static class TlsHandshake
{
    public static async Task<int> RunAsync(Args args)
    {
        var timed = new Timed(args, "tls-handshake");
        var endPoint = args.EndPoint("port");
        var workers = args.Int("connections", 16);
        var size = Math.Clamp(args.Int("size", 16), 1, 4096);
        var timeoutMs = args.Int("timeout-ms", 5000);
        var options = Tls.ClientOptions(args);

        var counters = new long[workers * 8];
        var handshakeBytes = new long[workers * 8];
        var histograms = new Histogram[workers];
        var current = new Socket?[workers];
        var started = new long[workers * 8];
        var described = new TaskCompletionSource<(string, string, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var loops = new Task[workers];
        for (var i = 0; i < workers; i++)
        {
            histograms[i] = new Histogram();
            loops[i] = LoopAsync(endPoint, options, size, i, counters, handshakeBytes, started, histograms[i], current, described, timed);
        }

        var all = Task.WhenAll(loops);
        var watchdog = Accept.WatchdogAsync(started, current, timeoutMs, timed);
        var w = await timed.RunAsync(() => Timed.SumPadded(counters), "handshakes/s", 1);
        await timed.DrainAsync(all, current.Where(s => s is not null).Select(s => (IDisposable)s!).ToArray());
        await watchdog;

        var merged = new Histogram();
        foreach (var h in histograms)
        {
            merged.Add(h);
        }

        var total = Timed.SumPadded(counters);
        var (protocol, cipher, key) = described.Task.IsCompleted ? described.Task.Result : ("none", "none", "none");
        new Result("tls-handshake", timed.Target)
            .Add("connections", workers).Add("size", size).Add("seconds", w.Seconds)
            .Add("hs_s", w.Count / w.Seconds)
            .Add("p50_us", merged.Quantile(0.50) / 1000).Add("p99_us", merged.Quantile(0.99) / 1000)
            .Add("p999_us", merged.Quantile(0.999) / 1000).Add("max_us", merged.Max / 1000.0)
            .Add("hs_bytes_in", total > 0 ? Timed.SumPadded(handshakeBytes) / (double)total : 0)
            .Add("failures", timed.Failures.Total).Add("failure_kinds", timed.Failures.ToString())
            .Add("srv_cpu", w.ServerCpu).Add("cli_cpu", w.ClientCpu)
            .Add("protocol", protocol).Add("cipher", cipher).Add("server_key", key)
            .Print();
        return 0;
    }

    private static async Task LoopAsync(
        IPEndPoint endPoint, SslClientAuthenticationOptions options, int size, int worker, long[] counters, long[] handshakeBytes,
        long[] started, Histogram histogram, Socket?[] current, TaskCompletionSource<(string, string, string)> described, Timed timed)
    {
        await Task.Yield();
        var send = new byte[size];
        var receive = new byte[size];
        var drain = new byte[256];
        new Random(worker).NextBytes(send);
        var slot = worker * 8;
        long done = 0, bytes = 0;
        while (!timed.Stop && done < timed.MaxOps)
        {
            var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            current[worker] = socket;
            var start = Stopwatch.GetTimestamp();
            try
            {
                Volatile.Write(ref started[slot], start);
                await socket.ConnectAsync(endPoint);
                var counting = new CountingStream(new NetworkStream(socket, ownsSocket: true));
                await using var tls = new SslStream(counting, leaveInnerStreamOpen: false);
                await tls.AuthenticateAsClientAsync(options);
                var shaken = Stopwatch.GetTimestamp();
                var inHandshake = counting.BytesRead;
                if (!described.Task.IsCompleted)
                {
                    described.TrySetResult(Tls.Describe(tls));
                }

                // A few bytes through Echo: the connection works end to end, not just the handshake.
                await tls.WriteAsync(send);
                await tls.ReadExactlyAsync(receive);
                if (!receive.AsSpan().SequenceEqual(send))
                {
                    throw new BenchException("corrupt");
                }

                // Close: close_notify and FIN, then wait for the server's end (Echo ends when the client does),
                // so that every counted cycle includes the server's teardown.
                await tls.ShutdownAsync();
                socket.Shutdown(SocketShutdown.Send);
                if (await tls.ReadAsync(drain) > 0)
                {
                    throw new BenchException("data_after_close");
                }

                if (timed.Recording)
                {
                    histogram.Record(PingPong.Nanos(shaken - start));
                }

                bytes += inHandshake;
                Volatile.Write(ref handshakeBytes[slot], bytes);
                Volatile.Write(ref counters[slot], ++done);
            }
            catch (Exception) when (Volatile.Read(ref started[slot]) == Accept.TimedOut)
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
                Volatile.Write(ref started[slot], 0);
                socket.Dispose();
            }
        }
    }
}

/// <summary>A pass-through stream that counts the bytes read through it (the handshake's size, as the client received it).</summary>
internal sealed class CountingStream(Stream inner) : Stream
{
    public long BytesRead { get; private set; }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = inner.Read(buffer, offset, count);
        BytesRead += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken);
        BytesRead += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        await base.DisposeAsync();
    }
}

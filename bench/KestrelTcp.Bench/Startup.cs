using System.Diagnostics;
using System.Net;

namespace KestrelTcp.Bench;

/// <summary>
/// startup: starts the server command R times and measures the time from process start to the first
/// <c>/health/ready</c> = 200 (probed every 2 ms), then its resident memory after a few idle seconds.
/// A reference server has no HTTP port: with <c>--tcp-port</c> it is ready when that port accepts a connection.
/// </summary>
internal static class Startup
{
    public static int Run(Args args)
    {
        var target = args.Str("target", "server");
        var runs = args.Int("runs", 5);
        var httpPort = args.Int("http-port", 0);
        var tcpPort = args.Int("tcp-port", 0);
        var idleSeconds = args.Double("idle-seconds", 3);
        var directory = args.Str("cwd", "");
        if (args.Rest.Length == 0 || (httpPort == 0) == (tcpPort == 0))
        {
            throw new ArgumentException("usage: startup (--http-port P | --tcp-port P) [--runs N] -- COMMAND ARGS…");
        }

        var ready = new List<double>();
        var rss = new List<long>();
        var http = new IPEndPoint(IPAddress.Loopback, httpPort);
        var tcp = new IPEndPoint(IPAddress.Loopback, tcpPort);
        var scratch = new byte[4096];
        for (var r = 0; r < runs; r++)
        {
            var psi = new ProcessStartInfo(args.Rest[0])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            if (directory.Length > 0)
            {
                psi.WorkingDirectory = directory;
            }

            foreach (var a in args.Rest.Skip(1))
            {
                psi.ArgumentList.Add(a);
            }

            var sw = Stopwatch.StartNew();
            using var process = Process.Start(psi)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            double? at = null;
            while (sw.Elapsed.TotalSeconds < 30 && !process.HasExited)
            {
                if (tcpPort != 0 ? Accepts(tcp) : Probe.HttpGet(http, "/health/ready", 1000, scratch) == 200)
                {
                    at = sw.Elapsed.TotalMilliseconds;
                    break;
                }

                Thread.Sleep(2);
            }

            if (at is { } ms)
            {
                ready.Add(ms);
                Thread.Sleep(TimeSpan.FromSeconds(idleSeconds));
                rss.Add(Probe.RssKib(process.Id));
                Console.Error.WriteLine($"  [startup {target}] run {r + 1}: ready in {ms:0} ms, idle RSS {rss[^1] / 1024.0:0.0} MiB");
            }
            else
            {
                Console.Error.WriteLine($"  [startup {target}] run {r + 1}: never ready (exited: {process.HasExited})");
            }

            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }

        ready.Sort();
        rss.Sort();
        new Result("startup", target)
            .Add("round", 1).Add("runs", runs).Add("ready_runs", ready.Count)
            .Add("ready_ms_median", ready.Count > 0 ? ready[ready.Count / 2] : -1)
            .Add("ready_ms_min", ready.Count > 0 ? ready[0] : -1)
            .Add("ready_ms_max", ready.Count > 0 ? ready[^1] : -1)
            .Add("idle_rss_kib", rss.Count > 0 ? rss[rss.Count / 2] : -1)
            .Print();
        return 0;
    }

    private static bool Accepts(IPEndPoint endpoint)
    {
        using var socket = new System.Net.Sockets.Socket(endpoint.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        try
        {
            socket.Connect(endpoint);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}

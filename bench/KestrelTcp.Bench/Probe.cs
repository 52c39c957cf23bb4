using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KestrelTcp.Bench;

/// <summary>What the benchmark observes of a server process from outside: /proc and its HTTP port.</summary>
internal static class Probe
{
    private static readonly long ClockTicks = 100; // USER_HZ on Linux

    /// <summary>Resident set size in KiB from /proc/PID/status, or -1.</summary>
    public static long RssKib(int pid)
    {
        if (pid <= 0)
        {
            return -1;
        }

        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return -1;
    }

    /// <summary>CPU time (user + system, all threads) of a process in seconds, or -1.</summary>
    public static double CpuSeconds(int pid)
    {
        if (pid <= 0)
        {
            return -1;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields[0] is field 3 (state): utime is field 14, stime field 15.
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return ticks / (double)ClockTicks;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    public static double OwnCpuSeconds() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    /// <summary>Blocking receive of exactly <paramref name="length"/> bytes into <paramref name="buffer"/>; EOF first is a failure ("eof").</summary>
    public static void ReadExactly(Socket socket, byte[] buffer, int length)
    {
        var got = 0;
        while (got < length)
        {
            var n = socket.Receive(buffer, got, length - got, SocketFlags.None);
            if (n == 0)
            {
                throw new BenchException("eof");
            }

            got += n;
        }
    }

    /// <summary>
    /// One HTTP/1.1 GET on a fresh connection, as a probe of an orchestrator makes it.
    /// Returns the status code, or a negative number when no answer came (-1 refused, -2 timeout, -3 other).
    /// </summary>
    public static int HttpGet(IPEndPoint endPoint, string path, int timeoutMs, byte[] scratch)
    {
        try
        {
            using var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.NoDelay = true;
            socket.SendTimeout = timeoutMs;
            socket.ReceiveTimeout = timeoutMs;
            socket.Connect(endPoint);
            var request = Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {endPoint}\r\nConnection: close\r\n\r\n");
            socket.Send(request);
            var got = 0;
            while (got < scratch.Length)
            {
                var n = socket.Receive(scratch, got, scratch.Length - got, SocketFlags.None);
                if (n == 0)
                {
                    break;
                }

                got += n;
                // "HTTP/1.1 200" is all we need; the body is small, keep reading to EOF to free the server's side.
            }

            if (got < 12)
            {
                return -3;
            }

            return int.Parse(Encoding.ASCII.GetString(scratch, 9, 3), CultureInfo.InvariantCulture);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return -1;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return -2;
        }
        catch (SocketException)
        {
            return -3;
        }
    }

    /// <summary>Free TCP ports on loopback (bound and released: good enough for a benchmark, not a guarantee).</summary>
    public static int[] FreePorts(int count)
    {
        var sockets = new Socket[count];
        var ports = new int[count];
        for (var i = 0; i < count; i++)
        {
            sockets[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            sockets[i].Bind(new IPEndPoint(IPAddress.Loopback, 0));
            ports[i] = ((IPEndPoint)sockets[i].LocalEndPoint!).Port;
        }

        foreach (var s in sockets)
        {
            s.Dispose();
        }

        return ports;
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>
/// A real HAProxy (Debian's <c>haproxy</c>; the test script installs it) started by a test on a
/// loopback port, in front of a KestrelTcp listener, in TCP mode. HAProxy cannot report a port it
/// chose itself, so a free port is found by binding port 0 and the start is retried on another if
/// something took it meanwhile. Its runtime API (a Unix socket, <c>show stat</c>) tells the state of
/// its health checks.
/// </summary>
public sealed class HaProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _output;

    private HaProxy(Process process, string directory, int port, StringBuilder output)
    {
        _process = process;
        _directory = directory;
        Port = port;
        _output = output;
    }

    /// <summary>The port HAProxy's frontend listens on, at 127.0.0.1.</summary>
    public int Port { get; }

    public string StatsSocket => Path.Combine(_directory, "stats.sock");

    /// <summary>What HAProxy printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static string Executable =>
        File.Exists("/usr/sbin/haproxy") ? "/usr/sbin/haproxy" : "haproxy";

    /// <summary>
    /// Starts HAProxy with one TCP frontend on a free loopback port and one server, <c>127.0.0.1:backendPort</c>
    /// with <paramref name="serverOptions"/> (e.g. <c>send-proxy-v2 check check-send-proxy inter 100ms</c>).
    /// </summary>
    public static async Task<HaProxy> StartAsync(int backendPort, string serverOptions)
    {
        for (var attempt = 1; ; attempt++)
        {
            var directory = Directory.CreateTempSubdirectory("kestreltcp-haproxy-").FullName;
            var port = FreePort();
            var config = $"""
                global
                    maxconn 256
                    stats socket {Path.Combine(directory, "stats.sock")} level admin
                defaults
                    mode tcp
                    timeout connect 5s
                    timeout client 30s
                    timeout server 30s
                    timeout check 2s
                frontend front
                    bind 127.0.0.1:{port}
                    default_backend kestreltcp
                backend kestreltcp
                    server k 127.0.0.1:{backendPort} {serverOptions}

                """;
            var configPath = Path.Combine(directory, "haproxy.cfg");
            await File.WriteAllTextAsync(configPath, config);

            var output = new StringBuilder();
            var start = new ProcessStartInfo(Executable, $"-db -f {configPath}")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            var process = Process.Start(start) ?? throw new InvalidOperationException("haproxy did not start");
            process.OutputDataReceived += (_, e) => Append(output, e.Data);
            process.ErrorDataReceived += (_, e) => Append(output, e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            var haproxy = new HaProxy(process, directory, port, output);
            if (await haproxy.WaitListeningAsync())
            {
                return haproxy;
            }

            var text = haproxy.Output;
            await haproxy.DisposeAsync();
            if (attempt == 3 || !text.Contains("cannot bind", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"haproxy did not start listening on 127.0.0.1:{port}:\n{text}");
            }
        }
    }

    /// <summary>One line of <c>show stat</c> for the backend's server: its <c>status</c> column (UP, DOWN, …).</summary>
    public async Task<string> ServerStatusAsync()
    {
        var csv = await CommandAsync("show stat");
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = lines[0].TrimStart('#', ' ').Split(',');
        var status = Array.IndexOf(header, "status");
        var server = lines.Select(l => l.Split(',')).First(f => f.Length > 1 && f[0] == "kestreltcp" && f[1] == "k");
        return server[status];
    }

    /// <summary>Sends one command to HAProxy's runtime API and returns its answer.</summary>
    public async Task<string> CommandAsync(string command)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(StatsSocket));
        await socket.SendAsync(Encoding.ASCII.GetBytes(command + "\n"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var answer = new MemoryStream();
        var buffer = new byte[4096];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, timeout.Token)) > 0)
        {
            answer.Write(buffer, 0, read);
        }

        return Encoding.ASCII.GetString(answer.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(timeout.Token);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<bool> WaitListeningAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            if (_process.HasExited)
            {
                // Let the output readers drain what the process printed before it exited.
                await _process.WaitForExitAsync();
                return false;
            }

            if (File.Exists(StatsSocket))
            {
                // HAProxy binds every listener, its runtime API's among them, before it serves any: once the
                // API answers, the frontend is bound. (A probe through the frontend would reach the backend.)
                try
                {
                    if ((await CommandAsync("show info")).Contains("Pid:", StringComparison.Ordinal))
                    {
                        return true;
                    }
                }
                catch (SocketException)
                {
                }
            }

            await Task.Delay(20);
        }

        return false;
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is not null)
        {
            lock (output)
            {
                output.AppendLine(line);
            }
        }
    }
}

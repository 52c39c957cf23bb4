// A bounded mixed hostile load against a running KestrelTcp on loopback, then a report of what it survived.
// Usage: KestrelTcp.Stress --http 8080 --echo 7007 --greeting 7001 [--pid N] [--seconds 30] [--host 127.0.0.1]
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

var options = Options.Parse(args);
var host = IPAddress.Parse(options.Host);
if (!IPAddress.IsLoopback(host))
{
    Console.Error.WriteLine("loopback only (127.0.0.1 or ::1)");
    return 2;
}

using var http = new HttpClient { BaseAddress = new Uri($"http://{(host.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{host}]" : host.ToString())}:{options.Http}"), Timeout = TimeSpan.FromSeconds(5) };
var echo = new IPEndPoint(host, options.Echo);
var greeting = new IPEndPoint(host, options.Greeting);
var counts = new ConcurrentDictionary<string, long>();
void Count(string what, long by = 1) => counts.AddOrUpdate(what, by, (_, v) => v + by);

var before = Metrics.Parse(await http.GetStringAsync("/metrics"));
var rssBefore = Rss(options.Pid);
long rssPeak = rssBefore;
Console.WriteLine($"stress: {options.Seconds} s against {host} (http {options.Http}, echo {options.Echo}, greeting {options.Greeting}), server pid {(options.Pid > 0 ? options.Pid : "unknown")}");

using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(options.Seconds));
var held = new ConcurrentBag<Socket>(); // sockets kept open until the end (never-readers, vanished clients)
var latencies = new ConcurrentBag<double>();
var workers = new List<Task>();

// 1. Floods: bursts of connections held briefly, well over MaxConnections.
for (var w = 0; w < 4; w++)
{
    workers.Add(Loop(async token =>
    {
        var burst = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => TryConnect(echo, token)));
        foreach (var socket in burst.OfType<Socket>())
        {
            Count("flood.connected");
            var refused = await ReadsEofSoon(socket, TimeSpan.FromMilliseconds(200));
            Count(refused ? "flood.closed_by_server" : "flood.held");
            socket.Dispose();
        }
    }));
}

// 2. Slowloris: greeting clients dribbling one byte every few seconds, reconnecting when cut off.
for (var w = 0; w < 200; w++)
{
    workers.Add(Loop(async token =>
    {
        using var socket = await TryConnect(greeting, token);
        if (socket is null)
        {
            return;
        }

        Count("slowloris.connected");
        var buffer = new byte[4096];
        while (!token.IsCancellationRequested)
        {
            if (!TrySend(socket, "G"u8))
            {
                break;
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(token);
            wait.CancelAfter(TimeSpan.FromSeconds(4));
            try
            {
                while (await socket.ReceiveAsync(buffer, SocketFlags.None, wait.Token) > 0)
                {
                }

                Count("slowloris.closed_by_server");
                return;
            }
            catch (OperationCanceledException)
            {
            }
            catch (SocketException)
            {
                Count("slowloris.reset_by_server");
                return;
            }
        }
    }));
}

// 3. Echo clients that never read, each trying to push 100 MB.
for (var w = 0; w < 20; w++)
{
    workers.Add(Loop(async token =>
    {
        var socket = await TryConnect(echo, token);
        if (socket is null)
        {
            return;
        }

        socket.Blocking = false;
        var chunk = new byte[64 * 1024];
        long pushed = 0;
        while (pushed < 100L * 1024 * 1024 && !token.IsCancellationRequested)
        {
            var sent = socket.Send(chunk, 0, chunk.Length, SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                await Task.Delay(50, CancellationToken.None);
                continue;
            }

            if (error != SocketError.Success)
            {
                Count("never_reader.cut_off_by_server");
                break;
            }

            pushed += sent;
        }

        Count("never_reader.bytes_pushed", pushed);
        socket.Dispose();
    }));
}

// 4. Huge lines, 5. binary junk, 6. resets mid-stream, 7. vanishing clients, 8. connect-and-close.
workers.Add(Loop(async token =>
{
    using var socket = await TryConnect(greeting, token);
    if (socket is null)
    {
        return;
    }

    var line = new byte[1024 * 1024];
    Array.Fill(line, (byte)'A');
    try
    {
        await socket.SendAsync(line, SocketFlags.None, token);
    }
    catch (SocketException)
    {
        // The server closed after ERR line too long while we were still sending: expected.
    }

    var reply = await ReadAll(socket, TimeSpan.FromSeconds(5));
    Count(reply.Contains("ERR line too long", StringComparison.Ordinal) ? "huge_line.refused" : "huge_line.other");
}));
workers.Add(Loop(async token =>
{
    using var socket = await TryConnect(greeting, token);
    if (socket is null)
    {
        return;
    }

    var junk = new byte[8 * 1024];
    Random.Shared.NextBytes(junk);
    await socket.SendAsync(junk, SocketFlags.None, token);
    socket.Shutdown(SocketShutdown.Send);
    var reply = await ReadAll(socket, TimeSpan.FromSeconds(5));
    Count("junk.sent");
    Count(reply.Contains("Hello, ", StringComparison.Ordinal) || reply.Contains("ERR", StringComparison.Ordinal) || reply.Contains("Goodbye", StringComparison.Ordinal) ? "junk.answered" : "junk.unanswered");
}));
for (var w = 0; w < 4; w++)
{
    var target = w % 2 == 0 ? echo : greeting;
    workers.Add(Loop(async token =>
    {
        var socket = await TryConnect(target, token);
        if (socket is null)
        {
            return;
        }

        var data = new byte[256 * 1024];
        Random.Shared.NextBytes(data);
        try
        {
            await socket.SendAsync(data.AsMemory(0, Random.Shared.Next(1, data.Length)), SocketFlags.None, token);
        }
        catch (SocketException)
        {
        }

        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
        Count("reset.mid_stream");
    }));
}

workers.Add(Loop(async token =>
{
    // A vanished client: half a line, then silence until the end (only the idle timeout can end it).
    var socket = await TryConnect(greeting, token);
    if (socket is null)
    {
        return;
    }

    TrySend(socket, "half a li"u8);
    held.Add(socket);
    Count("vanished");
    await Task.Delay(100, token);
}));
workers.Add(Loop(async token =>
{
    using var socket = await TryConnect(echo, token);
    Count(socket is null ? "probe.refused_connect" : "probe.connect_close");
    await Task.Delay(5, token);
}));

// The bystander: one ordinary Echo user, timing each 1 KiB round trip.
var bystanderErrors = 0;
var bystander = Task.Run(async () =>
{
    var payload = new byte[1024];
    var back = new byte[1024];
    while (!stop.IsCancellationRequested)
    {
        try
        {
            using var socket = new Socket(echo.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(echo);
            for (var i = 0; i < 200 && !stop.IsCancellationRequested; i++)
            {
                var watch = Stopwatch.StartNew();
                await socket.SendAsync(payload, SocketFlags.None);
                var got = 0;
                while (got < back.Length)
                {
                    var read = await socket.ReceiveAsync(back.AsMemory(got), SocketFlags.None);
                    if (read == 0)
                    {
                        throw new EndOfStreamException("bystander closed by server");
                    }

                    got += read;
                }

                latencies.Add(watch.Elapsed.TotalMilliseconds);
            }
        }
        catch (Exception ex) when (ex is SocketException or EndOfStreamException)
        {
            Interlocked.Increment(ref bystanderErrors);
            await Task.Delay(100);
        }
    }
});

var sampler = Task.Run(async () =>
{
    while (!stop.IsCancellationRequested)
    {
        rssPeak = Math.Max(rssPeak, Rss(options.Pid));
        await Task.Delay(250);
    }
});

await Task.WhenAll(workers.Append(bystander).Append(sampler));
foreach (var socket in held)
{
    socket.Dispose();
}

// Quiet again: every connection the load opened must leave the live count.
var settle = Stopwatch.StartNew();
var baseline = before.Sum("kestreltcp_connections_active");
double active;
do
{
    await Task.Delay(200);
    active = Metrics.Parse(await http.GetStringAsync("/metrics")).Sum("kestreltcp_connections_active");
}
while (active > baseline && settle.Elapsed < TimeSpan.FromSeconds(20));

var after = Metrics.Parse(await http.GetStringAsync("/metrics"));
var ready = (int)(await http.GetAsync("/health/ready")).StatusCode;
var live = (int)(await http.GetAsync("/health/live")).StatusCode;
var alive = options.Pid <= 0 || Directory.Exists($"/proc/{options.Pid}");

Console.WriteLine();
Console.WriteLine($"survived {options.Seconds} s of hostile load:");
Console.WriteLine($"  process alive            {(alive ? "yes" : "NO")}");
Console.WriteLine($"  /health/live, /ready     {live}, {ready}");
Console.WriteLine($"  active connections       {after.Sum("kestreltcp_connections_active")} (baseline {baseline}; back in {settle.Elapsed.TotalSeconds:0.0} s after the load stopped)");
Console.WriteLine($"  accepted                 {after.Sum("kestreltcp_connections_accepted_total") - before.Sum("kestreltcp_connections_accepted_total")}");
foreach (var reason in new[] { "max_connections", "max_connections_per_client", "shutting_down" })
{
    Console.WriteLine($"  rejected {reason,-27} {after.Sum("kestreltcp_connections_rejected_total", reason) - before.Sum("kestreltcp_connections_rejected_total", reason)}");
}

foreach (var reason in new[] { "client", "server", "idle_timeout", "line_too_long", "shutdown", "error" })
{
    Console.WriteLine($"  closed {reason,-29} {after.Sum("kestreltcp_connections_closed_total", reason) - before.Sum("kestreltcp_connections_closed_total", reason)}");
}

if (options.Pid > 0)
{
    Console.WriteLine($"  server RSS               {rssBefore / 1048576.0:0.0} MB before, {rssPeak / 1048576.0:0.0} MB peak, {Rss(options.Pid) / 1048576.0:0.0} MB after");
}

var sorted = latencies.Order().ToArray();
Console.WriteLine($"  bystander echo 1 KiB     {sorted.Length} round trips, {bystanderErrors} errors, p50 {Percentile(sorted, 0.5):0.0} ms, p99 {Percentile(sorted, 0.99):0.0} ms, max {(sorted.Length > 0 ? sorted[^1] : 0):0.0} ms");
Console.WriteLine("  load (client side):");
foreach (var (what, value) in counts.OrderBy(c => c.Key, StringComparer.Ordinal))
{
    Console.WriteLine($"    {what,-32} {value}");
}

var ok = alive && live == 200 && ready == 200 && after.Sum("kestreltcp_connections_active") <= baseline
    && after.Sum("kestreltcp_connections_closed_total", "error") == before.Sum("kestreltcp_connections_closed_total", "error");
Console.WriteLine(ok ? "RESULT: survived" : "RESULT: FAILED");
return ok ? 0 : 1;

Task Loop(Func<CancellationToken, Task> body) => Task.Run(async () =>
{
    while (!stop.IsCancellationRequested)
    {
        try
        {
            await body(stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            Count("client_side_socket_errors");
        }
    }
});

static async Task<Socket?> TryConnect(IPEndPoint endPoint, CancellationToken token)
{
    var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
    try
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        await socket.ConnectAsync(endPoint, timeout.Token);
        return socket;
    }
    catch (Exception ex) when (ex is SocketException or OperationCanceledException)
    {
        socket.Dispose();
        return null;
    }
}

static bool TrySend(Socket socket, ReadOnlySpan<byte> data)
{
    try
    {
        socket.Send(data);
        return true;
    }
    catch (SocketException)
    {
        return false;
    }
}

static async Task<bool> ReadsEofSoon(Socket socket, TimeSpan within)
{
    using var timeout = new CancellationTokenSource(within);
    try
    {
        return await socket.ReceiveAsync(new byte[64], SocketFlags.None, timeout.Token) == 0;
    }
    catch (OperationCanceledException)
    {
        return false;
    }
    catch (SocketException)
    {
        return true;
    }
}

static async Task<string> ReadAll(Socket socket, TimeSpan within)
{
    using var timeout = new CancellationTokenSource(within);
    var text = new StringBuilder();
    var buffer = new byte[16 * 1024];
    try
    {
        int read;
        while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
        {
            text.Append(Encoding.Latin1.GetString(buffer, 0, read));
        }
    }
    catch (Exception ex) when (ex is SocketException or OperationCanceledException)
    {
    }

    return text.ToString();
}

static long Rss(int pid)
{
    if (pid <= 0 || !File.Exists($"/proc/{pid}/status"))
    {
        return 0;
    }

    var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
    return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
}

static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];

internal sealed record Options(string Host, int Http, int Echo, int Greeting, int Pid, int Seconds)
{
    public static Options Parse(string[] args)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            map[args[i].TrimStart('-')] = args[i + 1];
        }

        int Int(string key, int fallback) => map.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        var seconds = Int("seconds", 30);
        return new Options(map.GetValueOrDefault("host", "127.0.0.1"), Int("http", 8080), Int("echo", 7007), Int("greeting", 7001), Int("pid", 0),
            Math.Clamp(seconds, 1, 600));
    }
}

internal sealed class Metrics(List<(string Name, string Labels, double Value)> samples)
{
    public static Metrics Parse(string text) => new([.. text.Split('\n')
        .Where(l => l.Length > 0 && l[0] != '#')
        .Select(l =>
        {
            var brace = l.IndexOf('{', StringComparison.Ordinal);
            var space = l.LastIndexOf(' ');
            var name = brace > 0 ? l[..brace] : l[..space];
            var labels = brace > 0 ? l[brace..(l.LastIndexOf('}') + 1)] : "";
            return (name, labels, double.Parse(l[(space + 1)..], CultureInfo.InvariantCulture));
        })]);

    public double Sum(string name, string? reason = null) => samples
        .Where(s => s.Name == name && (reason is null || s.Labels.Contains($"reason=\"{reason}\"", StringComparison.Ordinal)))
        .Sum(s => s.Value);
}

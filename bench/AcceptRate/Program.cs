using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

// Accept-rate load: each worker connects, sends the payload, half-closes, reads to EOF, closes;
// repeated until the count is reached. Prints connections per second.
// Usage: AcceptRate <port> <connections> <concurrency> <payload-text>
var port = int.Parse(args[0], CultureInfo.InvariantCulture);
var total = int.Parse(args[1], CultureInfo.InvariantCulture);
var concurrency = int.Parse(args[2], CultureInfo.InvariantCulture);
var payload = System.Text.Encoding.UTF8.GetBytes(args.Length > 3 ? args[3].Replace("\\n", "\n", StringComparison.Ordinal) : "x");
var endPoint = new IPEndPoint(IPAddress.Loopback, port);

await RunAsync(Math.Min(2000, total)); // warm-up: JIT, pools
var stopwatch = Stopwatch.StartNew();
var failures = await RunAsync(total);
stopwatch.Stop();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{total} connections in {stopwatch.Elapsed.TotalSeconds:0.000} s: {total / stopwatch.Elapsed.TotalSeconds:0} conn/s, {failures} failed"));
return failures == 0 ? 0 : 1;

async Task<int> RunAsync(int count)
{
    var remaining = count;
    var failed = 0;
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        var buffer = new byte[4096];
        while (Interlocked.Decrement(ref remaining) >= 0)
        {
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(endPoint);
                await socket.SendAsync(payload, SocketFlags.None);
                socket.Shutdown(SocketShutdown.Send);
                while (await socket.ReceiveAsync(buffer, SocketFlags.None) > 0)
                {
                }
            }
            catch (SocketException)
            {
                Interlocked.Increment(ref failed);
            }
        }
    })));
    return failed;
}

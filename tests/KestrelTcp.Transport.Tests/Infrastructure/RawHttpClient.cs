using System.Net.Sockets;
using System.Text;

namespace KestrelTcp.Transport.Tests.Infrastructure;

/// <summary>One HTTP/1.1 response as read off the wire.</summary>
public sealed record RawHttpResponse(int Status, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Text => Encoding.ASCII.GetString(Body);
}

/// <summary>
/// HTTP/1.1 over a raw socket, for what HttpClient will not do: pipelining, stopping halfway through
/// a response, resetting mid-request. Reads responses with a Content-Length, in order.
/// </summary>
public sealed class RawHttpClient(TestClient client)
{
    private readonly List<byte> _pending = [];

    public TestClient Client { get; } = client;

    public static string Get(string path) => $"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n";

    public async Task<RawHttpResponse> ReadResponseAsync()
    {
        using var cts = new CancellationTokenSource(Waits.Timeout);
        var headerEnd = await FillUntilAsync(() => IndexOf("\r\n\r\n"u8), cts.Token);
        var head = Encoding.ASCII.GetString(_pending.GetRange(0, headerEnd).ToArray());
        _pending.RemoveRange(0, headerEnd + 4);

        var lines = head.Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1]);
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            headers[line[..colon]] = line[(colon + 1)..].Trim();
        }

        var length = int.Parse(headers.GetValueOrDefault("Content-Length") ?? throw new InvalidOperationException($"no Content-Length in {head}"));
        await FillUntilAsync(() => _pending.Count >= length ? length : -1, cts.Token);
        var body = _pending.GetRange(0, length).ToArray();
        _pending.RemoveRange(0, length);
        return new RawHttpResponse(status, headers, body);
    }

    private int IndexOf(ReadOnlySpan<byte> value)
    {
        for (var i = 0; i + value.Length <= _pending.Count; i++)
        {
            var match = true;
            for (var j = 0; j < value.Length && match; j++)
            {
                match = _pending[i + j] == value[j];
            }

            if (match)
            {
                return i;
            }
        }

        return -1;
    }

    private async Task<int> FillUntilAsync(Func<int> found, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var at = found();
            if (at >= 0)
            {
                return at;
            }

            var read = await Client.Socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException("the server closed the connection mid-response");
            }

            _pending.AddRange(buffer.AsSpan(0, read));
        }
    }
}

using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>A real TCP client with deadlines on every read (never a fixed sleep).</summary>
public sealed class TcpTestClient : IAsyncDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
    private readonly List<byte> _pending = [];

    private TcpTestClient(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    public static async Task<TcpTestClient> ConnectAsync(EndPoint endPoint)
    {
        var socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await socket.ConnectAsync(endPoint, cts.Token);
        return new TcpTestClient(socket);
    }

    /// <summary>Connects a socket prepared by the caller (e.g. bound to a chosen source address).</summary>
    public static async Task<TcpTestClient> ConnectAsync(Socket socket, EndPoint endPoint)
    {
        using var cts = new CancellationTokenSource(DefaultTimeout);
        await socket.ConnectAsync(endPoint, cts.Token);
        return new TcpTestClient(socket);
    }

    public async Task SendAsync(byte[] data) => await Socket.SendAsync(data, SocketFlags.None);

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    /// <summary>Half-close: no more data from the client (FIN), reading still possible.</summary>
    public void ShutdownSend() => Socket.Shutdown(SocketShutdown.Send);

    /// <summary>Closes with a reset (RST) instead of FIN.</summary>
    public void Reset()
    {
        Socket.LingerState = new LingerOption(true, 0);
        Socket.Close();
    }

    /// <summary>Reads up to and including the next "\n"; returns it as text.</summary>
    public async Task<string> ReadLineAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        while (true)
        {
            var index = _pending.IndexOf((byte)'\n');
            if (index >= 0)
            {
                var line = _pending.GetRange(0, index + 1).ToArray();
                _pending.RemoveRange(0, index + 1);
                return Encoding.UTF8.GetString(line);
            }

            if (!await FillAsync(cts.Token))
            {
                var rest = Encoding.UTF8.GetString(_pending.ToArray());
                _pending.Clear();
                return rest;
            }
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes.</summary>
    public async Task<byte[]> ReadExactlyAsync(int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        while (_pending.Count < count)
        {
            if (!await FillAsync(cts.Token))
            {
                throw new EndOfStreamException($"EOF after {_pending.Count} of {count} bytes");
            }
        }

        var result = _pending.GetRange(0, count).ToArray();
        _pending.RemoveRange(0, count);
        return result;
    }

    /// <summary>Reads until the server closes; returns everything.</summary>
    public async Task<byte[]> ReadToEndAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        while (await FillAsync(cts.Token))
        {
        }

        var result = _pending.ToArray();
        _pending.Clear();
        return result;
    }

    public async Task<string> ReadToEndTextAsync(TimeSpan? timeout = null) => Encoding.UTF8.GetString(await ReadToEndAsync(timeout));

    /// <summary>True when the server closed gracefully (FIN: a read returns 0) rather than by reset.</summary>
    public async Task<bool> IsClosedGracefullyAsync(TimeSpan? timeout = null)
    {
        try
        {
            await ReadToEndAsync(timeout);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private async Task<bool> FillAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        var read = await Socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
        if (read == 0)
        {
            return false;
        }

        _pending.AddRange(buffer.AsSpan(0, read));
        return true;
    }

    public ValueTask DisposeAsync()
    {
        Socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

using System.Net;
using System.Net.Sockets;
using System.Text;

namespace KestrelTcp.Transport.Tests.Infrastructure;

/// <summary>How a client saw its connection end.</summary>
public enum ClientEnd
{
    /// <summary>A read returned 0: the server's FIN.</summary>
    Fin,

    /// <summary>A read failed with a reset.</summary>
    Reset,
}

/// <summary>A real loopback TCP client; every operation is bounded by <see cref="Waits.Timeout"/>.</summary>
public sealed class TestClient : IAsyncDisposable
{
    private long _sent;
    private long _received;

    private TestClient(Socket socket) => Socket = socket;

    public Socket Socket { get; }

    /// <summary>Bytes this client's sends have handed to its socket so far.</summary>
    public long Sent => Volatile.Read(ref _sent);

    /// <summary>Bytes received so far.</summary>
    public long Received => Volatile.Read(ref _received);

    /// <param name="configure">Runs before the connect: socket buffer sizes are set there to take effect on the connection's window.</param>
    public static async Task<TestClient> ConnectAsync(EndPoint endPoint, Action<Socket>? configure = null)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            configure?.Invoke(socket);
            using var cts = new CancellationTokenSource(Waits.Timeout);
            await socket.ConnectAsync(endPoint, cts.Token);
            return new TestClient(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public async Task SendAsync(ReadOnlyMemory<byte> data)
    {
        using var cts = new CancellationTokenSource(Waits.Timeout);
        while (!data.IsEmpty)
        {
            var sent = await Socket.SendAsync(data, SocketFlags.None, cts.Token);
            Interlocked.Add(ref _sent, sent);
            data = data[sent..];
        }
    }

    public Task SendAsync(string text) => SendAsync(Encoding.ASCII.GetBytes(text));

    /// <summary>
    /// Sends <paramref name="count"/> bytes of <see cref="Pattern"/> from <paramref name="position"/>, in
    /// pieces, with no deadline of its own (a send held by backpressure waits): cancel it or close
    /// the socket to end it. <see cref="Sent"/> shows how far it got.
    /// </summary>
    public async Task SendPatternAsync(long count, long position = 0, int piece = 64 * 1024, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[piece];
        var end = position + count;
        while (position < end)
        {
            var length = (int)Math.Min(piece, end - position);
            Pattern.Fill(buffer.AsSpan(0, length), position);
            var memory = buffer.AsMemory(0, length);
            while (!memory.IsEmpty)
            {
                var sent = await Socket.SendAsync(memory, SocketFlags.None, cancellationToken);
                Interlocked.Add(ref _sent, sent);
                memory = memory[sent..];
            }

            position += length;
        }
    }

    /// <summary>Half-close: the client's FIN; it can still read.</summary>
    public void ShutdownSend() => Socket.Shutdown(SocketShutdown.Send);

    /// <summary>Closes with a reset (RST) instead of a FIN.</summary>
    public void Reset()
    {
        Socket.LingerState = new LingerOption(true, 0);
        Socket.Close();
    }

    public async Task<byte[]> ReceiveExactlyAsync(int count)
    {
        var buffer = new byte[count];
        using var cts = new CancellationTokenSource(Waits.Timeout);
        var filled = 0;
        while (filled < count)
        {
            var read = await Socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, cts.Token);
            if (read == 0)
            {
                throw new EndOfStreamException($"the server ended the stream after {filled} of {count} bytes");
            }

            Interlocked.Add(ref _received, read);
            filled += read;
        }

        return buffer;
    }

    public async Task<string> ReceiveTextAsync(int count) => Encoding.ASCII.GetString(await ReceiveExactlyAsync(count));

    /// <summary>Reads until the server's FIN; a reset throws <see cref="SocketException"/>.</summary>
    public async Task<byte[]> ReadToEndAsync()
    {
        using var cts = new CancellationTokenSource(Waits.Timeout);
        using var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await Socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            if (read == 0)
            {
                return all.ToArray();
            }

            Interlocked.Add(ref _received, read);
            all.Write(buffer, 0, read);
        }
    }

    /// <summary>
    /// Reads <see cref="Pattern"/> bytes from <paramref name="position"/>, checking each, until
    /// <paramref name="count"/> have come (or, with null, until the server's FIN); returns how many came.
    /// </summary>
    public async Task<long> ReceivePatternAsync(long? count, long position = 0, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Waits.Timeout);
        var buffer = new byte[64 * 1024];
        var received = 0L;
        while (count is null || received < count)
        {
            var want = count is null ? buffer.Length : (int)Math.Min(buffer.Length, count.Value - received);
            var read = await Socket.ReceiveAsync(buffer.AsMemory(0, want), SocketFlags.None, cts.Token);
            if (read == 0)
            {
                if (count is null)
                {
                    break;
                }

                throw new EndOfStreamException($"the server ended the stream after {received} of {count} bytes");
            }

            Pattern.Verify(buffer.AsSpan(0, read), position + received);
            received += read;
            Interlocked.Add(ref _received, read);
        }

        return received;
    }

    /// <summary>Reads (and drops) whatever is still coming until the end, and says how it ended.</summary>
    public async Task<ClientEnd> ReadEndAsync()
    {
        using var cts = new CancellationTokenSource(Waits.Timeout);
        var buffer = new byte[64 * 1024];
        try
        {
            while (await Socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
            }

            return ClientEnd.Fin;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
        {
            return ClientEnd.Reset;
        }
    }

    public ValueTask DisposeAsync()
    {
        Socket.Dispose();
        return ValueTask.CompletedTask;
    }
}

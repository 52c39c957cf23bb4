using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using KestrelTcp.Transport.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace KestrelTcp.Transport.Tests;

/// <summary>
/// Kestrel's TLS (<c>UseHttps</c>: SslStream over the connection's pipes, with cancellable reads and
/// flushes and Complete at the end) in front of a raw echo handler, over KestrelTcp's transport and
/// over Kestrel's own as the reference.
/// </summary>
public class TlsOverTransportTests
{
    public static TheoryData<TransportKind> Kinds => [TransportKind.Kestrel, TransportKind.KestrelTcp, TransportKind.KestrelTcpThreadPool];

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Echo_SeveralMegabytesThroughTls_ByteExactThenTheEnd(TransportKind kind)
    {
        const int Total = 8 * 1024 * 1024;
        var handled = 0;
        await using var host = await StartAsync(kind, () => Interlocked.Increment(ref handled));
        await using var client = await TestClient.ConnectAsync(host.EndPoint);
        await using var tls = await AuthenticateAsync(client);

        var receiving = ReceivePatternAsync(tls);
        var buffer = new byte[64 * 1024];
        for (var position = 0; position < Total; position += buffer.Length)
        {
            Pattern.Fill(buffer, position);
            await tls.WriteAsync(buffer).AsTask().Within();
        }

        // The client's end: close_notify, then its FIN; the echo completes, and so does the server's TLS.
        await tls.ShutdownAsync().Within();
        client.ShutdownSend();
        Assert.Equal(Total, await receiving.Within());
        Assert.Equal(1, Volatile.Read(ref handled));
    }

    public static TheoryData<TransportKind, string> KindsAndHandshakeEnds
    {
        get
        {
            var data = new TheoryData<TransportKind, string>();
            foreach (var kind in new[] { TransportKind.Kestrel, TransportKind.KestrelTcp, TransportKind.KestrelTcpThreadPool })
            {
                data.Add(kind, "fin before hello");
                data.Add(kind, "fin mid hello");
                data.Add(kind, "reset mid hello");
            }

            return data;
        }
    }

    /// <summary>A client that leaves mid-handshake costs the server only that connection: the handler never runs for it, and the next client is served.</summary>
    [Theory]
    [MemberData(nameof(KindsAndHandshakeEnds))]
    public async Task Handshake_ClientLeavesMidway_ServerServesTheNextClient(TransportKind kind, string end)
    {
        var handled = 0;
        await using var host = await StartAsync(kind, () => Interlocked.Increment(ref handled));
        await using (var leaving = await TestClient.ConnectAsync(host.EndPoint))
        {
            if (end != "fin before hello")
            {
                // A handshake record header announcing 512 bytes, and only 40 of them.
                await leaving.SendAsync(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00 }.Concat(Pattern.Bytes(0, 40)).ToArray());
            }

            if (end == "reset mid hello")
            {
                leaving.Reset();
            }
            else
            {
                leaving.ShutdownSend();

                // The server gives up on the handshake and closes.
                await leaving.ReadEndAsync();
            }
        }

        await using var client = await TestClient.ConnectAsync(host.EndPoint);
        await using var tls = await AuthenticateAsync(client);
        await tls.WriteAsync(Encoding.ASCII.GetBytes("hello")).AsTask().Within();
        var reply = new byte[5];
        await tls.ReadExactlyAsync(reply).AsTask().Within();
        Assert.Equal("hello", Encoding.ASCII.GetString(reply));
        Assert.Equal(1, Volatile.Read(ref handled));
    }

    private static Task<TransportHost> StartAsync(TransportKind kind, Action onConnection) =>
        TransportHost.StartAsync(kind, async connection =>
        {
            onConnection();
            await EchoAsync(connection);
        }, new TransportHostSettings
        {
            ConfigureListen = listen =>
            {
                // Set, not left to Kestrel's default: it would advertise h2 over ALPN on a raw TCP port.
                listen.Protocols = HttpProtocols.Http1;
                listen.UseHttps(new HttpsConnectionAdapterOptions { ServerCertificate = TestCertificate.Server });
            },
        });

    private static async Task EchoAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        while (true)
        {
            var result = await input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                output.Write(segment.Span);
            }

            input.AdvanceTo(result.Buffer.End);
            var flush = await output.FlushAsync();
            if (result.IsCompleted || flush.IsCompleted)
            {
                return;
            }
        }
    }

    private static async Task<SslStream> AuthenticateAsync(TestClient client)
    {
        var tls = new SslStream(new NetworkStream(client.Socket, ownsSocket: false));
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = TestCertificate.Validate,
            }).Within();
            return tls;
        }
        catch
        {
            await tls.DisposeAsync();
            throw;
        }
    }

    /// <summary>Reads <see cref="Pattern"/> bytes through TLS until the server's end, checking each; returns how many came.</summary>
    private static async Task<long> ReceivePatternAsync(SslStream tls)
    {
        var buffer = new byte[64 * 1024];
        var received = 0L;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            int read;
            try
            {
                read = await tls.ReadAsync(buffer, cts.Token);
            }
            catch (IOException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
            {
                throw new InvalidOperationException($"reset after {received} bytes", ex);
            }

            if (read == 0)
            {
                return received;
            }

            Pattern.Verify(buffer.AsSpan(0, read), received);
            received += read;
        }
    }
}

using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading.Channels;
using KestrelTcp.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Tests.Tls;

/// <summary>
/// A real Kestrel on 127.0.0.1, port 0, with one endpoint: <c>UseKestrelTcpTls</c> in front of a raw
/// handler (echo unless the test gives its own). Counts handshake failures and handled connections,
/// each also as a stream of events a test can wait for.
/// </summary>
public sealed class TlsTestHost : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly WebApplication _app;
    private readonly Channel<int> _failures = Channel.CreateUnbounded<int>();
    private readonly Channel<int> _handledEvents = Channel.CreateUnbounded<int>();
    private int _handshakeFailures;
    private int _handled;

    private TlsTestHost(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public int HandshakeFailures => Volatile.Read(ref _handshakeFailures);

    public int Handled => Volatile.Read(ref _handled);

    internal static async Task<TlsTestHost> StartAsync(TlsListener tls, Func<ConnectionContext, Task>? handler = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        TlsTestHost? host = null;
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.UseKestrelTcpTls(tls, () => host!.OnHandshakeFailed());
            listen.Run(async connection =>
            {
                Interlocked.Increment(ref host!._handled);
                host._handledEvents.Writer.TryWrite(0);
                await (handler ?? EchoAsync)(connection);
            });
        }));
        var app = builder.Build();
        host = new TlsTestHost(app);
        await app.StartAsync();
        host.Port = PortOf(app);
        return host;
    }

    /// <summary>The management port's shape: HTTP (h1 and h2) behind <c>UseKestrelTcpHttpsTls</c>, answering <c>GET /</c>.</summary>
    internal static async Task<TlsTestHost> StartHttpAsync(TlsListener tls)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = HttpProtocols.Http1AndHttp2;
            listen.UseKestrelTcpHttpsTls(tls);
        }));
        var app = builder.Build();
        app.MapGet("/", () => "ok");
        var host = new TlsTestHost(app);
        await app.StartAsync();
        host.Port = PortOf(app);
        return host;
    }

    private static int PortOf(WebApplication app)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new Uri(address).Port;
    }

    /// <summary>Completes when at least <paramref name="count"/> handshakes have failed; fails after <see cref="Timeout"/>.</summary>
    public async Task WaitForHandshakeFailuresAsync(int count)
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (HandshakeFailures < count)
        {
            await _failures.Reader.ReadAsync(cts.Token);
        }
    }

    /// <summary>Completes when at least <paramref name="count"/> connections have reached the handler; fails after <see cref="Timeout"/>.</summary>
    public async Task WaitForHandledAsync(int count)
    {
        using var cts = new CancellationTokenSource(Timeout);
        while (Handled < count)
        {
            await _handledEvents.Reader.ReadAsync(cts.Token);
        }
    }

    public static async Task EchoAsync(ConnectionContext connection) =>
        await connection.Transport.Input.CopyToAsync(connection.Transport.Output);

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }

    private void OnHandshakeFailed()
    {
        Interlocked.Increment(ref _handshakeFailures);
        _failures.Writer.TryWrite(0);
    }
}

/// <summary>A TLS client over a real socket: what the handshake gave, and a way to talk.</summary>
public sealed class TlsTestClient : IAsyncDisposable
{
    private TlsTestClient(TcpClient tcp, SslStream ssl, X509Certificate2? serverCertificate)
    {
        Tcp = tcp;
        Ssl = ssl;
        ServerCertificate = serverCertificate;
    }

    public TcpClient Tcp { get; }

    public SslStream Ssl { get; }

    public X509Certificate2? ServerCertificate { get; }

    /// <summary>
    /// Connects and handshakes. <paramref name="serverName"/> is sent as SNI (empty: none). The server's
    /// certificate is accepted when the test intermediate issued it, whatever its name, and kept for the test to look at, unless
    /// <paramref name="configure"/> sets a validation of its own. No TLS resumption, so that every
    /// connection sees the certificate the server has now.
    /// </summary>
    public static async Task<TlsTestClient> ConnectAsync(int port, string serverName = "", Action<SslClientAuthenticationOptions>? configure = null)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TlsTestHost.Timeout);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        X509Certificate2? seen = null;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            AllowTlsResume = false,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                seen = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return certificate?.Issuer == TestPki.Intermediate.Subject;
            },
        };
        configure?.Invoke(options);
        try
        {
            using var cts = new CancellationTokenSource(TlsTestHost.Timeout);
            await ssl.AuthenticateAsClientAsync(options, cts.Token);
        }
        catch
        {
            await ssl.DisposeAsync();
            tcp.Dispose();
            throw;
        }

        return new TlsTestClient(tcp, ssl, seen);
    }

    /// <summary>Sends a line and reads the echo of it: proves the connection works end to end.</summary>
    public async Task<string> EchoAsync(string text)
    {
        using var cts = new CancellationTokenSource(TlsTestHost.Timeout);
        var bytes = Encoding.UTF8.GetBytes(text);
        await Ssl.WriteAsync(bytes, cts.Token);
        await Ssl.FlushAsync(cts.Token);
        return await ReadAsync(bytes.Length);
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes (fewer if the server ends the stream).</summary>
    public async Task<string> ReadAsync(int count)
    {
        using var cts = new CancellationTokenSource(TlsTestHost.Timeout);
        var buffer = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = await Ssl.ReadAsync(buffer.AsMemory(read), cts.Token);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return Encoding.UTF8.GetString(buffer, 0, read);
    }

    /// <summary>Reads a line (up to and including LF).</summary>
    public async Task<string> ReadLineAsync()
    {
        using var cts = new CancellationTokenSource(TlsTestHost.Timeout);
        var line = new List<byte>();
        var one = new byte[1];
        while (await Ssl.ReadAsync(one, cts.Token) == 1)
        {
            line.Add(one[0]);
            if (one[0] == '\n')
            {
                break;
            }
        }

        return Encoding.UTF8.GetString([.. line]);
    }

    public async ValueTask DisposeAsync()
    {
        await Ssl.DisposeAsync();
        Tcp.Dispose();
    }
}

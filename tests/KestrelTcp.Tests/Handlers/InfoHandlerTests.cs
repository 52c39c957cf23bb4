using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using KestrelTcp.Handlers;
using KestrelTcp.ProxyProtocol;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Tests.Tls;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace KestrelTcp.Tests.Handlers;

public class InfoHandlerTests
{
    private static readonly string MachineName = JsonEncodedText.Encode(Environment.MachineName, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).ToString();

    // The start of every object: the PipeConnection's id and the TestClock's moment.
    private static readonly string Head =
        $"{{\"listener\":\"info\",\"handler\":\"Info\",\"connectionId\":\"test-1\",\"machineName\":\"{MachineName}\",\"time\":\"2014-01-29T19:14:15.123Z\"";

    private static async Task<string> RunAsync(PipeConnection connection)
    {
        var run = connection.RunAsync(new InfoHandler(ServiceListeners.Info(), new TestClock()));
        var text = Encoding.UTF8.GetString(await connection.ReadAllAsync());
        await run;
        Assert.EndsWith("}\n", text);
        using var document = JsonDocument.Parse(text); // valid JSON, one object
        Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
        return text;
    }

    [Fact]
    public async Task OnConnectedAsync_PlainConnection_TheObjectThenNewlineThenClosed()
    {
        var connection = new PipeConnection();
        Assert.Equal(
            Head + ",\"client\":{\"address\":\"192.0.2.10\",\"port\":50123},\"server\":{\"address\":\"192.0.2.1\",\"port\":7001},"
            + "\"peer\":{\"address\":\"192.0.2.10\",\"port\":50123},\"proxy\":null,\"tls\":null}\n",
            await RunAsync(connection));
    }

    [Fact]
    public async Task OnConnectedAsync_IPv4MappedAndIPv6_MappedShownAsIPv4()
    {
        var connection = new PipeConnection();
        connection.Context.RemoteEndPoint = new IPEndPoint(IPAddress.Parse("::ffff:198.51.100.4"), 40001);
        connection.Context.LocalEndPoint = new IPEndPoint(IPAddress.Parse("2001:db8::1"), 7070);
        Assert.Equal(
            Head + ",\"client\":{\"address\":\"198.51.100.4\",\"port\":40001},\"server\":{\"address\":\"2001:db8::1\",\"port\":7070},"
            + "\"peer\":{\"address\":\"198.51.100.4\",\"port\":40001},\"proxy\":null,\"tls\":null}\n",
            await RunAsync(connection));
    }

    [Fact]
    public async Task OnConnectedAsync_ProxyV2WithTlvs_ClientIsTheSourcePeerIsTheProxy()
    {
        var connection = new PipeConnection();
        var header = new ProxyHeader
        {
            Version = 2,
            Source = new IPEndPoint(IPAddress.Parse("203.0.113.7"), 51234),
            Destination = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 7070),
            ApplicationProtocol = "h2",
            Authority = "a.example.com",
            UniqueId = [0x0A, 0xFF, 0x00, 0x42],
            Ssl = new ProxySslInfo { Client = 0x07, Verified = true, Version = "TLSv1.3", CommonName = "client-alice", Cipher = "TLS_AES_128_GCM_SHA256" },
        };
        // As the PROXY middleware leaves it: the header's addresses on the connection, the socket's in the feature.
        connection.Context.RemoteEndPoint = header.Source;
        connection.Context.LocalEndPoint = header.Destination;
        connection.Context.Features.Set<IProxyProtocolFeature>(new ProxyProtocolFeature(
            header, new IPEndPoint(IPAddress.Parse("::ffff:10.0.0.5"), 40000), new IPEndPoint(IPAddress.Parse("10.0.0.9"), 7070)));

        Assert.Equal(
            Head + ",\"client\":{\"address\":\"203.0.113.7\",\"port\":51234},\"server\":{\"address\":\"192.0.2.1\",\"port\":7070},"
            + "\"peer\":{\"address\":\"10.0.0.5\",\"port\":40000},"
            + "\"proxy\":{\"version\":2,\"command\":\"PROXY\",\"source\":{\"address\":\"203.0.113.7\",\"port\":51234},\"destination\":{\"address\":\"192.0.2.1\",\"port\":7070},"
            + "\"tlvs\":{\"alpn\":\"h2\",\"authority\":\"a.example.com\",\"uniqueId\":\"0aff0042\","
            + "\"ssl\":{\"client\":7,\"verified\":true,\"version\":\"TLSv1.3\",\"commonName\":\"client-alice\",\"cipher\":\"TLS_AES_128_GCM_SHA256\"}}},"
            + "\"tls\":null}\n",
            await RunAsync(connection));
    }

    [Fact]
    public async Task OnConnectedAsync_ProxyV2Local_SocketsAddressesNoSourceNoTlvs()
    {
        var connection = new PipeConnection();
        connection.Context.Features.Set<IProxyProtocolFeature>(new ProxyProtocolFeature(
            new ProxyHeader { Version = 2, IsLocal = true }, connection.Context.RemoteEndPoint, connection.Context.LocalEndPoint));
        Assert.Equal(
            Head + ",\"client\":{\"address\":\"192.0.2.10\",\"port\":50123},\"server\":{\"address\":\"192.0.2.1\",\"port\":7001},"
            + "\"peer\":{\"address\":\"192.0.2.10\",\"port\":50123},"
            + "\"proxy\":{\"version\":2,\"command\":\"LOCAL\",\"source\":null,\"destination\":null,\"tlvs\":{}},\"tls\":null}\n",
            await RunAsync(connection));
    }

    [Fact]
    public async Task OnConnectedAsync_ProxyTlvText_EscapedAsJsonRequires()
    {
        var connection = new PipeConnection();
        connection.Context.Features.Set<IProxyProtocolFeature>(new ProxyProtocolFeature(
            new ProxyHeader { Version = 2, IsLocal = true, Authority = "evil\"\r\n\\name", NetworkNamespace = "blue" }, null, null));
        var text = await RunAsync(connection);
        Assert.Contains("\"tlvs\":{\"authority\":\"evil\\\"\\r\\n\\\\name\",\"netns\":\"blue\"}", text);
        Assert.Contains("\"peer\":null", text);
    }

    [Fact]
    public async Task OnConnectedAsync_Tls_ProtocolCipherNameAlpnAndClientCertificate()
    {
        var connection = new PipeConnection();
        var alice = TestPki.Alice.Certificate;
        var tls = new FakeTls(SslProtocols.Tls13, TlsCipherSuite.TLS_AES_256_GCM_SHA384, "a.example.com", alice, "kestreltcp"u8.ToArray());
        connection.Context.Features.Set<ITlsHandshakeFeature>(tls);
        connection.Context.Features.Set<ITlsConnectionFeature>(tls);
        connection.Context.Features.Set<ITlsApplicationProtocolFeature>(tls);

        var notAfter = alice.NotAfter.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
        Assert.Equal(
            Head + ",\"client\":{\"address\":\"192.0.2.10\",\"port\":50123},\"server\":{\"address\":\"192.0.2.1\",\"port\":7001},"
            + "\"peer\":{\"address\":\"192.0.2.10\",\"port\":50123},\"proxy\":null,"
            + "\"tls\":{\"protocol\":\"Tls13\",\"cipherSuite\":\"TLS_AES_256_GCM_SHA384\",\"serverName\":\"a.example.com\",\"applicationProtocol\":\"kestreltcp\","
            + $"\"clientCertificate\":{{\"subject\":\"CN=client-alice, O=KestrelTcp Tests\",\"issuer\":\"{TestPki.Ca.Subject}\",\"thumbprint\":\"{alice.Thumbprint}\",\"notAfter\":\"{notAfter}\"}}}}}}\n",
            await RunAsync(connection));
    }

    [Fact]
    public async Task OnConnectedAsync_TlsWithoutNameAlpnOrCertificate_Nulls()
    {
        var connection = new PipeConnection();
        var tls = new FakeTls(SslProtocols.Tls12, null, "", null, default);
        connection.Context.Features.Set<ITlsHandshakeFeature>(tls);
        connection.Context.Features.Set<ITlsConnectionFeature>(tls);
        Assert.EndsWith(
            ",\"tls\":{\"protocol\":\"Tls12\",\"cipherSuite\":null,\"serverName\":null,\"applicationProtocol\":null,\"clientCertificate\":null}}\n",
            await RunAsync(connection));
    }

    [Fact]
    public async Task OnConnectedAsync_UnixSocket_PathOrNull()
    {
        var connection = new PipeConnection();
        connection.Context.RemoteEndPoint = null;
        connection.Context.LocalEndPoint = new UnixDomainSocketEndPoint("/run/kestreltcp/info.sock");
        Assert.Equal(
            Head + ",\"client\":null,\"server\":{\"path\":\"/run/kestreltcp/info.sock\"},\"peer\":null,\"proxy\":null,\"tls\":null}\n",
            await RunAsync(connection));
    }

    [Fact]
    public async Task OnConnectedAsync_ManyConnectionsOnOneThread_EachItsOwnObject()
    {
        // The thread's cached writer is handed each connection's output in turn.
        var handler = new InfoHandler(ServiceListeners.Info("again"), new TestClock());
        for (var i = 0; i < 3; i++)
        {
            var connection = new PipeConnection();
            connection.Context.RemoteEndPoint = new IPEndPoint(IPAddress.Loopback, 1000 + i);
            var run = connection.RunAsync(handler);
            using var document = JsonDocument.Parse(await connection.ReadAllAsync());
            await run;
            Assert.Equal("again", document.RootElement.GetProperty("listener").GetString());
            Assert.Equal(1000 + i, document.RootElement.GetProperty("client").GetProperty("port").GetInt32());
        }
    }

    private sealed class FakeTls(SslProtocols protocol, TlsCipherSuite? cipherSuite, string hostName, X509Certificate2? clientCertificate, ReadOnlyMemory<byte> alpn)
        : ITlsHandshakeFeature, ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public SslProtocols Protocol => protocol;

        public TlsCipherSuite? NegotiatedCipherSuite => cipherSuite;

        public string HostName => hostName;

#pragma warning disable SYSLIB0058 // Required members of the interface, obsolete in .NET 10.
        public CipherAlgorithmType CipherAlgorithm => CipherAlgorithmType.None;

        public int CipherStrength => 0;

        public HashAlgorithmType HashAlgorithm => HashAlgorithmType.None;

        public int HashStrength => 0;

        public ExchangeAlgorithmType KeyExchangeAlgorithm => ExchangeAlgorithmType.None;

        public int KeyExchangeStrength => 0;
#pragma warning restore SYSLIB0058

        public X509Certificate2? ClientCertificate { get; set; } = clientCertificate;

        public ReadOnlyMemory<byte> ApplicationProtocol => alpn;

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult(ClientCertificate);
    }
}

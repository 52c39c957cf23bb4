using System.IO.Pipelines;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Tests.Tls;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace KestrelTcp.Tests.Handlers;

public class MessageTemplateTests
{
    private static MessageTemplate Parse(string text)
    {
        var problems = new List<string>();
        var template = MessageTemplate.Parse(text, allowLine: false, "test", problems);
        Assert.Empty(problems);
        return template;
    }

    private static string Render(MessageTemplate template, PipeConnection connection)
    {
        var output = new FixedBufferWriter(4096);
        template.Write(output, connection.Context, "echo-tls", TimeProvider.System);
        return Encoding.UTF8.GetString(output.Written);
    }

    [Fact]
    public void ConnectionPlaceholders_IncludeTheTlsOnes()
    {
        Assert.Equal(
            ["Listener", "ConnectionId", "RemoteAddress", "RemotePort", "LocalAddress", "LocalPort", "MachineName", "Time", "TlsProtocol", "ServerName", "ClientCertificate"],
            MessageTemplate.ConnectionPlaceholders);
    }

    [Fact]
    public void Write_TlsPlaceholdersWithoutTls_Empty()
    {
        Assert.Equal("[||]", Render(Parse("[{TlsProtocol}|{ServerName}|{ClientCertificate}]"), new PipeConnection()));
    }

    [Fact]
    public void Write_TlsPlaceholders_FromTheFeatures()
    {
        var connection = new PipeConnection();
        using var alice = X509CertificateLoader.LoadCertificate(TestPki.Alice.Certificate.RawData);
        var tls = new FakeTls(SslProtocols.Tls13, "a.example.com", alice);
        connection.Context.Features.Set<ITlsHandshakeFeature>(tls);
        connection.Context.Features.Set<ITlsConnectionFeature>(tls);
        Assert.Equal("Tls13|a.example.com|CN=client-alice, O=KestrelTcp Tests", Render(Parse("{TlsProtocol}|{ServerName}|{ClientCertificate}"), connection));
    }

    [Fact]
    public void Write_Tls12NoSniNoClientCertificate_ProtocolOnly()
    {
        var connection = new PipeConnection();
        var tls = new FakeTls(SslProtocols.Tls12, "", null);
        connection.Context.Features.Set<ITlsHandshakeFeature>(tls);
        connection.Context.Features.Set<ITlsConnectionFeature>(tls);
        Assert.Equal("Tls12||", Render(Parse("{TlsProtocol}|{ServerName}|{ClientCertificate}"), connection));
    }

    [Fact]
    public void Write_ServerNameWithControlCharacters_Replaced()
    {
        // The client chooses the name it sends: it must not be able to write raw control characters.
        var connection = new PipeConnection();
        connection.Context.Features.Set<ITlsHandshakeFeature>(new FakeTls(SslProtocols.Tls13, "evil\r\n\u001b[2Jname\tok", null));
        Assert.Equal("evil\uFFFD\uFFFD\uFFFD[2Jname\tok", Render(Parse("{ServerName}"), connection));
    }

    [Fact]
    public void Write_TlsPlaceholdersWithoutTls_AllocatesNothing()
    {
        var template = Parse("<{TlsProtocol}{ServerName}{ClientCertificate}>");
        var connection = new PipeConnection();
        var output = new FixedBufferWriter(64);
        template.Write(output, connection.Context, "echo-tls", TimeProvider.System);
        output.Reset();

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            template.Write(output, connection.Context, "echo-tls", TimeProvider.System);
            output.Reset();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Parse_UnknownPlaceholder_ListsTheTlsOnes()
    {
        var problems = new List<string>();
        MessageTemplate.Parse("{Tls}", allowLine: false, "test", problems);
        Assert.Equal(
            ["test: unknown placeholder {Tls} (known: {Listener} {ConnectionId} {RemoteAddress} {RemotePort} {LocalAddress} {LocalPort} {MachineName} {Time} {TlsProtocol} {ServerName} {ClientCertificate})"],
            problems);
    }

    /// <summary>Kestrel's TLS features as a handler sees them after a handshake.</summary>
    private sealed class FakeTls(SslProtocols protocol, string hostName, X509Certificate2? clientCertificate) : ITlsHandshakeFeature, ITlsConnectionFeature
    {
        public SslProtocols Protocol => protocol;

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

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult(ClientCertificate);
    }

    /// <summary>A <see cref="PipeWriter"/> over one array: writing to it allocates nothing, so a test can measure what the writer's caller allocates.</summary>
    private sealed class FixedBufferWriter(int size) : PipeWriter
    {
        private readonly byte[] _buffer = new byte[size];
        private int _written;

        public byte[] Written => _buffer[.._written];

        public void Reset() => _written = 0;

        public override void Advance(int bytes) => _written += bytes;

        public override Memory<byte> GetMemory(int sizeHint = 0) => _buffer.AsMemory(_written);

        public override Span<byte> GetSpan(int sizeHint = 0) => _buffer.AsSpan(_written);

        public override void CancelPendingFlush()
        {
        }

        public override void Complete(Exception? exception = null)
        {
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(new FlushResult(false, false));
    }
}

using System.Buffers;
using System.Net;
using KestrelTcp.Configuration;
using KestrelTcp.ProxyProtocol;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using static KestrelTcp.Tests.ProxyProtocol.ProxyHeaderBytes;

namespace KestrelTcp.Tests.ProxyProtocol;

/// <summary>The PROXY protocol middleware alone, over in-memory pipes; the test's connection comes from 192.0.2.10:50123 to 192.0.2.1:7001.</summary>
public class ProxyProtocolMiddlewareTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static readonly EndPoint ProxyPeer = new IPEndPoint(IPAddress.Parse("192.0.2.10"), 50123);
    private static readonly EndPoint SocketLocal = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 7001);

    private static readonly byte[] V2Header = V2(Proxy, TcpIPv4, IPv4Addresses("198.51.100.7", 40000, "203.0.113.1", 443), Tlv(0x01, "h2"));

    /// <summary>The middleware in front of a handler that notes what it saw and reads the payload it expects.</summary>
    private sealed class Harness
    {
        private readonly TaskCompletionSource<string> _payload = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Harness(ProxyProtocolMode mode = ProxyProtocolMode.V2, string trusted = "192.0.2.0/24", int payloadLength = 5)
        {
            Options = new ProxyProtocolOptions
            {
                Mode = mode,
                TrustedProxies = new NetworkList([NetworkList.TryParse(trusted, out var network) ? network : throw new ArgumentException(trusted)]),
            };
            var builder = new ConnectionBuilder(new ServiceCollection().BuildServiceProvider());
            builder.UseProxyProtocol(Options, Clock, Logs.CreateLogger("KestrelTcp.ProxyProtocol"), () => Interlocked.Increment(ref _refused));
            builder.Run(async connection =>
            {
                Seen = (connection.RemoteEndPoint, connection.LocalEndPoint, connection.Features.Get<IProxyProtocolFeature>());
                _entered.TrySetResult();
                var text = new List<byte>();
                while (text.Count < payloadLength)
                {
                    var result = await connection.Transport.Input.ReadAsync();
                    foreach (var segment in result.Buffer)
                    {
                        text.AddRange(segment.Span.ToArray());
                    }

                    connection.Transport.Input.AdvanceTo(result.Buffer.End);
                    if (result.IsCompleted)
                    {
                        break;
                    }
                }

                _payload.TrySetResult(System.Text.Encoding.ASCII.GetString([.. text]));
            });
            Pipeline = builder.Build();
        }

        private int _refused;

        public ProxyProtocolOptions Options { get; }

        public FakeTimeProvider Clock { get; } = new();

        public LogCapture Logs { get; } = new();

        public PipeConnection Connection { get; } = new();

        public ConnectionDelegate Pipeline { get; }

        public int Refused => Volatile.Read(ref _refused);

        public (EndPoint? Remote, EndPoint? Local, IProxyProtocolFeature? Feature)? Seen { get; private set; }

        public Task<string> Payload => _payload.Task.WaitAsync(Wait);

        /// <summary>Completes when the header was accepted and the next middleware runs.</summary>
        public Task Entered => _entered.Task.WaitAsync(Wait);

        public bool NextRan => Seen is not null;

        public Task RunAsync() => Pipeline(Connection.Context);

        public string? RefusalReason => Logs.Events.SingleOrDefault(e => e.Level == LogLevel.Debug && e.EventId.Id is >= 100 and <= 105) is { } e
            ? $"{e.EventId.Id} {e.EventId.Name}: {e.Message}"
            : null;
    }

    [Fact]
    public async Task OnConnectionAsync_V2Header_RewritesEndpointsSetsFeatureAndLeavesPayload()
    {
        var harness = new Harness();
        await harness.Connection.SendAsync([.. V2Header, .. Ascii("hello")]);

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal("hello", await harness.Payload);
        var (remote, local, feature) = harness.Seen!.Value;
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 40000), remote);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("203.0.113.1"), 443), local);
        Assert.NotNull(feature);
        Assert.Equal((ProxyPeer, SocketLocal), (feature.Peer, feature.PeerLocal));
        Assert.Equal((2, false, "h2"), (feature.Header.Version, feature.Header.IsLocal, feature.Header.ApplicationProtocol));
        Assert.Equal((remote, local), ((EndPoint?)feature.Header.Source, (EndPoint?)feature.Header.Destination));
        Assert.Equal(0, harness.Refused);
        var accepted = Assert.Single(harness.Logs.Named("ProxyHeaderAccepted"));
        Assert.Equal((106, LogLevel.Debug, "PROXY protocol v2 header from 192.0.2.10:50123: client 198.51.100.7:40000, server 203.0.113.1:443"),
            (accepted.EventId.Id, accepted.Level, accepted.Message));
    }

    [Fact]
    public async Task OnConnectionAsync_HeaderAndPayloadByteByByte_Accepted()
    {
        var harness = new Harness();
        var running = harness.RunAsync();
        foreach (var b in (byte[])[.. V2Header, .. Ascii("hello")])
        {
            await harness.Connection.SendAsync([b]);
        }

        Assert.Equal("hello", await harness.Payload);
        await running.WaitAsync(Wait);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 40000), harness.Seen!.Value.Remote);
        Assert.Equal(0, harness.Refused);
    }

    [Fact]
    public async Task OnConnectionAsync_V1HeaderOnAnyListener_Accepted()
    {
        var harness = new Harness(ProxyProtocolMode.Any);
        await harness.Connection.SendAsync("PROXY TCP6 2001:db8::7 2001:db8::1 40000 7007\r\nhello");

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal("hello", await harness.Payload);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::7"), 40000), harness.Seen!.Value.Remote);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::1"), 7007), harness.Seen.Value.Local);
        Assert.Equal(1, harness.Seen.Value.Feature!.Header.Version);
    }

    [Fact]
    public async Task OnConnectionAsync_PayloadAlreadyBuffered_NextReadsItWithoutMoreData()
    {
        // The header's end is what was examined: the next reader sees the rest at once, not after more arrives.
        var harness = new Harness(payloadLength: 3);
        await harness.Connection.SendAsync([.. V2Header, .. Ascii("abc")]);

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal("abc", await harness.Payload);
    }

    [Theory]
    [InlineData(ProxyProtocolMode.V2, new byte[] { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00 })]
    [InlineData(ProxyProtocolMode.V1, new byte[] { (byte)'P', (byte)'R', (byte)'O', (byte)'X', (byte)'Y', (byte)' ', (byte)'U', (byte)'N', (byte)'K', (byte)'N', (byte)'O', (byte)'W', (byte)'N', (byte)'\r', (byte)'\n' })]
    public async Task OnConnectionAsync_LocalHeader_KeepsTheSocketEndpoints(ProxyProtocolMode mode, byte[] header)
    {
        var harness = new Harness(mode);
        await harness.Connection.SendAsync([.. header, .. Ascii("hello")]);

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal("hello", await harness.Payload);
        var (remote, local, feature) = harness.Seen!.Value;
        Assert.Equal((ProxyPeer, SocketLocal), (remote, local));
        Assert.Equal((true, (EndPoint?)null, ProxyPeer, SocketLocal), (feature!.Header.IsLocal, (EndPoint?)feature.Header.Source, feature.Peer, feature.PeerLocal));
        Assert.Single(harness.Logs.Named("ProxyHeaderLocal"));
    }

    [Fact]
    public async Task OnConnectionAsync_IPv4MappedTrustedPeer_Accepted()
    {
        var harness = new Harness();
        harness.Connection.Context.RemoteEndPoint = new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.10"), 50123);
        await harness.Connection.SendAsync([.. V2Header, .. Ascii("hello")]);

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal("hello", await harness.Payload);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.10"), 50123), harness.Seen!.Value.Feature!.Peer);
    }

    [Fact]
    public async Task OnConnectionAsync_UntrustedPeer_RefusedOnArrivalWithoutReading()
    {
        var harness = new Harness(trusted: "10.0.0.0/8");

        // Nothing sent yet: the refusal does not wait for a byte.
        var running = harness.RunAsync();

        Assert.True(running.IsCompletedSuccessfully);
        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        Assert.Equal("100 ProxyPeerUntrusted: Refused a connection from 192.0.2.10:50123: not one of ProxyProtocol:TrustedProxies", harness.RefusalReason);
        await harness.Connection.SendAsync(V2Header);
        Assert.True(harness.Connection.Context.Transport.Input.TryRead(out var unread));
        Assert.Equal(V2Header, unread.Buffer.ToArray());
    }

    [Fact]
    public async Task OnConnectionAsync_NoIPPeer_Refused()
    {
        var harness = new Harness();
        harness.Connection.Context.RemoteEndPoint = new System.Net.Sockets.UnixDomainSocketEndPoint("/run/kestreltcp.sock");

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
    }

    [Fact]
    public async Task OnConnectionAsync_MalformedHeader_RefusedAsSoonAsItShows()
    {
        var harness = new Harness();
        var running = harness.RunAsync();

        // One byte proves it: no more is waited for, and the pipe stays open.
        await harness.Connection.SendAsync("G");
        await running.WaitAsync(Wait);

        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        Assert.Equal("101 ProxyHeaderRefused: Refused a connection from 192.0.2.10:50123: malformed PROXY protocol header (v2: not the PROXY protocol v2 signature)", harness.RefusalReason);
    }

    [Fact]
    public async Task OnConnectionAsync_V2HeaderOnV1Listener_Refused()
    {
        var harness = new Harness(ProxyProtocolMode.V1);
        await harness.Connection.SendAsync([.. V2Header, .. Ascii("hello")]);

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        Assert.Equal("101 ProxyHeaderRefused: Refused a connection from 192.0.2.10:50123: malformed PROXY protocol header (a PROXY protocol v2 header where v1 is required)", harness.RefusalReason);
    }

    [Fact]
    public async Task OnConnectionAsync_EndsBeforeTheHeaderIsComplete_Refused()
    {
        var harness = new Harness();
        await harness.Connection.SendAsync(V2Header[..20]);
        harness.Connection.CompleteSending();

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        Assert.Equal("102 ProxyHeaderIncomplete: Refused a connection from 192.0.2.10:50123: it ended after 20 byte(s), before the PROXY protocol header was complete", harness.RefusalReason);
    }

    [Fact]
    public async Task OnConnectionAsync_EndsBeforeAnyByte_Refused()
    {
        var harness = new Harness();
        harness.Connection.CompleteSending();

        await harness.RunAsync().WaitAsync(Wait);

        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        Assert.Equal("102 ProxyHeaderIncomplete: Refused a connection from 192.0.2.10:50123: it ended after 0 byte(s), before the PROXY protocol header was complete", harness.RefusalReason);
    }

    [Fact]
    public async Task OnConnectionAsync_HeaderCompleteJustBeforeTheTimeout_Accepted()
    {
        var harness = new Harness();
        var running = harness.RunAsync();
        await harness.Connection.SendAsync(V2Header[..10]);

        harness.Clock.Advance(TimeSpan.FromSeconds(3) - TimeSpan.FromTicks(1));
        await harness.Connection.SendAsync([.. V2Header[10..], .. Ascii("hello")]);

        Assert.Equal("hello", await harness.Payload);
        await running.WaitAsync(Wait);
        Assert.Equal(0, harness.Refused);
    }

    [Fact]
    public async Task OnConnectionAsync_HeaderNotCompleteWithinTheTimeout_Refused()
    {
        var harness = new Harness();
        var running = harness.RunAsync();
        await harness.Connection.SendAsync(V2Header[..10]);

        harness.Clock.Advance(TimeSpan.FromSeconds(3));
        await running.WaitAsync(Wait);

        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        // How many of the ten bytes the middleware had read when the clock moved is a race of this test's making.
        Assert.StartsWith("103 ProxyHeaderTimedOut: Refused a connection from 192.0.2.10:50123: no complete PROXY protocol header within 00:00:03 (", harness.RefusalReason);
    }

    [Fact]
    public async Task OnConnectionAsync_TimeoutCountsTheWholeHeader_NotEachRead()
    {
        // A proxy that dribbles the header a byte a second does not get a new 3 s per byte.
        var harness = new Harness();
        var running = harness.RunAsync();
        for (var i = 0; i < 3; i++)
        {
            await harness.Connection.SendAsync(V2Header[i..(i + 1)]);
            harness.Clock.Advance(TimeSpan.FromSeconds(1));
        }

        await running.WaitAsync(Wait);
        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        Assert.StartsWith("103 ProxyHeaderTimedOut:", harness.RefusalReason);
    }

    [Fact]
    public async Task OnConnectionAsync_AcceptedHeader_TimeoutNoLongerApplies()
    {
        var harness = new Harness();
        await harness.Connection.SendAsync(V2Header);
        var running = harness.RunAsync();
        await harness.Entered;

        harness.Clock.Advance(TimeSpan.FromSeconds(30));
        await harness.Connection.SendAsync("hello");

        Assert.Equal("hello", await harness.Payload);
        await running.WaitAsync(Wait);
        Assert.Equal(0, harness.Refused);
    }

    [Fact]
    public async Task OnConnectionAsync_ReadCanceled_Refused()
    {
        var harness = new Harness();
        var running = harness.RunAsync();
        await harness.Connection.SendAsync(V2Header[..4]);

        harness.Connection.Context.Transport.Input.CancelPendingRead();
        await running.WaitAsync(Wait);

        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        Assert.Equal("105 ProxyHeaderReadCanceled: Refused a connection from 192.0.2.10:50123: reading the PROXY protocol header was canceled", harness.RefusalReason);
    }

    [Fact]
    public async Task OnConnectionAsync_ResetMidHeader_Refused()
    {
        var harness = new Harness();
        var running = harness.RunAsync();
        await harness.Connection.SendAsync(V2Header[..4]);

        await harness.Connection.ClientOutput.CompleteAsync(new ConnectionResetException("reset by peer"));
        await running.WaitAsync(Wait);

        Assert.Equal((1, false), (harness.Refused, harness.NextRan));
        Assert.Equal("104 ProxyHeaderReadFailed: Refused a connection from 192.0.2.10:50123: reading the PROXY protocol header failed", harness.RefusalReason);
    }

    [Fact]
    public async Task OnConnectionAsync_NextThrows_ExceptionPassesThrough()
    {
        var options = new ProxyProtocolOptions { Mode = ProxyProtocolMode.V2, TrustedProxies = new NetworkList([IPNetwork.Parse("192.0.2.0/24")]) };
        var middleware = new ProxyProtocolMiddleware(_ => throw new InvalidOperationException("handler bug"), options, TimeProvider.System, new LogCapture().CreateLogger("x"), () => { });
        var connection = new PipeConnection();
        await connection.SendAsync(V2Header);

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => middleware.OnConnectionAsync(connection.Context));
        Assert.Equal("handler bug", ex.Message);
    }

    [Fact]
    public async Task OnConnectionAsync_ModeOff_PassesStraightThrough()
    {
        var ran = false;
        var middleware = new ProxyProtocolMiddleware(_ => { ran = true; return Task.CompletedTask; }, ProxyProtocolOptions.Off, TimeProvider.System, new LogCapture().CreateLogger("x"), () => throw new InvalidOperationException("refused"));
        var connection = new PipeConnection();

        await middleware.OnConnectionAsync(connection.Context).WaitAsync(Wait);

        Assert.True(ran);
        Assert.Equal(ProxyPeer, connection.Context.RemoteEndPoint);
    }

    [Fact]
    public async Task UseProxyProtocol_ModeOff_AddsNothing()
    {
        var builder = new ConnectionBuilder(new ServiceCollection().BuildServiceProvider());
        var refused = 0;
        builder.UseProxyProtocol(ProxyProtocolOptions.Off, TimeProvider.System, new LogCapture().CreateLogger("x"), () => refused++);
        (EndPoint?, IProxyProtocolFeature?)? seen = null;
        builder.Run(connection =>
        {
            seen = (connection.RemoteEndPoint, connection.Features.Get<IProxyProtocolFeature>());
            return Task.CompletedTask;
        });
        var connection = new PipeConnection();

        await builder.Build()(connection.Context).WaitAsync(Wait);

        Assert.Equal((ProxyPeer, (IProxyProtocolFeature?)null), seen!.Value);
        Assert.Equal(0, refused);
    }
}

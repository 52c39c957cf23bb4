using System.Buffers;
using System.Net;
using System.Text;
using KestrelTcp.ProxyProtocol;
using KestrelTcp.Tests.Infrastructure;
using static KestrelTcp.Tests.ProxyProtocol.ProxyHeaderBytes;

namespace KestrelTcp.Tests.ProxyProtocol;

public class ProxyProtocolParserTests
{
    private static readonly byte[] Payload = Ascii("GET / HTTP/1.1\r\n");

    private static (ProxyParseStatus Status, ProxyHeader? Header, string? Error, long Consumed) Parse(ReadOnlySequence<byte> input, ProxyProtocolMode mode)
    {
        var reader = new SequenceReader<byte>(input);
        var status = ProxyProtocolParser.TryParse(ref reader, mode, out var header, out var error);
        return (status, header, error, reader.Consumed);
    }

    /// <summary>Everything a header says, in one line, so that a test pins all of it at once.</summary>
    private static string Describe(ProxyHeader? header)
    {
        if (header is null)
        {
            return "null";
        }

        var ssl = header.Ssl is { } s
            ? $"client={s.Client} verified={s.Verified} version={s.Version ?? "null"} cn={s.CommonName ?? "null"} cipher={s.Cipher ?? "null"} sig={s.SignatureAlgorithm ?? "null"} key={s.KeyAlgorithm ?? "null"}"
            : "null";
        return $"v{header.Version} local={header.IsLocal} {header.Source?.ToString() ?? "null"} -> {header.Destination?.ToString() ?? "null"}"
            + $" alpn={header.ApplicationProtocol ?? "null"} authority={header.Authority ?? "null"}"
            + $" id={(header.UniqueId is null ? "null" : Convert.ToHexString(header.UniqueId))} netns={header.NetworkNamespace ?? "null"} ssl={ssl}";
    }

    /// <summary>
    /// The header followed by a payload, cut at every byte boundary and one byte per segment: always
    /// the same header, and exactly the header consumed. Every proper prefix of the header, cut the
    /// same ways, is Incomplete and consumes nothing.
    /// </summary>
    private static string AssertComplete(byte[] header, ProxyProtocolMode mode, bool everyPrefixSplit = true)
    {
        string? first = null;
        foreach (var sequence in Sequences.AllSplits([.. header, .. Payload]))
        {
            var result = Parse(sequence, mode);
            Assert.Equal((ProxyParseStatus.Complete, null, header.Length), (result.Status, result.Error, result.Consumed));
            var described = Describe(result.Header);
            first ??= described;
            Assert.Equal(first, described);
        }

        Assert.Equal(ProxyParseStatus.Complete, Parse(new ReadOnlySequence<byte>(header), mode).Status);
        for (var length = 0; length < header.Length; length++)
        {
            var prefix = header[..length];
            var sequences = everyPrefixSplit ? Sequences.AllSplits(prefix) : [new ReadOnlySequence<byte>(prefix)];
            foreach (var sequence in sequences)
            {
                var result = Parse(sequence, mode);
                Assert.Equal((ProxyParseStatus.Incomplete, "null", (string?)null, 0L), (result.Status, Describe(result.Header), result.Error, result.Consumed));
            }
        }

        return first!;
    }

    /// <summary>
    /// Invalid as soon as the first <paramref name="proving"/> bytes are there, however they are cut,
    /// and not before; the reader is left where it was.
    /// </summary>
    private static void AssertInvalidAt(byte[] input, int proving, ProxyProtocolMode mode, string error)
    {
        for (var length = 0; length < proving; length++)
        {
            foreach (var sequence in Sequences.AllSplits(input[..length]))
            {
                Assert.Equal(ProxyParseStatus.Incomplete, Parse(sequence, mode).Status);
            }
        }

        foreach (var length in new[] { proving, input.Length }.Distinct())
        {
            foreach (var sequence in Sequences.AllSplits(input[..length]))
            {
                var result = Parse(sequence, mode);
                Assert.Equal((ProxyParseStatus.Invalid, error, "null", 0L), (result.Status, result.Error, Describe(result.Header), result.Consumed));
            }
        }
    }

    // ---- v1 -------------------------------------------------------------------------------------

    [Theory]
    [InlineData(ProxyProtocolMode.V1)]
    [InlineData(ProxyProtocolMode.Any)]
    public void TryParse_V1Tcp4_ReadsAddressesAndStopsBeforePayload(ProxyProtocolMode mode)
    {
        var header = AssertComplete(Ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), mode);
        Assert.Equal("v1 local=False 192.168.0.1:56324 -> 192.168.0.11:443 alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V1Tcp6_ReadsAddresses()
    {
        var header = AssertComplete(Ascii("PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:2 0 65535\r\n"), ProxyProtocolMode.V1);
        Assert.Equal("v1 local=False [2001:db8::1]:0 -> [2001:db8::2]:65535 alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V1Tcp6IPv4Mapped_GivesPlainIPv4()
    {
        var header = AssertComplete(Ascii("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:c000:201 50000 7007\r\n"), ProxyProtocolMode.V1);
        Assert.Equal("v1 local=False 192.0.2.7:50000 -> 192.0.2.1:7007 alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V1Tcp4LargestLine_Complete()
    {
        var header = AssertComplete(Ascii("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), ProxyProtocolMode.V1);
        Assert.Equal("v1 local=False 255.255.255.255:65535 -> 255.255.255.255:65535 alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Theory]
    [InlineData("PROXY UNKNOWN\r\n")]
    [InlineData("PROXY UNKNOWN ffff:f::f:ffff ffff:f::f:ffff 65535 65535\r\n")]
    [InlineData("PROXY UNKNOWN anything at all, even \x01 and a lone \t\r\n")]
    public void TryParse_V1Unknown_LocalWhateverFollows(string line)
    {
        var header = AssertComplete(Ascii(line), ProxyProtocolMode.V1);
        Assert.Equal("v1 local=True null -> null alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V1LineOf107Bytes_Complete()
    {
        var line = Ascii("PROXY UNKNOWN " + new string('x', 91) + "\r\n");
        Assert.Equal(107, line.Length);
        AssertComplete(line, ProxyProtocolMode.V1, everyPrefixSplit: false);
    }

    [Fact]
    public void TryParse_V1No107thByteCrlf_InvalidAt107Bytes()
    {
        AssertInvalidAt(Ascii("PROXY UNKNOWN " + new string('x', 93) + "\r\n"), 107, ProxyProtocolMode.V1, "v1: no CRLF within the first 107 bytes");
        // The 107th byte a CR: its LF would be the 108th.
        AssertInvalidAt(Ascii("PROXY UNKNOWN " + new string('x', 92) + "\r\n"), 107, ProxyProtocolMode.V1, "v1: no CRLF within the first 107 bytes");
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n", 1, "not a PROXY protocol v1 header ('PROXY ' expected)")]
    [InlineData("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 5, "not a PROXY protocol v1 header ('PROXY ' expected)")]
    [InlineData("PROXY\r\n", 6, "not a PROXY protocol v1 header ('PROXY ' expected)")]
    [InlineData("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 7, "v1: the protocol is not TCP4, TCP6 or UNKNOWN")]
    [InlineData("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 7, "v1: the protocol is not TCP4, TCP6 or UNKNOWN")]
    [InlineData("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 10, "v1: the protocol is not TCP4, TCP6 or UNKNOWN")]
    [InlineData("PROXY TCP4\r\n", 11, "v1: the protocol is not TCP4, TCP6 or UNKNOWN")]
    [InlineData("PROXY UNKNOWNX\r\n", 14, "v1: the protocol is not TCP4, TCP6 or UNKNOWN")]
    [InlineData("PROXY UNKNOWN\n", 14, "v1: a bare LF (the line must end with CRLF)")]
    [InlineData("PROXY UNKNOWN stuff\nmore\r\n", 20, "v1: a bare LF (the line must end with CRLF)")]
    [InlineData("PROXY UNKNOWN\rX", 15, "v1: a CR not followed by LF")]
    [InlineData("PROXY TCP4 ::1 ::1 1 2\r\n", 12, "v1: the source address is not an IPv4 address (four numbers 0-255, no leading zeros)")]
    [InlineData("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", 13, "v1: the source address is not an IPv4 address (four numbers 0-255, no leading zeros)")]
    [InlineData("PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", 14, "v1: the source address is not an IPv4 address (four numbers 0-255, no leading zeros)")]
    [InlineData("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 17, "v1: the source address is not an IPv4 address (four numbers 0-255, no leading zeros)")]
    [InlineData("PROXY TCP4 1.2.3.4\n", 19, "v1: a bare LF (the line must end with CRLF)")]
    [InlineData("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 20, "v1: the destination address is not an IPv4 address (four numbers 0-255, no leading zeros)")]
    [InlineData("PROXY TCP4 1.2.3.4 2001:db8::1 1 2\r\n", 23, "v1: the destination address is not an IPv4 address (four numbers 0-255, no leading zeros)")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n", 28, "v1: the source port is not a number 0-65535 (no sign, no leading zeros) followed by one space")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n", 29, "v1: the source port is not a number 0-65535 (no sign, no leading zeros) followed by one space")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 65536 443\r\n", 32, "v1: the source port is not a number 0-65535 (no sign, no leading zeros) followed by one space")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", 30, "v1: the source port is not a number 0-65535 (no sign, no leading zeros) followed by one space")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 80 -443\r\n", 31, "v1: the destination port is not a number 0-65535 (no sign, no leading zeros) followed by CRLF")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 80 443x\r\n", 34, "v1: the destination port is not a number 0-65535 (no sign, no leading zeros) followed by CRLF")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n", 34, "v1: the destination port is not a number 0-65535 (no sign, no leading zeros) followed by CRLF")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n", 34, "v1: a bare LF (the line must end with CRLF)")]
    [InlineData("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\r\n", 35, "v1: a CR not followed by LF")]
    [InlineData("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", 19, "v1: the source address is not an IPv6 address")]
    [InlineData("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", 19, "v1: the source address is not an IPv6 address")]
    [InlineData("PROXY TCP6 [::1] ::1 1 2\r\n", 12, "v1: the source address is not an IPv6 address")]
    [InlineData("PROXY TCP6 1::2::3 ::1 1 2\r\n", 19, "v1: the source address is not an IPv6 address")]
    [InlineData("PROXY TCP6 1111111111111111111111111111111111111111111111 ::1 1 2\r\n", 57, "v1: the source address is not an IPv6 address")]
    [InlineData("PROXY TCP6 2001:db8::1 1.2.3.4 1 2\r\n", 31, "v1: the destination address is not an IPv6 address")]
    [InlineData("PROXY TCP6 ::1 ::1 1 2\n", 23, "v1: a bare LF (the line must end with CRLF)")]
    public void TryParse_MalformedV1_InvalidAtTheFirstByteThatProvesIt(string input, int proving, string error) =>
        AssertInvalidAt(Ascii(input), proving, ProxyProtocolMode.V1, error);

    // ---- v2 -------------------------------------------------------------------------------------

    [Theory]
    [InlineData(ProxyProtocolMode.V2)]
    [InlineData(ProxyProtocolMode.Any)]
    public void TryParse_V2FromHaproxy_ReadsAddressesAndStopsBeforePayload(ProxyProtocolMode mode)
    {
        var header = AssertComplete(HaproxyIPv4, mode);
        Assert.Equal("v2 local=False 172.19.0.1:42578 -> 172.19.0.3:80 alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2ProxyIPv6_ReadsAddresses()
    {
        var header = AssertComplete(V2(Proxy, TcpIPv6, IPv6Addresses("2001:db8::1", 1234, "2001:db8::2", 443)), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False [2001:db8::1]:1234 -> [2001:db8::2]:443 alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2IPv4MappedIPv6_GivesPlainIPv4()
    {
        // HAProxy sends mixed families as IPv6 with the IPv4 side mapped.
        var header = AssertComplete(V2(Proxy, TcpIPv6, IPv6Addresses("::ffff:192.0.2.7", 50000, "2001:db8::2", 7007)), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False 192.0.2.7:50000 -> [2001:db8::2]:7007 alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2Dgram_ReadsAddresses()
    {
        var header = AssertComplete(V2(Proxy, UdpIPv4, IPv4Addresses("192.0.2.7", 53, "192.0.2.1", 5353)), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False 192.0.2.7:53 -> 192.0.2.1:5353 alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2Local_KeepsTheSocketAddresses()
    {
        // What HAProxy's check-send-proxy health checks send.
        var header = AssertComplete(V2(Local, Unspec), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=True null -> null alpn=null authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2LocalWithAddresses_SkipsThemAndReadsTheTlvs()
    {
        var header = AssertComplete(V2(Local, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x01, "h2")), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=True null -> null alpn=h2 authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2ProxyUnspec_KeepsTheSocketAddresses()
    {
        var header = AssertComplete(V2(Proxy, Unspec, Tlv(0x02, "example.com")), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=True null -> null alpn=null authority=example.com id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2UnixStream_KeepsTheSocketAddressesAndSkipsTheirBlock()
    {
        var paths = new byte[216];
        Encoding.ASCII.GetBytes("/run/client.sock").CopyTo(paths, 0);
        Encoding.ASCII.GetBytes("/run/haproxy.sock").CopyTo(paths, 108);
        var header = AssertComplete(V2(Proxy, UnixStream, paths, Tlv(0x01, "http/1.1")), ProxyProtocolMode.V2, everyPrefixSplit: false);
        Assert.Equal("v2 local=True null -> null alpn=http/1.1 authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2Alpn_Read()
    {
        var header = AssertComplete(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x01, "h2")), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False 192.0.2.7:1 -> 192.0.2.1:2 alpn=h2 authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2Authority_ReadAsUtf8()
    {
        var header = AssertComplete(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x02, "bücher.example")), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False 192.0.2.7:1 -> 192.0.2.1:2 alpn=null authority=bücher.example id=null netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2UniqueIdOf128Bytes_Read()
    {
        var id = Enumerable.Range(0, 128).Select(i => (byte)i).ToArray();
        var header = AssertComplete(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x05, id)), ProxyProtocolMode.V2, everyPrefixSplit: false);
        Assert.Equal($"v2 local=False 192.0.2.7:1 -> 192.0.2.1:2 alpn=null authority=null id={Convert.ToHexString(id)} netns=null ssl=null", header);
    }

    [Fact]
    public void TryParse_V2NetworkNamespace_Read()
    {
        var header = AssertComplete(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x30, "blue")), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False 192.0.2.7:1 -> 192.0.2.1:2 alpn=null authority=null id=null netns=blue ssl=null", header);
    }

    [Fact]
    public void TryParse_V2SslWithEverySubTlv_Read()
    {
        var ssl = SslTlv(0x07, 0,
            Tlv(0x21, "TLSv1.3"), Tlv(0x22, "client-alice"), Tlv(0x23, "TLS_AES_128_GCM_SHA256"),
            Tlv(0x24, "RSA-SHA256"), Tlv(0x25, "RSA2048"), Tlv(0x26, "x25519"));
        var header = AssertComplete(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), ssl), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False 192.0.2.7:1 -> 192.0.2.1:2 alpn=null authority=null id=null netns=null"
            + " ssl=client=7 verified=True version=TLSv1.3 cn=client-alice cipher=TLS_AES_128_GCM_SHA256 sig=RSA-SHA256 key=RSA2048", header);
    }

    [Fact]
    public void TryParse_V2SslNotVerifiedWithoutSubTlvs_Read()
    {
        var header = AssertComplete(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), SslTlv(0x01, 18)), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False 192.0.2.7:1 -> 192.0.2.1:2 alpn=null authority=null id=null netns=null"
            + " ssl=client=1 verified=False version=null cn=null cipher=null sig=null key=null", header);
    }

    [Fact]
    public void TryParse_V2NoopAndUnknownTlvs_Skipped()
    {
        var header = AssertComplete(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2),
            Tlv(0x04, new byte[5]), Tlv(0xEA, "\x01vpce-08d2bf15fac5001c9"), Tlv(0x04, []), Tlv(0x01, "h2")), ProxyProtocolMode.V2);
        Assert.Equal("v2 local=False 192.0.2.7:1 -> 192.0.2.1:2 alpn=h2 authority=null id=null netns=null ssl=null", header);
    }

    [Fact]
    public void Crc32CReference_CheckValue_IsTheStandardOne()
    {
        // The check value of CRC-32C (iSCSI, SCTP): the test's own CRC is the one the spec means.
        Assert.Equal(0xE3069283u, Crc32CReference("123456789"u8));
    }

    [Fact]
    public void TryParse_V2Crc32CCorrect_Complete()
    {
        var header = WithCrc32C(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Crc32CTlv(), Tlv(0x01, "h2")), 31);
        Assert.Equal("v2 local=False 192.0.2.7:1 -> 192.0.2.1:2 alpn=h2 authority=null id=null netns=null ssl=null", AssertComplete(header, ProxyProtocolMode.V2));
    }

    [Fact]
    public void TryParse_V2Crc32CWrong_InvalidOnceTheHeaderIsIn()
    {
        var header = WithCrc32C(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Crc32CTlv(), Tlv(0x01, "h2")), 31);
        header[^1] ^= 0x01; // the checksum now covers a different ALPN
        AssertInvalidAt(header, header.Length, ProxyProtocolMode.V2, "v2: the CRC32C does not match the header");
    }

    [Fact]
    public void TryParse_V2EveryTlvAtOnce_ReadsAllOfThem()
    {
        var id = Enumerable.Range(0, 128).Select(i => (byte)(255 - i)).ToArray();
        var header = WithCrc32C(V2(Proxy, TcpIPv6, IPv6Addresses("2001:db8::7", 50000, "2001:db8::1", 443),
            Tlv(0x01, "h2"), Tlv(0x02, "api.example.com"), Crc32CTlv(), Tlv(0x04, new byte[3]), Tlv(0x05, id),
            SslTlv(0x05, 0, Tlv(0x21, "TLSv1.2"), Tlv(0x22, "alice"), Tlv(0x23, "ECDHE-RSA-AES128-GCM-SHA256"), Tlv(0x24, "RSA-SHA256"), Tlv(0x25, "EC256")),
            Tlv(0x30, "blue"), Tlv(0xEE, [0x01, 0x00, 0x00, 0x00, 0x2A])), 16 + 36 + 5 + 18 + 3);
        var described = AssertComplete(header, ProxyProtocolMode.V2);
        Assert.Equal($"v2 local=False [2001:db8::7]:50000 -> [2001:db8::1]:443 alpn=h2 authority=api.example.com id={Convert.ToHexString(id)} netns=blue"
            + " ssl=client=5 verified=True version=TLSv1.2 cn=alice cipher=ECDHE-RSA-AES128-GCM-SHA256 sig=RSA-SHA256 key=EC256", described);
    }

    [Fact]
    public void TryParse_V2Of2048Bytes_Complete()
    {
        var header = V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x04, new byte[2048 - 16 - 12 - 3]));
        Assert.Equal(2048, header.Length);
        AssertComplete(header, ProxyProtocolMode.V2, everyPrefixSplit: false);
    }

    [Fact]
    public void TryParse_V2BadSignatureByte_InvalidAtThatByte()
    {
        for (var i = 0; i < 12; i++)
        {
            var header = (byte[])HaproxyIPv4.Clone();
            header[i] ^= 0x40;
            AssertInvalidAt(header, i + 1, ProxyProtocolMode.V2, "v2: not the PROXY protocol v2 signature");
        }
    }

    [Theory]
    [InlineData(0x11, "v2: the version is not 2")]
    [InlineData(0x31, "v2: the version is not 2")]
    [InlineData(0x01, "v2: the version is not 2")]
    [InlineData(0x22, "v2: the command is neither LOCAL (0) nor PROXY (1)")]
    [InlineData(0x2F, "v2: the command is neither LOCAL (0) nor PROXY (1)")]
    public void TryParse_V2BadVersionOrCommand_InvalidAtTheThirteenthByte(byte versionAndCommand, string error) =>
        AssertInvalidAt(V2(versionAndCommand, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2)), 13, ProxyProtocolMode.V2, error);

    [Theory]
    [InlineData(Proxy, 0x41)]
    [InlineData(Proxy, 0xF1)]
    [InlineData(Proxy, 0x13)]
    [InlineData(Proxy, 0x10)]
    [InlineData(Proxy, 0x01)]
    [InlineData(Local, 0x41)]
    public void TryParse_V2UnknownFamilyOrTransport_InvalidAtTheFourteenthByte(byte versionAndCommand, byte familyAndTransport) =>
        AssertInvalidAt(V2(versionAndCommand, familyAndTransport, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2)), 14, ProxyProtocolMode.V2, "v2: unknown address family or transport");

    [Theory]
    [InlineData(2033)]
    [InlineData(65535)]
    public void TryParse_V2LengthOverTheCap_InvalidAfterTheFixedSixteenBytes(int length) =>
        AssertInvalidAt(V2WithLength(Proxy, TcpIPv4, (ushort)length, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2)), 16, ProxyProtocolMode.V2, "v2: the header is longer than 2048 bytes");

    [Theory]
    [InlineData(TcpIPv4, 11)]
    [InlineData(TcpIPv4, 0)]
    [InlineData(TcpIPv6, 35)]
    [InlineData(UnixStream, 215)]
    public void TryParse_V2LengthShorterThanTheAddresses_InvalidAfterTheFixedSixteenBytes(byte familyAndTransport, int length) =>
        AssertInvalidAt(V2WithLength(Proxy, familyAndTransport, (ushort)length, new byte[length]), 16, ProxyProtocolMode.V2, "v2: the length does not cover the addresses of the family");

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void TryParse_V2RoomLeftTooSmallForATlv_InvalidAfterTheFixedSixteenBytes(int extra) =>
        AssertInvalidAt(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), new byte[extra]), 16, ProxyProtocolMode.V2, "v2: a TLV runs past the end of the header");

    [Fact]
    public void TryParse_V2TlvPastTheEnd_InvalidAtItsLength()
    {
        var header = V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), [0x01, 0x00, 0x06], Ascii("h2"), Tlv(0x04, []));
        AssertInvalidAt(header, 31, ProxyProtocolMode.V2, "v2: a TLV runs past the end of the header");
    }

    [Fact]
    public void TryParse_V2Crc32CNotFourBytes_InvalidAtItsLength() =>
        AssertInvalidAt(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x03, new byte[5])), 31, ProxyProtocolMode.V2, "v2: the CRC32C TLV is not 4 bytes long");

    [Fact]
    public void TryParse_V2TwoCrc32C_InvalidAtTheSecond() =>
        AssertInvalidAt(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Crc32CTlv(), Crc32CTlv()), 38, ProxyProtocolMode.V2, "v2: more than one CRC32C TLV");

    [Fact]
    public void TryParse_V2UniqueIdOver128Bytes_InvalidAtItsLength() =>
        AssertInvalidAt(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x05, new byte[129])), 31, ProxyProtocolMode.V2, "v2: the unique id TLV is longer than 128 bytes");

    [Fact]
    public void TryParse_V2SslShorterThanItsFixedPart_InvalidAtItsLength() =>
        AssertInvalidAt(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), Tlv(0x20, new byte[4])), 31, ProxyProtocolMode.V2, "v2: the SSL TLV is shorter than its 5 fixed bytes");

    [Fact]
    public void TryParse_V2SslSubTlvPastItsEnd_InvalidAtTheSubTlvLength()
    {
        // SSL value: client, verify, then a VERSION sub-TLV claiming 10 bytes of the 2 there are.
        var ssl = Tlv(0x20, [0x01, 0, 0, 0, 0, 0x21, 0x00, 0x0A, (byte)'v', (byte)'1']);
        AssertInvalidAt(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), ssl), 39, ProxyProtocolMode.V2, "v2: an SSL sub-TLV runs past the end of the SSL TLV");
        // One byte after the fixed part: no room for a sub-TLV, known from the SSL TLV's own length.
        var shortSsl = Tlv(0x20, [0x01, 0, 0, 0, 0, 0x21]);
        AssertInvalidAt(V2(Proxy, TcpIPv4, IPv4Addresses("192.0.2.7", 1, "192.0.2.1", 2), shortSsl), 31, ProxyProtocolMode.V2, "v2: an SSL sub-TLV runs past the end of the SSL TLV");
    }

    // ---- modes ----------------------------------------------------------------------------------

    [Fact]
    public void TryParse_V2HeaderOnV1Listener_InvalidAtTheFirstByte() =>
        AssertInvalidAt(HaproxyIPv4, 1, ProxyProtocolMode.V1, "a PROXY protocol v2 header where v1 is required");

    [Fact]
    public void TryParse_V1HeaderOnV2Listener_InvalidAtTheFirstByte() =>
        AssertInvalidAt(Ascii("PROXY TCP4 192.0.2.7 192.0.2.1 1 2\r\n"), 1, ProxyProtocolMode.V2, "a PROXY protocol v1 header where v2 is required");

    [Fact]
    public void TryParse_NoHeaderOnV2Listener_InvalidAtTheFirstByte() =>
        AssertInvalidAt(Ascii("GET / HTTP/1.1\r\n"), 1, ProxyProtocolMode.V2, "v2: not the PROXY protocol v2 signature");

    [Theory]
    [InlineData(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00 })] // a TLS ClientHello
    [InlineData(new byte[] { (byte)'G', (byte)'E', (byte)'T' })]
    public void TryParse_NoHeaderInAnyMode_InvalidAtTheFirstByte(byte[] input) =>
        AssertInvalidAt(input, 1, ProxyProtocolMode.Any, "not a PROXY protocol header (neither 'PROXY ' nor the v2 signature)");

    [Fact]
    public void TryParse_ModeOff_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Parse(new ReadOnlySequence<byte>(HaproxyIPv4), ProxyProtocolMode.Off));

    // ---- allocations ----------------------------------------------------------------------------

    [Fact]
    public void TryParse_IncompleteOrInvalid_AllocatesNothing()
    {
        var v1 = Ascii("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n");
        var v2 = WithCrc32C(V2(Proxy, TcpIPv6, IPv6Addresses("2001:db8::7", 50000, "2001:db8::1", 443), Crc32CTlv(), Tlv(0x02, "api.example.com"),
            SslTlv(0x05, 0, Tlv(0x21, "TLSv1.2"), Tlv(0x22, "alice"))), 16 + 36 + 3);
        var badCrc = (byte[])v2.Clone();
        badCrc[^1] ^= 1;
        var inputs = new List<(ReadOnlySequence<byte> Input, ProxyProtocolMode Mode)>();
        foreach (var (header, mode) in new[] { (v1, ProxyProtocolMode.V1), (v2, ProxyProtocolMode.V2), (v2, ProxyProtocolMode.Any) })
        {
            for (var length = 0; length < header.Length; length++)
            {
                inputs.Add((new ReadOnlySequence<byte>(header[..length]), mode));
                inputs.Add((Sequences.FromChunks(header[..(length / 2)], header[(length / 2)..length]), mode));
            }
        }

        inputs.Add((new ReadOnlySequence<byte>(badCrc), ProxyProtocolMode.V2));
        inputs.Add((Sequences.FromChunks([.. badCrc.Select(b => new[] { b })]), ProxyProtocolMode.V2));
        inputs.Add((new ReadOnlySequence<byte>(Ascii("PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n")), ProxyProtocolMode.V1));
        inputs.Add((new ReadOnlySequence<byte>(Ascii("PROXY TCP6 2001:db8::1 1::2::3 1 2\r\n")), ProxyProtocolMode.V1));
        inputs.Add((new ReadOnlySequence<byte>(Ascii("PROXY UNKNOWN " + new string('x', 100))), ProxyProtocolMode.V1));
        inputs.Add((new ReadOnlySequence<byte>(v1), ProxyProtocolMode.V2));

        // Counts rather than asserts inside the measured loop: xunit's asserts allocate.
        static int CountComplete(List<(ReadOnlySequence<byte> Input, ProxyProtocolMode Mode)> inputs)
        {
            var complete = 0;
            foreach (var (input, mode) in inputs)
            {
                var reader = new SequenceReader<byte>(input);
                if (ProxyProtocolParser.TryParse(ref reader, mode, out _, out _) == ProxyParseStatus.Complete)
                {
                    complete++;
                }
            }

            return complete;
        }

        Assert.Equal(0, CountComplete(inputs)); // also warms up: the first calls compile
        var before = GC.GetAllocatedBytesForCurrentThread();
        var completeCount = CountComplete(inputs);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal((0, 0L), (completeCount, allocated));
    }

    [Fact]
    public void TryParse_V2Complete_AddressesAreIPEndPoints()
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(HaproxyIPv4));
        Assert.Equal(ProxyParseStatus.Complete, ProxyProtocolParser.TryParse(ref reader, ProxyProtocolMode.V2, out var header, out _));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("172.19.0.1"), 42578), header!.Source);
        Assert.Equal(System.Net.Sockets.AddressFamily.InterNetwork, header.Destination!.AddressFamily);
    }
}

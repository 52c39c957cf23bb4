using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

namespace KestrelTcp.ProxyProtocol;

/// <summary>The outcome of <see cref="ProxyProtocolParser.TryParse"/>.</summary>
internal enum ProxyParseStatus
{
    /// <summary>A whole, valid header was read; the reader is just past it.</summary>
    Complete,

    /// <summary>The bytes so far are a valid start of a header: read more. Nothing was consumed.</summary>
    Incomplete,

    /// <summary>The bytes so far cannot start a valid header; the error says why. Nothing was consumed.</summary>
    Invalid,
}

/// <summary>
/// Reads a PROXY protocol header (HAProxy's <c>doc/proxy-protocol.txt</c>, v1 and v2) from the start
/// of a connection. Pure: no I/O, no state; call it again on the whole buffer after each read.
/// </summary>
/// <remarks>
/// <para>
/// Bounded: it never looks past the header's own bytes, and a header that would need more than
/// <see cref="MaxV1HeaderLength"/> (v1) or <see cref="MaxV2HeaderLength"/> (v2) bytes is invalid
/// as soon as that is known, so no input makes a connection buffer more.
/// </para>
/// <para>
/// Early: the answer is <see cref="ProxyParseStatus.Invalid"/> as soon as the bytes seen prove
/// the header wrong (a byte that departs from <c>PROXY </c> or the v2 signature, a bad version,
/// command or family, a length too large or too small, a TLV that runs past the end…), rather than
/// when the whole header is in. Only what needs the whole header waits for it: the CRC32C, and a
/// v1 IPv6 address, which is checked when the space after it arrives.
/// </para>
/// <para>
/// Strict where the spec leaves room: v1 fields are separated by exactly one space, ports and IPv4
/// numbers have no sign or leading zero, and <c>UNKNOWN</c> may be followed by a space and anything
/// but CR or LF up to the CRLF. v2 takes only the family/transport bytes the spec lists (0x00, 0x11,
/// 0x12, 0x21, 0x22, 0x31, 0x32), for LOCAL too (whose addresses are then skipped); TLVs start right
/// after the family's address block (at once for UNSPEC, as HAProxy sends them), must fill the header
/// exactly, and a repeated TLV other than CRC32C (refused) counts by its last occurrence.
/// </para>
/// <para>
/// Allocation-free except for the result: the Incomplete and Invalid paths allocate nothing (a
/// header split across segments is copied to the stack), the Complete path only the header, its
/// addresses and its TLV values.
/// </para>
/// </remarks>
internal static class ProxyProtocolParser
{
    /// <summary>The longest v1 line, CRLF included: <c>PROXY UNKNOWN</c> with two full IPv6 addresses and ports (the spec's worst case).</summary>
    public const int MaxV1HeaderLength = 107;

    /// <summary>The fixed start of a v2 header: signature (12), version and command, family and transport, length (2).</summary>
    public const int V2FixedLength = 16;

    /// <summary>
    /// The longest v2 header accepted, the 16 fixed bytes included (so the length field is at most
    /// 2032). The spec bounds only the address block (216 bytes for AF_UNIX); the TLVs are the
    /// receiver's to bound. HAProxy refuses any single TLV value over 1024 bytes
    /// (<c>HA_PP2_MAX_ALLOC</c>, "to prevent DoS"), caps the authority at 255 and the unique id at
    /// 128; the most it sends itself (IPv6 addresses, ALPN, authority, unique id, CRC32C and a full
    /// SSL TLV) is well under 1 KiB, and the cloud load balancers add one short TLV (AWS 0xEA, Azure
    /// 0xEE, GCP 0xE0). 2 KiB leaves room for the largest address block plus a 1024-byte TLV plus
    /// all of those, is half of nginx's 4096-byte limit, and is small enough to copy to the stack
    /// when a header arrives split across buffer segments.
    /// </summary>
    public const int MaxV2HeaderLength = 2048;

    private const int SignatureLength = 12;
    private const int TlvHeaderLength = 3;
    private const int MaxIPv6TextLength = 45; // ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255
    private const int MaxUniqueIdLength = 128;
    private const int SslFixedLength = 5; // client (1) + verify (4)

    private const byte CommandLocal = 0x0;
    private const byte CommandProxy = 0x1;
    private const byte FamilyUnspec = 0x0;
    private const byte FamilyInet = 0x1;
    private const byte FamilyInet6 = 0x2;
    private const byte FamilyUnix = 0x3;

    private const byte TypeAlpn = 0x01;
    private const byte TypeAuthority = 0x02;
    private const byte TypeCrc32C = 0x03;
    private const byte TypeUniqueId = 0x05;
    private const byte TypeSsl = 0x20;
    private const byte SubtypeSslVersion = 0x21;
    private const byte SubtypeSslCn = 0x22;
    private const byte SubtypeSslCipher = 0x23;
    private const byte SubtypeSslSigAlg = 0x24;
    private const byte SubtypeSslKeyAlg = 0x25;
    private const byte TypeNetns = 0x30;

    private static ReadOnlySpan<byte> V1Prefix => "PROXY "u8;

    private static ReadOnlySpan<byte> V2Signature => [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    /// <summary>
    /// Reads the header <paramref name="mode"/> requires from the start of <paramref name="reader"/>.
    /// On <see cref="ProxyParseStatus.Complete"/> the reader is advanced exactly past the header and
    /// <paramref name="header"/> is set; otherwise the reader is untouched, and on
    /// <see cref="ProxyParseStatus.Invalid"/> <paramref name="error"/> says why.
    /// </summary>
    public static ProxyParseStatus TryParse(ref SequenceReader<byte> reader, ProxyProtocolMode mode, out ProxyHeader? header, out string? error)
    {
        header = null;
        error = null;
        if (!reader.TryPeek(out var first))
        {
            return ProxyParseStatus.Incomplete;
        }

        var v1 = first == V1Prefix[0];
        var v2 = first == V2Signature[0];
        switch (mode)
        {
            case ProxyProtocolMode.V1 when !v1:
                return Invalid(v2 ? Errors.V2OnV1 : Errors.NotV1, out error);
            case ProxyProtocolMode.V2 when !v2:
                return Invalid(v1 ? Errors.V1OnV2 : Errors.BadSignature, out error);
            case ProxyProtocolMode.Any when !v1 && !v2:
                return Invalid(Errors.NotAHeader, out error);
            case ProxyProtocolMode.V1 or ProxyProtocolMode.V2 or ProxyProtocolMode.Any:
                return v1 ? TryParseV1(ref reader, out header, out error) : TryParseV2(ref reader, out header, out error);
            default:
                return ThrowModeOutOfRange(mode);
        }
    }

    private static ProxyParseStatus Invalid(string reason, out string? error)
    {
        error = reason;
        return ProxyParseStatus.Invalid;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ProxyParseStatus ThrowModeOutOfRange(ProxyProtocolMode mode) =>
        throw new ArgumentOutOfRangeException(nameof(mode), mode, "A PROXY protocol header is read only when the mode is V1, V2 or Any.");

    // ---- v1 -------------------------------------------------------------------------------------

    private static ProxyParseStatus TryParseV1(ref SequenceReader<byte> reader, out ProxyHeader? header, out string? error)
    {
        // Bound before searching: the line is complete within 107 bytes or it is invalid.
        var available = (int)Math.Min(reader.Remaining, MaxV1HeaderLength);
        var unread = reader.UnreadSpan;
        if (unread.Length >= available)
        {
            return ParseV1(ref reader, unread[..available], out header, out error);
        }

        Span<byte> copy = stackalloc byte[MaxV1HeaderLength];
        copy = copy[..available];
        reader.TryCopyTo(copy);
        return ParseV1(ref reader, copy, out header, out error);
    }

    private static ProxyParseStatus ParseV1(ref SequenceReader<byte> reader, scoped ReadOnlySpan<byte> line, out ProxyHeader? header, out string? error)
    {
        header = null;
        error = null;
        var pos = 0;
        var step = Literal(line, ref pos, V1Prefix, Errors.NotV1, ref error);
        if (step != Step.Ok)
        {
            return V1Outcome(step, line, ref error);
        }

        var rest = line[pos..];
        var tcp4 = Keyword(rest, "TCP4 "u8);
        var tcp6 = Keyword(rest, "TCP6 "u8);
        var unknown = Keyword(rest, "UNKNOWN"u8);
        if (unknown == Step.Ok)
        {
            pos += "UNKNOWN".Length;
            step = UnknownRest(line, ref pos, ref error);
            if (step != Step.Ok)
            {
                return V1Outcome(step, line, ref error);
            }

            header = new ProxyHeader { Version = 1, IsLocal = true };
            reader.Advance(pos);
            return ProxyParseStatus.Complete;
        }

        if (tcp4 != Step.Ok && tcp6 != Step.Ok)
        {
            step = tcp4 == Step.More || tcp6 == Step.More || unknown == Step.More ? Step.More : Fail(Errors.V1Protocol, ref error);
            return V1Outcome(step, line, ref error);
        }

        var isIPv6 = tcp6 == Step.Ok;
        pos += "TCP4 ".Length;
        uint source4 = 0, destination4 = 0;
        Range source6 = default, destination6 = default;
        int sourcePort = 0, destinationPort = 0;
        step = isIPv6 ? IPv6(line, ref pos, out source6, Errors.V1SourceIPv6, ref error) : IPv4(line, ref pos, out source4, Errors.V1SourceIPv4, ref error);
        if (step == Step.Ok)
        {
            step = Literal(line, ref pos, " "u8, isIPv6 ? Errors.V1SourceIPv6 : Errors.V1SourceIPv4, ref error);
        }

        if (step == Step.Ok)
        {
            step = isIPv6
                ? IPv6(line, ref pos, out destination6, Errors.V1DestinationIPv6, ref error)
                : IPv4(line, ref pos, out destination4, Errors.V1DestinationIPv4, ref error);
        }

        if (step == Step.Ok)
        {
            step = Literal(line, ref pos, " "u8, isIPv6 ? Errors.V1DestinationIPv6 : Errors.V1DestinationIPv4, ref error);
        }

        if (step == Step.Ok)
        {
            step = Port(line, ref pos, out sourcePort, Errors.V1SourcePort, ref error);
        }

        if (step == Step.Ok)
        {
            step = Literal(line, ref pos, " "u8, Errors.V1SourcePort, ref error);
        }

        if (step == Step.Ok)
        {
            step = Port(line, ref pos, out destinationPort, Errors.V1DestinationPort, ref error);
        }

        if (step == Step.Ok)
        {
            step = LineEnd(line, ref pos, Errors.V1DestinationPort, ref error);
        }

        if (step != Step.Ok)
        {
            return V1Outcome(step, line, ref error);
        }

        header = new ProxyHeader
        {
            Version = 1,
            Source = new IPEndPoint(isIPv6 ? ParseIPv6(line[source6]) : ToIPv4(source4), sourcePort),
            Destination = new IPEndPoint(isIPv6 ? ParseIPv6(line[destination6]) : ToIPv4(destination4), destinationPort),
        };
        reader.Advance(pos);
        return ProxyParseStatus.Complete;
    }

    private enum Step : byte
    {
        Ok,
        More,
        Bad,
    }

    // Running out of bytes is Incomplete, unless the 107 bytes a line may have are all there.
    private static ProxyParseStatus V1Outcome(Step step, ReadOnlySpan<byte> line, ref string? error)
    {
        if (step == Step.Bad)
        {
            return ProxyParseStatus.Invalid;
        }

        if (line.Length >= MaxV1HeaderLength)
        {
            error = Errors.V1TooLong;
            return ProxyParseStatus.Invalid;
        }

        return ProxyParseStatus.Incomplete;
    }

    private static Step Fail(string reason, ref string? error)
    {
        error = reason;
        return Step.Bad;
    }

    private static Step Literal(ReadOnlySpan<byte> line, ref int pos, ReadOnlySpan<byte> expected, string reason, ref string? error)
    {
        foreach (var b in expected)
        {
            if (pos >= line.Length)
            {
                return Step.More;
            }

            if (line[pos] != b)
            {
                return Fail(line[pos] == '\n' ? Errors.V1BareLf : reason, ref error);
            }

            pos++;
        }

        return Step.Ok;
    }

    private static Step Keyword(ReadOnlySpan<byte> rest, ReadOnlySpan<byte> keyword) =>
        rest.Length >= keyword.Length
            ? (rest.StartsWith(keyword) ? Step.Ok : Step.Bad)
            : (keyword.StartsWith(rest) ? Step.More : Step.Bad);

    // After UNKNOWN: CRLF at once, or a space and anything but CR and LF up to the CRLF.
    private static Step UnknownRest(ReadOnlySpan<byte> line, ref int pos, ref string? error)
    {
        if (pos >= line.Length)
        {
            return Step.More;
        }

        if (line[pos] == ' ')
        {
            pos++;
            while (pos < line.Length && line[pos] is not ((byte)'\r' or (byte)'\n'))
            {
                pos++;
            }
        }

        return LineEnd(line, ref pos, Errors.V1Protocol, ref error);
    }

    private static Step LineEnd(ReadOnlySpan<byte> line, ref int pos, string reason, ref string? error)
    {
        if (pos >= line.Length)
        {
            return Step.More;
        }

        if (line[pos] != '\r')
        {
            return Fail(line[pos] == '\n' ? Errors.V1BareLf : reason, ref error);
        }

        pos++;
        if (pos >= line.Length)
        {
            return Step.More;
        }

        if (line[pos] != '\n')
        {
            return Fail(Errors.V1CrWithoutLf, ref error);
        }

        pos++;
        return Step.Ok;
    }

    // Four decimal numbers 0-255 without leading zeros, separated by single dots.
    private static Step IPv4(ReadOnlySpan<byte> line, ref int pos, out uint address, string reason, ref string? error)
    {
        address = 0;
        for (var octet = 0; octet < 4; octet++)
        {
            if (octet > 0)
            {
                var dot = Literal(line, ref pos, "."u8, reason, ref error);
                if (dot != Step.Ok)
                {
                    return dot;
                }
            }

            var number = Decimal(line, ref pos, 255, out var value, reason, ref error);
            if (number != Step.Ok)
            {
                return number;
            }

            address = (address << 8) | (uint)value;
        }

        return Step.Ok;
    }

    private static Step Port(ReadOnlySpan<byte> line, ref int pos, out int port, string reason, ref string? error) =>
        Decimal(line, ref pos, 65535, out port, reason, ref error);

    // Decimal digits up to the first non-digit (left for the caller), at most max, no sign, no leading zero.
    private static Step Decimal(ReadOnlySpan<byte> line, ref int pos, int max, out int value, string reason, ref string? error)
    {
        value = 0;
        var start = pos;
        while (true)
        {
            if (pos >= line.Length)
            {
                return Step.More;
            }

            var b = line[pos];
            if (!char.IsAsciiDigit((char)b))
            {
                return pos == start ? Fail(b == '\n' ? Errors.V1BareLf : reason, ref error) : Step.Ok;
            }

            if (pos > start && line[start] == '0')
            {
                return Fail(reason, ref error);
            }

            value = (value * 10) + (b - '0');
            if (value > max)
            {
                return Fail(reason, ref error);
            }

            pos++;
        }
    }

    // An IPv6 address up to the space after it: only hex digits, colons and dots (no zone, no
    // brackets), at most 45 characters, and it must parse as IPv6 (a colon rules out IPv4).
    private static Step IPv6(ReadOnlySpan<byte> line, ref int pos, out Range token, string reason, ref string? error)
    {
        token = default;
        var start = pos;
        while (true)
        {
            if (pos >= line.Length)
            {
                return Step.More;
            }

            var b = line[pos];
            if (b == ' ')
            {
                break;
            }

            if ((!char.IsAsciiHexDigit((char)b) && b != ':' && b != '.') || pos - start == MaxIPv6TextLength)
            {
                return Fail(b == '\n' ? Errors.V1BareLf : reason, ref error);
            }

            pos++;
        }

        var text = line[start..pos];
        if (!text.Contains((byte)':') || !IPAddress.IsValidUtf8(text))
        {
            return Fail(reason, ref error);
        }

        token = start..pos;
        return Step.Ok;
    }

    private static IPAddress ToIPv4(uint address)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, address);
        return new IPAddress(bytes);
    }

    private static IPAddress ParseIPv6(ReadOnlySpan<byte> text) => Normalise(IPAddress.Parse(text));

    private static IPAddress Normalise(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    // ---- v2 -------------------------------------------------------------------------------------

    private static ProxyParseStatus TryParseV2(ref SequenceReader<byte> reader, out ProxyHeader? header, out string? error)
    {
        header = null;
        Span<byte> fixedPart = stackalloc byte[V2FixedLength];
        var seen = (int)Math.Min(reader.Remaining, V2FixedLength);
        fixedPart = fixedPart[..seen];
        reader.TryCopyTo(fixedPart);
        error = CheckFixedPart(fixedPart);
        if (error is not null)
        {
            return ProxyParseStatus.Invalid;
        }

        if (seen < V2FixedLength)
        {
            return ProxyParseStatus.Incomplete;
        }

        var total = V2FixedLength + BinaryPrimitives.ReadUInt16BigEndian(fixedPart[14..]);
        var available = (int)Math.Min(reader.Remaining, total);
        var unread = reader.UnreadSpan;
        return unread.Length >= available
            ? ParseV2(ref reader, unread[..available], total, out header, out error)
            : ParseV2Copied(ref reader, available, total, out header, out error);
    }

    // Only for a header split across segments (rare: a proxy sends it in one segment), so that the
    // common path does not reserve the 2 KiB of stack.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ProxyParseStatus ParseV2Copied(ref SequenceReader<byte> reader, int available, int total, out ProxyHeader? header, out string? error)
    {
        Span<byte> copy = stackalloc byte[MaxV2HeaderLength];
        copy = copy[..available];
        reader.TryCopyTo(copy);
        return ParseV2(ref reader, copy, total, out header, out error);
    }

    // The first (up to) 16 bytes: signature, version, command, family and length, each judged as soon as it is there.
    private static string? CheckFixedPart(ReadOnlySpan<byte> bytes)
    {
        var signature = bytes[..Math.Min(bytes.Length, SignatureLength)];
        if (!V2Signature.StartsWith(signature))
        {
            return Errors.BadSignature;
        }

        if (bytes.Length > 12)
        {
            if (bytes[12] >> 4 != 2)
            {
                return Errors.V2Version;
            }

            if ((bytes[12] & 0x0F) is not (CommandLocal or CommandProxy))
            {
                return Errors.V2Command;
            }
        }

        if (bytes.Length > 13 && AddressLength(bytes[13]) < 0)
        {
            return Errors.V2Family;
        }

        if (bytes.Length == V2FixedLength)
        {
            var length = BinaryPrimitives.ReadUInt16BigEndian(bytes[14..]);
            if (length > MaxV2HeaderLength - V2FixedLength)
            {
                return Errors.V2TooLong;
            }

            if (length < AddressLength(bytes[13]))
            {
                return Errors.V2TooShortForFamily;
            }
        }

        return null;
    }

    // The address block of a family/transport byte, or -1 for a byte the spec does not define: of the
    // valid family (0-3) and transport (0-2) pairs, it lists only UNSPEC (0x00) and the six with
    // both a family and a transport as the ones to expect.
    private static int AddressLength(byte familyAndTransport)
    {
        if (familyAndTransport == 0x00)
        {
            return 0;
        }

        if ((familyAndTransport & 0x0F) is not (0x1 or 0x2))
        {
            return -1;
        }

        return (familyAndTransport >> 4) switch
        {
            FamilyInet => 12,
            FamilyInet6 => 36,
            FamilyUnix => 216,
            _ => -1,
        };
    }

    // bytes: the header's first min(received, total) bytes; total: its whole length.
    private static ProxyParseStatus ParseV2(ref SequenceReader<byte> reader, scoped ReadOnlySpan<byte> bytes, int total, out ProxyHeader? header, out string? error)
    {
        header = null;
        var familyAndTransport = bytes[13];
        var tlvs = default(TlvPositions);
        error = ScanTlvs(bytes, V2FixedLength + AddressLength(familyAndTransport), total, ref tlvs);
        if (error is not null)
        {
            return ProxyParseStatus.Invalid;
        }

        if (bytes.Length < total)
        {
            return ProxyParseStatus.Incomplete;
        }

        if (tlvs.Crc32C.IsPresent && !Crc32CMatches(bytes, tlvs.Crc32C.Start))
        {
            error = Errors.V2CrcMismatch;
            return ProxyParseStatus.Invalid;
        }

        header = CreateV2Header(bytes, tlvs);
        reader.Advance(total);
        return ProxyParseStatus.Complete;
    }

    private struct TlvPositions
    {
        public Slot Alpn;
        public Slot Authority;
        public Slot Crc32C;
        public Slot UniqueId;
        public Slot Ssl;
        public Slot Netns;
    }

    // A TLV value's place in the header; a value never starts at 0, so the default is "absent".
    private readonly record struct Slot(int Start, int Length)
    {
        public bool IsPresent => Start > 0;
    }

    // Walks the TLVs from start to end (the header's end) over the bytes received so far; stops
    // without an error where the received bytes end. A repeated TLV other than CRC32C: the last counts.
    private static string? ScanTlvs(ReadOnlySpan<byte> bytes, int start, int end, ref TlvPositions found)
    {
        var pos = start;
        while (pos < end)
        {
            if (end - pos < TlvHeaderLength)
            {
                return Errors.V2TlvPastEnd;
            }

            if (pos + TlvHeaderLength > bytes.Length)
            {
                return null;
            }

            var type = bytes[pos];
            var length = BinaryPrimitives.ReadUInt16BigEndian(bytes[(pos + 1)..]);
            var value = new Slot(pos + TlvHeaderLength, length);
            if (value.Start + length > end)
            {
                return Errors.V2TlvPastEnd;
            }

            switch (type)
            {
                case TypeAlpn:
                    found.Alpn = value;
                    break;
                case TypeAuthority:
                    found.Authority = value;
                    break;
                case TypeCrc32C when length != 4:
                    return Errors.V2CrcLength;
                case TypeCrc32C when found.Crc32C.IsPresent:
                    return Errors.V2CrcTwice;
                case TypeCrc32C:
                    found.Crc32C = value;
                    break;
                case TypeUniqueId when length > MaxUniqueIdLength:
                    return Errors.V2UniqueIdTooLong;
                case TypeUniqueId:
                    found.UniqueId = value;
                    break;
                case TypeSsl when length < SslFixedLength:
                    return Errors.V2SslTooShort;
                case TypeSsl:
                    if (ScanSubTlvs(bytes, value.Start + SslFixedLength, value.Start + length) is { } subError)
                    {
                        return subError;
                    }

                    found.Ssl = value;
                    break;
                case TypeNetns:
                    found.Netns = value;
                    break;
                default:
                    // NOOP (0x04) and every type not kept here: skipped.
                    break;
            }

            pos = value.Start + length;
        }

        return null;
    }

    private static string? ScanSubTlvs(ReadOnlySpan<byte> bytes, int start, int end)
    {
        var pos = start;
        while (pos < end)
        {
            if (end - pos < TlvHeaderLength)
            {
                return Errors.V2SslSubTlvPastEnd;
            }

            if (pos + TlvHeaderLength > bytes.Length)
            {
                return null;
            }

            pos += TlvHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(bytes[(pos + 1)..]);
            if (pos > end)
            {
                return Errors.V2SslSubTlvPastEnd;
            }
        }

        return null;
    }

    // RFC 4960 appendix B (CRC32c, as SCTP), over the whole header with the checksum's 4 bytes as zeros.
    private static bool Crc32CMatches(ReadOnlySpan<byte> header, int checksumStart)
    {
        var expected = BinaryPrimitives.ReadUInt32BigEndian(header[checksumStart..]);
        var crc = Crc32CUpdate(uint.MaxValue, header[..checksumStart]);
        crc = BitOperations.Crc32C(crc, 0u);
        crc = Crc32CUpdate(crc, header[(checksumStart + 4)..]);
        return ~crc == expected;
    }

    private static uint Crc32CUpdate(uint crc, ReadOnlySpan<byte> data)
    {
        // BitOperations.Crc32C takes the ulong's bytes in little-endian order, as the CPU's crc32 instruction does.
        while (data.Length >= sizeof(ulong))
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[sizeof(ulong)..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }

    private static ProxyHeader CreateV2Header(ReadOnlySpan<byte> bytes, in TlvPositions tlvs)
    {
        var command = bytes[12] & 0x0F;
        var family = bytes[13] >> 4;
        IPEndPoint? source = null, destination = null;
        var isLocal = command == CommandLocal || family is FamilyUnspec or FamilyUnix;
        if (!isLocal)
        {
            var addresses = bytes[V2FixedLength..];
            if (family == FamilyInet)
            {
                source = new IPEndPoint(new IPAddress(addresses[..4]), BinaryPrimitives.ReadUInt16BigEndian(addresses[8..]));
                destination = new IPEndPoint(new IPAddress(addresses[4..8]), BinaryPrimitives.ReadUInt16BigEndian(addresses[10..]));
            }
            else
            {
                source = new IPEndPoint(Normalise(new IPAddress(addresses[..16])), BinaryPrimitives.ReadUInt16BigEndian(addresses[32..]));
                destination = new IPEndPoint(Normalise(new IPAddress(addresses[16..32])), BinaryPrimitives.ReadUInt16BigEndian(addresses[34..]));
            }
        }

        return new ProxyHeader
        {
            Version = 2,
            IsLocal = isLocal,
            Source = source,
            Destination = destination,
            ApplicationProtocol = Text(bytes, tlvs.Alpn),
            Authority = Text(bytes, tlvs.Authority),
            UniqueId = tlvs.UniqueId.IsPresent ? bytes.Slice(tlvs.UniqueId.Start, tlvs.UniqueId.Length).ToArray() : null,
            Ssl = tlvs.Ssl.IsPresent ? CreateSslInfo(bytes.Slice(tlvs.Ssl.Start, tlvs.Ssl.Length)) : null,
            NetworkNamespace = Text(bytes, tlvs.Netns),
        };
    }

    private static ProxySslInfo CreateSslInfo(ReadOnlySpan<byte> value)
    {
        string? version = null, commonName = null, cipher = null, signatureAlgorithm = null, keyAlgorithm = null;
        var sub = value[SslFixedLength..];
        while (!sub.IsEmpty)
        {
            var type = sub[0];
            var length = BinaryPrimitives.ReadUInt16BigEndian(sub[1..]);
            var text = sub.Slice(TlvHeaderLength, length);
            switch (type)
            {
                case SubtypeSslVersion:
                    version = Encoding.UTF8.GetString(text);
                    break;
                case SubtypeSslCn:
                    commonName = Encoding.UTF8.GetString(text);
                    break;
                case SubtypeSslCipher:
                    cipher = Encoding.UTF8.GetString(text);
                    break;
                case SubtypeSslSigAlg:
                    signatureAlgorithm = Encoding.UTF8.GetString(text);
                    break;
                case SubtypeSslKeyAlg:
                    keyAlgorithm = Encoding.UTF8.GetString(text);
                    break;
                default:
                    break;
            }

            sub = sub[(TlvHeaderLength + length)..];
        }

        return new ProxySslInfo
        {
            Client = value[0],
            Verified = BinaryPrimitives.ReadUInt32BigEndian(value[1..]) == 0,
            Version = version,
            CommonName = commonName,
            Cipher = cipher,
            SignatureAlgorithm = signatureAlgorithm,
            KeyAlgorithm = keyAlgorithm,
        };
    }

    private static string? Text(ReadOnlySpan<byte> bytes, Slot slot) =>
        slot.IsPresent ? Encoding.UTF8.GetString(bytes.Slice(slot.Start, slot.Length)) : null;

    /// <summary>The reasons a header is invalid, for the Debug log; constants, so that refusing allocates nothing.</summary>
    internal static class Errors
    {
        public const string NotAHeader = "not a PROXY protocol header (neither 'PROXY ' nor the v2 signature)";
        public const string NotV1 = "not a PROXY protocol v1 header ('PROXY ' expected)";
        public const string V2OnV1 = "a PROXY protocol v2 header where v1 is required";
        public const string V1OnV2 = "a PROXY protocol v1 header where v2 is required";
        public const string V1Protocol = "v1: the protocol is not TCP4, TCP6 or UNKNOWN";
        public const string V1SourceIPv4 = "v1: the source address is not an IPv4 address (four numbers 0-255, no leading zeros)";
        public const string V1DestinationIPv4 = "v1: the destination address is not an IPv4 address (four numbers 0-255, no leading zeros)";
        public const string V1SourceIPv6 = "v1: the source address is not an IPv6 address";
        public const string V1DestinationIPv6 = "v1: the destination address is not an IPv6 address";
        public const string V1SourcePort = "v1: the source port is not a number 0-65535 (no sign, no leading zeros) followed by one space";
        public const string V1DestinationPort = "v1: the destination port is not a number 0-65535 (no sign, no leading zeros) followed by CRLF";
        public const string V1BareLf = "v1: a bare LF (the line must end with CRLF)";
        public const string V1CrWithoutLf = "v1: a CR not followed by LF";
        public const string V1TooLong = "v1: no CRLF within the first 107 bytes";
        public const string BadSignature = "v2: not the PROXY protocol v2 signature";
        public const string V2Version = "v2: the version is not 2";
        public const string V2Command = "v2: the command is neither LOCAL (0) nor PROXY (1)";
        public const string V2Family = "v2: unknown address family or transport";
        public const string V2TooLong = "v2: the header is longer than 2048 bytes";
        public const string V2TooShortForFamily = "v2: the length does not cover the addresses of the family";
        public const string V2TlvPastEnd = "v2: a TLV runs past the end of the header";
        public const string V2CrcLength = "v2: the CRC32C TLV is not 4 bytes long";
        public const string V2CrcTwice = "v2: more than one CRC32C TLV";
        public const string V2CrcMismatch = "v2: the CRC32C does not match the header";
        public const string V2UniqueIdTooLong = "v2: the unique id TLV is longer than 128 bytes";
        public const string V2SslTooShort = "v2: the SSL TLV is shorter than its 5 fixed bytes";
        public const string V2SslSubTlvPastEnd = "v2: an SSL sub-TLV runs past the end of the SSL TLV";
    }
}

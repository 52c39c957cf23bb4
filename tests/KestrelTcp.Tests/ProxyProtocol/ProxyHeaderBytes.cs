using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace KestrelTcp.Tests.ProxyProtocol;

/// <summary>Builds PROXY protocol headers byte by byte, as a proxy would send them.</summary>
internal static class ProxyHeaderBytes
{
    public static readonly byte[] Signature = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

    public const byte Local = 0x20;
    public const byte Proxy = 0x21;
    public const byte Unspec = 0x00;
    public const byte TcpIPv4 = 0x11;
    public const byte UdpIPv4 = 0x12;
    public const byte TcpIPv6 = 0x21;
    public const byte UnixStream = 0x31;

    /// <summary>What HAProxy's <c>send-proxy-v2</c> wrote for 172.19.0.1:42578 → 172.19.0.3:80 (a published netcat dump).</summary>
    public static readonly byte[] HaproxyIPv4 =
    [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c,
        0xac, 0x13, 0x00, 0x01, 0xac, 0x13, 0x00, 0x03, 0xa6, 0x52, 0x00, 0x50,
    ];

    public static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    /// <summary>A v2 header: signature, version/command, family/transport, length, then <paramref name="body"/> (addresses and TLVs).</summary>
    public static byte[] V2(byte versionAndCommand, byte familyAndTransport, params byte[][] body)
    {
        var rest = body.SelectMany(b => b).ToArray();
        var header = new byte[16 + rest.Length];
        Signature.CopyTo(header, 0);
        header[12] = versionAndCommand;
        header[13] = familyAndTransport;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), checked((ushort)rest.Length));
        rest.CopyTo(header, 16);
        return header;
    }

    /// <summary>A v2 header whose length field says <paramref name="length"/> whatever follows.</summary>
    public static byte[] V2WithLength(byte versionAndCommand, byte familyAndTransport, ushort length, params byte[][] body)
    {
        var header = V2(versionAndCommand, familyAndTransport, body);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(14), length);
        return header;
    }

    public static byte[] IPv4Addresses(string source, ushort sourcePort, string destination, ushort destinationPort) =>
        [.. IPAddress.Parse(source).GetAddressBytes(), .. IPAddress.Parse(destination).GetAddressBytes(), .. Port(sourcePort), .. Port(destinationPort)];

    public static byte[] IPv6Addresses(string source, ushort sourcePort, string destination, ushort destinationPort) =>
        [.. IPAddress.Parse(source).GetAddressBytes(), .. IPAddress.Parse(destination).GetAddressBytes(), .. Port(sourcePort), .. Port(destinationPort)];

    public static byte[] Tlv(byte type, byte[] value)
    {
        var tlv = new byte[3 + value.Length];
        tlv[0] = type;
        BinaryPrimitives.WriteUInt16BigEndian(tlv.AsSpan(1), checked((ushort)value.Length));
        value.CopyTo(tlv, 3);
        return tlv;
    }

    public static byte[] Tlv(byte type, string utf8) => Tlv(type, Encoding.UTF8.GetBytes(utf8));

    /// <summary>The SSL TLV (0x20): client flags, verify, then sub-TLVs.</summary>
    public static byte[] SslTlv(byte client, uint verify, params byte[][] subTlvs)
    {
        var value = new byte[5];
        value[0] = client;
        BinaryPrimitives.WriteUInt32BigEndian(value.AsSpan(1), verify);
        return Tlv(0x20, [.. value, .. subTlvs.SelectMany(s => s)]);
    }

    /// <summary>The CRC32C TLV (0x03) holding zeros: <see cref="WithCrc32C"/> fills it in.</summary>
    public static byte[] Crc32CTlv() => Tlv(0x03, new byte[4]);

    /// <summary>Fills in the checksum of the (only) CRC32C TLV, whose value starts at <paramref name="valueOffset"/>.</summary>
    public static byte[] WithCrc32C(byte[] header, int valueOffset)
    {
        var copy = (byte[])header.Clone();
        copy.AsSpan(valueOffset, 4).Clear();
        BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(valueOffset), Crc32CReference(copy));
        return copy;
    }

    /// <summary>RFC 4960 appendix B's CRC32c, bit by bit: an independent check of the parser's.</summary>
    public static uint Crc32CReference(ReadOnlySpan<byte> data)
    {
        var crc = uint.MaxValue;
        foreach (var b in data)
        {
            crc ^= b;
            for (var bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
            }
        }

        return ~crc;
    }

    private static byte[] Port(ushort port) => [(byte)(port >> 8), (byte)port];
}

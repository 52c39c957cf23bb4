namespace KestrelTcp.Transport.Tests.Infrastructure;

/// <summary>
/// A byte stream whose every byte depends on its position, so that a receiver checks a transfer as it
/// goes, without keeping what was sent: a lost, repeated or reordered piece shows as a mismatch.
/// </summary>
public static class Pattern
{
    public static byte At(long position)
    {
        // A hash of the 4-byte word index: no period within any test's length, unlike position % 256.
        var word = (ulong)position >> 2;
        var hash = (uint)((word * 0x9E3779B97F4A7C15UL) >> 32);
        return (byte)(hash >> (int)(8 * (position & 3)));
    }

    public static void Fill(Span<byte> destination, long position)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = At(position + i);
        }
    }

    public static byte[] Bytes(long position, int count)
    {
        var bytes = new byte[count];
        Fill(bytes, position);
        return bytes;
    }

    /// <summary>Fails naming the first position whose byte is not the pattern's.</summary>
    public static void Verify(ReadOnlySpan<byte> data, long position)
    {
        for (var i = 0; i < data.Length; i++)
        {
            if (data[i] != At(position + i))
            {
                Assert.Fail($"byte {position + i} of the stream is 0x{data[i]:X2}, expected 0x{At(position + i):X2}: bytes were lost, repeated or reordered");
            }
        }
    }
}

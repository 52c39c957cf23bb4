using System.Buffers;

namespace KestrelTcp.Transport;

/// <summary>
/// The memory pool a connection offers the layers above it (<c>IMemoryPoolFeature</c>: Kestrel's
/// HTTP and TLS), as Kestrel's socket transport offers its own: <see cref="ArrayPool{T}.Shared"/>,
/// with Kestrel's 4 KiB block for a rent of no particular size. Without the feature Kestrel falls
/// back to <see cref="MemoryPool{T}.Shared"/>, which answers <c>Rent(0)</c> with an empty buffer, and
/// Kestrel's HTTP/1.1 output asks exactly that before a response starts: a response body written
/// through <c>GetSpan()</c> then failed (an ArgumentOutOfRangeException from <c>BuffersExtensions.Write</c>).
/// One instance for every connection: a held connection pays nothing for it.
/// </summary>
internal sealed class SharedMemoryPool : MemoryPool<byte>
{
    /// <summary>Kestrel's pool block size, what its layers expect from a rent without a size.</summary>
    private const int DefaultSize = 4096;

    public static SharedMemoryPool Instance { get; } = new();

    public override int MaxBufferSize => Array.MaxLength;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1) => Shared.Rent(minBufferSize <= 0 ? DefaultSize : minBufferSize);

    protected override void Dispose(bool disposing)
    {
        // Shared by every connection: nothing to let go.
    }
}

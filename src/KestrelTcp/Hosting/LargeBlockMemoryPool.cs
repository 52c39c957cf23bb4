using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Hosting;

/// <summary>
/// Gives Kestrel memory pools of larger blocks than its own 4 KiB. The socket transport receives
/// into one pool block per read, so with 4 KiB blocks a stream costs a 4 KiB <c>recv</c> (plus the
/// zero-byte wait of <c>WaitForDataBeforeAllocatingBuffer</c>) per 4 KiB: measured on Echo bulk,
/// 11× the receive system calls of a C server reading 64 KiB at a time, and the thread hops that
/// come with each. Idle connections hold no block either way (the transport waits for data before
/// renting one), so held connections cost no more memory.
/// </summary>
internal sealed class LargeBlockMemoryPoolFactory(int blockSize, int retainedBlocks) : IMemoryPoolFactory<byte>
{
    /// <summary>16 KiB: a quarter of the receive calls of 4 KiB blocks while an active connection's buffers stay small (larger sizes not yet measured).</summary>
    public const int DefaultBlockSize = 16 * 1024;

    /// <summary>Blocks kept for reuse per pool (4 MiB at 16 KiB); beyond that a returned block is left to the GC.</summary>
    public const int DefaultRetainedBlocks = 256;

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool(blockSize, retainedBlocks);
}

/// <summary>Pinned, fixed-size blocks reused through a lock-free queue; renting a pooled block allocates nothing.</summary>
internal sealed class LargeBlockMemoryPool(int blockSize, int retainedBlocks) : MemoryPool<byte>
{
    private readonly ConcurrentQueue<Block> _free = new();
    private int _freeCount;

    public override int MaxBufferSize => blockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, blockSize);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _freeCount);
            return block;
        }

        // Pinned (POH): the socket pins every buffer it reads into; pinned-at-birth costs that nothing.
        return new Block(this, GC.AllocateUninitializedArray<byte>(blockSize, pinned: true));
    }

    protected override void Dispose(bool disposing) => _free.Clear();

    private void Return(Block block)
    {
        if (Interlocked.Increment(ref _freeCount) <= retainedBlocks)
        {
            _free.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _freeCount);
        }
    }

    private sealed class Block(LargeBlockMemoryPool pool, byte[] array) : IMemoryOwner<byte>
    {
        public Memory<byte> Memory { get; } = array;

        public void Dispose() => pool.Return(this);
    }
}

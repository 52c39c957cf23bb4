using System.Buffers;

namespace KestrelTcp.Transport;

/// <summary>
/// One pinned buffer of the KestrelTcp transport, and at the same time the sequence segment that
/// exposes its filled part to handlers: renting a block for a read or a write allocates nothing.
/// <see cref="End"/> is how much of it holds data.
/// </summary>
internal sealed class Block : ReadOnlySequenceSegment<byte>
{
    public Block(int size) => Array = GC.AllocateUninitializedArray<byte>(size, pinned: true);

    public byte[] Array { get; }

    public int End { get; private set; }

    public int Free => Array.Length - End;

    /// <summary>Marks <paramref name="count"/> more bytes as filled; they become part of <see cref="ReadOnlySequenceSegment{T}.Memory"/>.</summary>
    public void Grow(int count)
    {
        End += count;
        Memory = Array.AsMemory(0, End);
    }

    /// <summary>Appends <paramref name="next"/> after this block's data.</summary>
    public void Append(Block next)
    {
        next.RunningIndex = RunningIndex + End;
        Next = next;
    }

    public void Reset()
    {
        End = 0;
        RunningIndex = 0;
        Memory = default;
        Next = null;
    }
}

/// <summary>
/// The transport's free blocks, shared by every connection and reused last-in first-out (the block
/// rented next is the one returned last, still in the CPU's caches). A connection holds a block only
/// while it has bytes in flight: an idle connection holds none.
/// </summary>
internal sealed class BlockPool(int blockSize, int retained)
{
    private readonly BoundedStack<Block> _free = new(retained);

    public int BlockSize => blockSize;

    public Block Rent(int minimumSize = 0) =>
        minimumSize > blockSize ? new Block(minimumSize) : _free.TryPop(out var block) ? block : new Block(blockSize);

    /// <summary>Takes back one block (not the blocks linked after it).</summary>
    public void Return(Block block)
    {
        block.Reset();
        if (block.Array.Length == blockSize)
        {
            _free.TryPush(block);
        }
    }

    /// <summary>Keeps no block from now on (the transport is disposed).</summary>
    public void Close() => _free.Close();

    /// <summary>Takes back a block and every block linked after it.</summary>
    public void ReturnChain(Block? block)
    {
        while (block is not null)
        {
            var next = (Block?)block.Next;
            Return(block);
            block = next;
        }
    }
}

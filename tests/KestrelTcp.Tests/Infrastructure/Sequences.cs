using System.Buffers;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>Builds multi-segment sequences (as aspnetcore's ReadOnlySequenceFactory) to test parsing across segment boundaries.</summary>
public static class Sequences
{
    public static ReadOnlySequence<byte> FromChunks(params byte[][] chunks)
    {
        if (chunks.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(chunks[0], 0);
        var last = first;
        foreach (var chunk in chunks.Skip(1))
        {
            last = last.Append(chunk);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Every way of cutting <paramref name="data"/> in two, plus one segment per byte.</summary>
    public static IEnumerable<ReadOnlySequence<byte>> AllSplits(byte[] data)
    {
        yield return new ReadOnlySequence<byte>(data);
        for (var cut = 0; cut <= data.Length; cut++)
        {
            yield return FromChunks(data[..cut], data[cut..]);
        }

        yield return FromChunks([.. data.Select(b => new[] { b })]);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}

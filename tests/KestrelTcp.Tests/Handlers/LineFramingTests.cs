using System.Buffers;
using System.Text;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Handlers;

public class LineFramingTests
{
    private static List<string> ReadAll(ReadOnlySequence<byte> input, int max, bool final, out LineStatus last, out long consumed)
    {
        var reader = new SequenceReader<byte>(input);
        var lines = new List<string>();
        while ((last = LineFraming.TryReadLine(ref reader, max, final, out var line)) == LineStatus.Line)
        {
            lines.Add(Encoding.UTF8.GetString(line.ToArray()));
        }

        consumed = reader.Consumed;
        return lines;
    }

    [Fact]
    public void TryReadLine_EveryByteBoundary_SameLines()
    {
        var data = "one\r\ntwo\n\nthree\r\r\nfour"u8.ToArray();
        foreach (var sequence in Sequences.AllSplits(data))
        {
            var lines = ReadAll(sequence, 100, final: false, out var status, out var consumed);
            Assert.Equal(["one", "two", "", "three\r"], lines);
            Assert.Equal(LineStatus.Incomplete, status);
            Assert.Equal(data.Length - 4, consumed);
        }
    }

    [Fact]
    public void TryReadLine_EveryIncompletePrefix_NeedsMoreAndConsumesNothing()
    {
        var data = "hello world\r\n"u8.ToArray();
        for (var length = 0; length < data.Length; length++)
        {
            var lines = ReadAll(new ReadOnlySequence<byte>(data[..length]), 100, final: false, out var status, out var consumed);
            Assert.Empty(lines);
            Assert.Equal(LineStatus.Incomplete, status);
            Assert.Equal(0, consumed);
        }
    }

    [Fact]
    public void TryReadLine_FinalBlockWithoutNewline_IsALine()
    {
        var lines = ReadAll(new ReadOnlySequence<byte>("a\nlast\r"u8.ToArray()), 100, final: true, out var status, out var consumed);
        Assert.Equal(["a", "last"], lines);
        Assert.Equal(LineStatus.Incomplete, status);
        Assert.Equal(7, consumed);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void TryReadLine_LineExactlyAtLimit_IsALine(string ending)
    {
        var data = Encoding.ASCII.GetBytes(new string('x', 16) + ending);
        foreach (var sequence in Sequences.AllSplits(data))
        {
            var lines = ReadAll(sequence, 16, final: false, out _, out _);
            Assert.Equal([new string('x', 16)], lines);
        }
    }

    [Theory]
    [InlineData("\n", false)]
    [InlineData("\r\n", false)]
    [InlineData("", false)]
    [InlineData("", true)]
    public void TryReadLine_OneByteOverLimit_TooLong(string ending, bool final)
    {
        var data = Encoding.ASCII.GetBytes(new string('x', 17) + ending);
        foreach (var sequence in Sequences.AllSplits(data))
        {
            var lines = ReadAll(sequence, 16, final, out var status, out var consumed);
            Assert.Empty(lines);
            Assert.Equal(LineStatus.TooLong, status);
            Assert.Equal(0, consumed);
        }
    }

    [Fact]
    public void TryReadLine_HugeInputWithoutNewline_StopsLookingAtTheLimit()
    {
        // 1 MiB without a newline: answered as too long from the first limit + 2 bytes alone.
        var data = new byte[1024 * 1024];
        Array.Fill(data, (byte)'a');
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(data));
        Assert.Equal(LineStatus.TooLong, LineFraming.TryReadLine(ref reader, 8192, false, out _));
    }

    [Fact]
    public void TryReadLine_InvalidUtf8_PassedThroughAsBytes()
    {
        var data = new byte[] { 0xff, 0xfe, (byte)'\n' };
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(data));
        Assert.Equal(LineStatus.Line, LineFraming.TryReadLine(ref reader, 10, false, out var line));
        Assert.Equal(new byte[] { 0xff, 0xfe }, line.ToArray());
    }
}

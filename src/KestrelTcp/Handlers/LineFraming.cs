using System.Buffers;

namespace KestrelTcp.Handlers;

/// <summary>The outcome of <see cref="LineFraming.TryReadLine"/>.</summary>
internal enum LineStatus
{
    /// <summary>No complete line yet: read more.</summary>
    Incomplete,

    /// <summary>A line was read.</summary>
    Line,

    /// <summary>The line is longer than the limit; nothing was consumed.</summary>
    TooLong,
}

/// <summary>
/// Line framing shared by every line-oriented handler: lines end with <c>\n</c>, a preceding
/// <c>\r</c> is stripped, and the search for the end of a line is bounded by the line limit so no
/// input can make a connection buffer more than the limit.
/// </summary>
internal static class LineFraming
{
    /// <summary>
    /// Reads one line (without its ending) from <paramref name="reader"/>. Looks at most
    /// <paramref name="maxLineLength"/> + 2 bytes (the line, <c>\r</c>, <c>\n</c>).
    /// When <paramref name="isFinalBlock"/> is true, unterminated remaining bytes form the last line.
    /// </summary>
    public static LineStatus TryReadLine(ref SequenceReader<byte> reader, int maxLineLength, bool isFinalBlock, out ReadOnlySequence<byte> line)
    {
        var unread = reader.UnreadSequence;
        var window = unread.Length > maxLineLength + 2L ? unread.Slice(0, maxLineLength + 2L) : unread;

        if (window.PositionOf((byte)'\n') is { } newline)
        {
            var raw = window.Slice(0, newline);
            line = TrimCarriageReturn(raw);
            if (line.Length > maxLineLength)
            {
                return LineStatus.TooLong;
            }

            reader.Advance(raw.Length + 1);
            return LineStatus.Line;
        }

        line = default;
        if (window.Length > maxLineLength && !(window.Length == maxLineLength + 1L && EndsWithCarriageReturn(window)))
        {
            // More than the limit without a line ending (a lone trailing '\r' may still start one).
            return LineStatus.TooLong;
        }

        if (!isFinalBlock || window.IsEmpty)
        {
            return LineStatus.Incomplete;
        }

        line = TrimCarriageReturn(window);
        if (line.Length > maxLineLength)
        {
            return LineStatus.TooLong;
        }

        reader.Advance(window.Length);
        return LineStatus.Line;
    }

    private static ReadOnlySequence<byte> TrimCarriageReturn(ReadOnlySequence<byte> raw) =>
        EndsWithCarriageReturn(raw) ? raw.Slice(0, raw.Length - 1) : raw;

    private static bool EndsWithCarriageReturn(in ReadOnlySequence<byte> raw)
    {
        if (raw.IsEmpty)
        {
            return false;
        }

        Span<byte> last = stackalloc byte[1];
        raw.Slice(raw.Length - 1).CopyTo(last);
        return last[0] == (byte)'\r';
    }
}

using System.Buffers.Binary;
using System.Globalization;

namespace KestrelTcp.Handlers;

/// <summary>The formats of the Time handler (<c>Options:Format</c>).</summary>
internal enum TimeFormat
{
    /// <summary><c>Wed Jan 29 19:14:15 2014</c>, as C's ctime (day padded with a space).</summary>
    Ctime,

    /// <summary><c>2014-01-29T19:14:15.123Z</c>, or with the zone's offset instead of <c>Z</c>.</summary>
    Iso8601,

    /// <summary><c>Wed, 29 Jan 2014 19:14:15 GMT</c>, always in GMT.</summary>
    Rfc1123,

    /// <summary>Seconds since 1970-01-01 UTC as decimal text.</summary>
    Unix,

    /// <summary>RFC 868: four bytes, big-endian, seconds since 1900-01-01 UTC modulo 2^32, no line ending.</summary>
    Rfc868,

    /// <summary>
    /// <c>29 JAN 2014 19:14:15 UTC</c>, as xinetd's daytime builtin writes it (<c>"%02d %s %d %02d:%02d:%02d %Z"</c>,
    /// the month in capitals). .NET knows no zone abbreviations, so a zone other than UTC is written as its
    /// offset, <c>+0100</c>, where xinetd would write <c>CET</c>.
    /// </summary>
    Xinetd,
}

/// <summary>Formats a moment as the Time handler sends it, into a caller's buffer, allocation-free.</summary>
internal static class TimeFormatter
{
    /// <summary>Enough for the longest format with its line ending.</summary>
    public const int MaxLength = 64;

    // Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01.
    private const long Rfc868EpochOffset = 2_208_988_800L;

    private static readonly string[] DayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    private static readonly string[] MonthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

    /// <summary>
    /// Writes <paramref name="utcNow"/> in <paramref name="format"/>, shown in <paramref name="zone"/>
    /// (ignored by the zone-free formats), followed by <c>\r\n</c> except for RFC 868. Returns the byte count.
    /// </summary>
    public static int Format(DateTimeOffset utcNow, TimeFormat format, TimeZoneInfo zone, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(zone);
        int written;
        switch (format)
        {
            case TimeFormat.Rfc868:
                var seconds = utcNow.ToUnixTimeSeconds() + Rfc868EpochOffset;
                BinaryPrimitives.WriteUInt32BigEndian(destination, unchecked((uint)seconds));
                return 4;
            case TimeFormat.Unix:
                utcNow.ToUnixTimeSeconds().TryFormat(destination, out written, default, CultureInfo.InvariantCulture);
                break;
            case TimeFormat.Rfc1123:
                utcNow.UtcDateTime.TryFormat(destination, out written, "R", CultureInfo.InvariantCulture);
                break;
            case TimeFormat.Iso8601:
                var local = TimeZoneInfo.ConvertTime(utcNow, zone);
                if (zone == TimeZoneInfo.Utc)
                {
                    local.UtcDateTime.TryFormat(destination, out written, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
                }
                else
                {
                    local.TryFormat(destination, out written, "yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture);
                }

                break;
            case TimeFormat.Xinetd:
                written = FormatXinetd(TimeZoneInfo.ConvertTime(utcNow, zone), zone == TimeZoneInfo.Utc, destination);
                break;
            default:
                written = FormatCtime(TimeZoneInfo.ConvertTime(utcNow, zone).DateTime, destination);
                break;
        }

        destination[written++] = (byte)'\r';
        destination[written++] = (byte)'\n';
        return written;
    }

    private static int FormatCtime(DateTime time, Span<byte> destination)
    {
        // "Www Mmm dd hh:mm:ss yyyy" with the day of the month padded with a space, as C's asctime.
        var n = WriteAscii(DayNames[(int)time.DayOfWeek], destination);
        destination[n++] = (byte)' ';
        n += WriteAscii(MonthNames[time.Month - 1], destination[n..]);
        destination[n++] = (byte)' ';
        if (time.Day < 10)
        {
            destination[n++] = (byte)' ';
        }

        time.Day.TryFormat(destination[n..], out var dayLength, default, CultureInfo.InvariantCulture);
        n += dayLength;
        destination[n++] = (byte)' ';
        time.TryFormat(destination[n..], out var rest, "HH:mm:ss yyyy", CultureInfo.InvariantCulture);
        return n + rest;
    }

    private static int FormatXinetd(DateTimeOffset time, bool utc, Span<byte> destination)
    {
        time.TryFormat(destination, out var n, "dd ", CultureInfo.InvariantCulture);
        n += WriteAscii(MonthNames[time.Month - 1], destination[n..]);
        destination[n - 2] = (byte)char.ToUpperInvariant((char)destination[n - 2]);
        destination[n - 1] = (byte)char.ToUpperInvariant((char)destination[n - 1]);
        time.TryFormat(destination[n..], out var rest, utc ? " yyyy HH:mm:ss 'UTC'" : " yyyy HH:mm:ss zzz", CultureInfo.InvariantCulture);
        n += rest;
        if (!utc)
        {
            // zzz is +01:00; %z-style +0100 is what a C program's offset looks like.
            destination[(n - 2)..n].CopyTo(destination[(n - 3)..]);
            n--;
        }

        return n;
    }

    private static int WriteAscii(string text, Span<byte> destination)
    {
        for (var i = 0; i < text.Length; i++)
        {
            destination[i] = (byte)text[i];
        }

        return text.Length;
    }
}

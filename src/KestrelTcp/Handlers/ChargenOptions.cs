using System.Globalization;
using KestrelTcp.Configuration;

namespace KestrelTcp.Handlers;

/// <summary>Options of the Chargen handler (<c>KestrelTcp:Listeners:{name}:Options</c>).</summary>
internal sealed class ChargenOptions : IHandlerOptions<ChargenOptions>
{
    /// <summary>
    /// How many bytes a connection gets before the server closes it, possibly in the middle of a line;
    /// default 0: until the client closes, as RFC 864 and BSD inetd do.
    /// </summary>
    public long MaxBytes { get; init; }

    /// <summary>
    /// The rate a connection is paced to, evenly at 100 ms granularity; default 0: unpaced, as fast as
    /// the client reads (RFC 864 leaves the rate to the client's reading, which backpressure honours).
    /// </summary>
    public long BytesPerSecond { get; init; }

    /// <inheritdoc />
    public static ChargenOptions Parse(IConfigurationSection section, ICollection<string> problems)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(problems);
        return new ChargenOptions
        {
            MaxBytes = ReadByteCount(section, "MaxBytes", "0 = until the client closes", problems),
            BytesPerSecond = ReadByteCount(section, "BytesPerSecond", "0 = unlimited", problems),
        };
    }

    private static long ReadByteCount(IConfigurationSection parent, string key, string zeroMeans, ICollection<string> problems)
    {
        var section = parent.GetSection(key);
        if (section.Value is not { Length: > 0 } text)
        {
            return 0;
        }

        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            problems.Add($"{section.Path}: '{text}' is not a whole number of bytes ({zeroMeans})");
            return 0;
        }

        if (value < 0)
        {
            problems.Add($"{section.Path}: {value} is negative ({zeroMeans})");
            return 0;
        }

        return value;
    }
}

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
            MaxBytes = ConfigurationReading.ReadByteCount(section, "MaxBytes", long.MaxValue, "0 = until the client closes", problems),
            BytesPerSecond = ConfigurationReading.ReadByteCount(section, "BytesPerSecond", long.MaxValue, "0 = unlimited", problems),
        };
    }
}

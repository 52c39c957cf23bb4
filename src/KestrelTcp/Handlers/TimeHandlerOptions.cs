using KestrelTcp.Configuration;

namespace KestrelTcp.Handlers;

/// <summary>Options of the Time handler (<c>KestrelTcp:Listeners:{name}:Options</c>).</summary>
internal sealed class TimeHandlerOptions : IHandlerOptions<TimeHandlerOptions>
{
    /// <summary>The format; default <see cref="TimeFormat.Ctime"/>, what daytime servers have always sent.</summary>
    public TimeFormat Format { get; init; } = TimeFormat.Ctime;

    /// <summary>
    /// The zone times are shown in; default UTC, so replicas in different zones agree. Null for
    /// <c>Local</c>: the injected <see cref="TimeProvider.LocalTimeZone"/>, read by the handler.
    /// </summary>
    public TimeZoneInfo? TimeZone { get; init; } = TimeZoneInfo.Utc;

    /// <inheritdoc />
    public static TimeHandlerOptions Parse(IConfigurationSection section, ICollection<string> problems)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(problems);
        var format = TimeFormat.Ctime;
        if (section["Format"] is { Length: > 0 } formatText
            && (!Enum.TryParse(formatText, ignoreCase: true, out format) || !Enum.IsDefined(format) || char.IsDigit(formatText[0])))
        {
            problems.Add($"{section.Path}:Format: '{formatText}' is not a time format (ctime, iso8601, rfc1123, unix, rfc868, xinetd)");
            format = TimeFormat.Ctime;
        }

        TimeZoneInfo? zone = TimeZoneInfo.Utc;
        if (section["TimeZone"] is { Length: > 0 } zoneText && !string.Equals(zoneText, "UTC", StringComparison.OrdinalIgnoreCase))
        {
            if (string.Equals(zoneText, "Local", StringComparison.OrdinalIgnoreCase))
            {
                zone = null;
            }
            else if (!TimeZoneInfo.TryFindSystemTimeZoneById(zoneText, out zone))
            {
                problems.Add($"{section.Path}:TimeZone: '{zoneText}' is not a known time zone (UTC, Local, or an IANA id such as Europe/Paris)");
                zone = TimeZoneInfo.Utc;
            }
        }

        return new TimeHandlerOptions { Format = format, TimeZone = zone };
    }
}

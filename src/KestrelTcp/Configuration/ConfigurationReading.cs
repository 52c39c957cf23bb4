using System.Globalization;

namespace KestrelTcp.Configuration;

/// <summary>
/// Typed reads of single configuration values that report a problem naming the full key instead of
/// throwing, so that start-up can list every mistake at once.
/// </summary>
internal static class ConfigurationReading
{
    /// <summary>Reads a whole number within [min, max]; a missing key gives <paramref name="fallback"/>.</summary>
    public static int ReadInt(IConfigurationSection parent, string key, int fallback, int min, int max, ICollection<string> problems, string? rangeText = null)
    {
        var section = parent.GetSection(key);
        if (section.Value is not { } text || text.Length == 0)
        {
            return fallback;
        }

        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            problems.Add($"{section.Path}: '{text}' is not a whole number");
            return fallback;
        }

        if (value < min || value > max)
        {
            problems.Add($"{section.Path}: {value} is out of range ({rangeText ?? $"{min}-{max}"})");
            return fallback;
        }

        return value;
    }

    /// <summary>
    /// Reads a byte count, 0 to <paramref name="max"/>; a missing key gives 0, which means what
    /// <paramref name="zeroMeans"/> says (it is part of every problem's text).
    /// </summary>
    public static long ReadByteCount(IConfigurationSection parent, string key, long max, string zeroMeans, ICollection<string> problems)
    {
        var section = parent.GetSection(key);
        if (section.Value is not { Length: > 0 } text)
        {
            return 0;
        }

        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            problems.Add($"{section.Path}: '{text}' is not a whole number of bytes ({zeroMeans})");
            return 0;
        }

        if (value < 0)
        {
            problems.Add($"{section.Path}: {value} is negative ({zeroMeans})");
            return 0;
        }

        if (value > max)
        {
            problems.Add($"{section.Path}: {value} is too large (at most {max} bytes)");
            return 0;
        }

        return value;
    }

    /// <summary>Reads a non-negative <see cref="TimeSpan"/> (<c>hh:mm:ss</c>); a missing key gives <paramref name="fallback"/>.</summary>
    public static TimeSpan ReadTimeSpan(IConfigurationSection parent, string key, TimeSpan fallback, ICollection<string> problems)
    {
        var section = parent.GetSection(key);
        if (section.Value is not { } text || text.Length == 0)
        {
            return fallback;
        }

        if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var value))
        {
            problems.Add($"{section.Path}: '{text}' is not a time span (expected [d.]hh:mm:ss[.fff], e.g. 00:05:00)");
            return fallback;
        }

        if (value < TimeSpan.Zero)
        {
            problems.Add($"{section.Path}: {text} is negative");
            return fallback;
        }

        return value;
    }

    /// <summary>Reads <c>true</c> or <c>false</c>; a missing key gives <paramref name="fallback"/>.</summary>
    public static bool ReadBool(IConfigurationSection parent, string key, bool fallback, ICollection<string> problems)
    {
        var section = parent.GetSection(key);
        if (section.Value is not { } text || text.Length == 0)
        {
            return fallback;
        }

        if (!bool.TryParse(text, out var value))
        {
            problems.Add($"{section.Path}: '{text}' is not true or false");
            return fallback;
        }

        return value;
    }

    /// <summary>
    /// Reads one of the names of <paramref name="allowed"/> (all of <typeparamref name="TEnum"/>'s values
    /// when empty), case-insensitive and never a number (<see cref="Enum.TryParse{TEnum}(string, bool, out TEnum)"/>
    /// would also take <c>2</c> or <c>A,B</c>); a missing key gives <paramref name="fallback"/>. A problem
    /// says <c>'{text}' is not {what} (A, B or C)</c>.
    /// </summary>
    public static TEnum ReadEnum<TEnum>(IConfigurationSection section, TEnum fallback, string what, ICollection<string> problems, params TEnum[] allowed)
        where TEnum : struct, Enum
    {
        if (section.Value is not { Length: > 0 } text)
        {
            return fallback;
        }

        var names = allowed.Length > 0 ? allowed : Enum.GetValues<TEnum>();
        foreach (var value in names)
        {
            if (string.Equals(text, value.ToString(), StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        var list = names.Select(n => n.ToString()).ToArray();
        problems.Add($"{section.Path}: '{text}' is not {what} ({string.Join(", ", list[..^1])} or {list[^1]})");
        return fallback;
    }

    /// <summary>Reads a string; a missing or empty key gives <paramref name="fallback"/>.</summary>
    public static string? ReadString(IConfigurationSection parent, string key, string? fallback = null) =>
        parent.GetSection(key).Value is { Length: > 0 } text ? text : fallback;
}

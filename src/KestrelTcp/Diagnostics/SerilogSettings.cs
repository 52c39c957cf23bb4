using System.Globalization;
using Serilog;
using Serilog.Configuration;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;
using Serilog.Formatting.Json;
using Serilog.Sinks.SystemConsole.Themes;
using static KestrelTcp.Configuration.ConfigurationReading;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// The <c>Serilog</c> section, read by hand in the layout Serilog.Settings.Configuration documents
/// (<c>MinimumLevel</c> with <c>Default</c> and <c>Override</c>, <c>WriteTo</c> entries with
/// <c>Name</c> and <c>Args</c>, <c>Enrich</c>, <c>Properties</c>, <c>Using</c>) for the sinks this
/// build ships: <c>Console</c>, <c>File</c>, <c>Debug</c> and <c>Async</c> around any of them.
/// Serilog.Settings.Configuration finds sinks by reflection over the loaded assemblies, which a
/// trimmed, ahead-of-time compiled server cannot do; here every key is known, so a misspelt key, an
/// unknown sink or a malformed value stops start-up with a message naming the key, like the rest of
/// the configuration.
/// </summary>
internal sealed class SerilogSettings
{
    /// <summary>The assemblies <c>Using</c> may name: the ones whose sinks and formatters are read here.</summary>
    internal static readonly string[] ShippedAssemblies =
        ["Serilog", "Serilog.Sinks.Console", "Serilog.Sinks.File", "Serilog.Sinks.Debug", "Serilog.Sinks.Async", "Serilog.Formatting.Compact"];

    private static readonly string[] SinkNames = ["Console", "File", "Debug", "Async"];

    private readonly List<Action<LoggerSinkConfiguration>> _sinks = [];

    /// <summary>No <c>Serilog</c> section.</summary>
    public static SerilogSettings Empty { get; } = new();

    /// <summary><c>MinimumLevel</c> (or <c>MinimumLevel:Default</c>), when given.</summary>
    public LogEventLevel? MinimumLevel { get; private set; }

    /// <summary><c>MinimumLevel:Override:{source}</c>, in configuration order.</summary>
    public List<KeyValuePair<string, LogEventLevel>> Overrides { get; } = [];

    /// <summary><c>Properties:{name}</c>: added to every event.</summary>
    public List<KeyValuePair<string, string>> Properties { get; } = [];

    /// <summary>Whether <c>WriteTo</c> is given: its sinks then replace the server's own console.</summary>
    public bool HasSinks => _sinks.Count > 0;

    /// <summary>The names of the configured sinks, outermost first (<c>Async(File)</c> for a wrapped one).</summary>
    public List<string> SinkDescriptions { get; } = [];

    /// <summary>Reads the section; every problem is added to <paramref name="problems"/> with its full key.</summary>
    public static SerilogSettings Read(IConfigurationSection section, ICollection<string> problems)
    {
        var settings = new SerilogSettings();
        if (!section.Exists())
        {
            return settings;
        }

        foreach (var child in section.GetChildren())
        {
            switch (child.Key.ToUpperInvariant())
            {
                case "MINIMUMLEVEL":
                    settings.ReadMinimumLevel(child, problems);
                    break;
                case "WRITETO":
                    foreach (var entry in child.GetChildren())
                    {
                        if (ReadSink(entry, problems, out var description) is { } sink)
                        {
                            settings._sinks.Add(sink);
                            settings.SinkDescriptions.Add(description);
                        }
                    }

                    break;
                case "ENRICH":
                    foreach (var entry in Entries(child))
                    {
                        var name = entry.Value ?? entry.GetSection("Name").Value;
                        if (!string.Equals(name, "FromLogContext", StringComparison.OrdinalIgnoreCase))
                        {
                            problems.Add($"{entry.Path}: '{name}' is not an enricher of this build (FromLogContext, which is always on; add fixed values under Serilog:Properties)");
                        }
                    }

                    break;
                case "PROPERTIES":
                    foreach (var property in child.GetChildren())
                    {
                        settings.Properties.Add(new(property.Key, property.Value ?? ""));
                    }

                    break;
                case "USING":
                    foreach (var entry in Entries(child))
                    {
                        if (!ShippedAssemblies.Contains(entry.Value, StringComparer.OrdinalIgnoreCase))
                        {
                            problems.Add($"{entry.Path}: '{entry.Value}' is not part of this build (its sinks: {string.Join(", ", ShippedAssemblies)})");
                        }
                    }

                    break;
                default:
                    problems.Add($"{child.Path}: not a setting this build reads (MinimumLevel, WriteTo, Enrich, Properties, Using)");
                    break;
            }
        }

        return settings;
    }

    /// <summary>Applies the levels, properties and sinks to <paramref name="logger"/>; without sinks, adds none.</summary>
    public LoggerConfiguration Apply(LoggerConfiguration logger)
    {
        if (MinimumLevel is { } level)
        {
            logger.MinimumLevel.Is(level);
        }

        foreach (var (source, overrideLevel) in Overrides)
        {
            logger.MinimumLevel.Override(source, overrideLevel);
        }

        foreach (var (name, value) in Properties)
        {
            logger.Enrich.WithProperty(name, value);
        }

        foreach (var sink in _sinks)
        {
            sink(logger.WriteTo);
        }

        return logger;
    }

    private void ReadMinimumLevel(IConfigurationSection section, ICollection<string> problems)
    {
        if (section.Value is not null)
        {
            MinimumLevel = ReadLevel(section, problems);
            return;
        }

        foreach (var child in section.GetChildren())
        {
            switch (child.Key.ToUpperInvariant())
            {
                case "DEFAULT":
                    MinimumLevel = ReadLevel(child, problems);
                    break;
                case "OVERRIDE":
                    foreach (var source in child.GetChildren())
                    {
                        if (ReadLevel(source, problems) is { } level)
                        {
                            Overrides.Add(new(source.Key, level));
                        }
                    }

                    break;
                default:
                    problems.Add($"{child.Path}: not a setting this build reads (Default, Override)");
                    break;
            }
        }
    }

    private static LogEventLevel? ReadLevel(IConfigurationSection section, ICollection<string> problems)
    {
        if (section.Value is not { Length: > 0 })
        {
            problems.Add($"{section.Path}: missing (a level: {string.Join(", ", Enum.GetNames<LogEventLevel>())})");
            return null;
        }

        var before = problems.Count;
        var level = ReadEnum(section, LogEventLevel.Information, "a level", problems);
        return problems.Count == before ? level : null;
    }

    /// <summary>The entries of a list that is either an array (<c>0</c>, <c>1</c>, …) or a single string.</summary>
    private static IEnumerable<IConfigurationSection> Entries(IConfigurationSection section) =>
        section.Value is not null ? [section] : section.GetChildren();

    /// <summary>One <c>WriteTo</c> entry: <c>"Console"</c>, or <c>{ "Name": "File", "Args": { … } }</c>.</summary>
    private static Action<LoggerSinkConfiguration>? ReadSink(IConfigurationSection entry, ICollection<string> problems, out string description)
    {
        var name = entry.Value ?? entry.GetSection("Name").Value;
        description = name ?? "";
        foreach (var key in entry.Value is null ? entry.GetChildren() : [])
        {
            if (!key.Key.Equals("Name", StringComparison.OrdinalIgnoreCase) && !key.Key.Equals("Args", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"{key.Path}: not part of a sink (Name, Args)");
            }
        }

        var args = new SinkArguments(entry.GetSection("Args"), problems);
        Action<LoggerSinkConfiguration>? sink;
        switch (name?.ToUpperInvariant())
        {
            case null or "":
                problems.Add($"{entry.Path}:Name: missing (a sink: {string.Join(", ", SinkNames)})");
                return null;
            case "CONSOLE":
                sink = ReadConsole(args);
                break;
            case "FILE":
                sink = ReadFile(args);
                break;
            case "DEBUG":
                sink = ReadDebug(args);
                break;
            case "ASYNC":
                sink = ReadAsync(args, problems, ref description);
                break;
            default:
                problems.Add($"{entry.Path}{(entry.Value is null ? ":Name" : "")}: '{name}' is not a sink of this build ({string.Join(", ", SinkNames)})");
                return null;
        }

        args.ReportUnread();
        return args.Failed ? null : sink;
    }

    private static Action<LoggerSinkConfiguration> ReadConsole(SinkArguments args)
    {
        var minimum = args.Level("restrictedToMinimumLevel") ?? LogEventLevel.Verbose;
        var standardError = args.Level("standardErrorFromLevel");
        var formatter = args.Formatter("formatter");
        var template = args.String("outputTemplate");
        var theme = args.Theme("theme");
        var applyTheme = args.Bool("applyThemeToRedirectedOutput") ?? false;
        if (formatter is not null)
        {
            args.Exclusive("formatter", "outputTemplate", template);
            return sink => sink.Console(formatter(), minimum, standardErrorFromLevel: standardError);
        }

        return sink => sink.Console(minimum, template ?? KestrelTcpLogging.TextTemplate, CultureInfo.InvariantCulture,
            standardErrorFromLevel: standardError, theme: theme, applyThemeToRedirectedOutput: applyTheme);
    }

    private static Action<LoggerSinkConfiguration> ReadFile(SinkArguments args)
    {
        var path = args.String("path");
        if (path is null)
        {
            args.Missing("path", "the file to write; relative to the working directory");
        }

        var minimum = args.Level("restrictedToMinimumLevel") ?? LogEventLevel.Verbose;
        var formatter = args.Formatter("formatter");
        var template = args.String("outputTemplate");
        var sizeLimit = args.Count("fileSizeLimitBytes", 1L << 30, long.MaxValue, "bytes");
        var rolling = args.Choice("rollingInterval", RollingInterval.Infinite, "a rolling interval");
        var rollOnSize = args.Bool("rollOnFileSizeLimit") ?? false;
        var retained = (int?)args.Count("retainedFileCountLimit", 31, int.MaxValue, "files");
        var shared = args.Bool("shared") ?? false;
        var buffered = args.Bool("buffered") ?? false;
        var flush = args.Interval("flushToDiskInterval");
        if (shared && buffered)
        {
            args.Problem("buffered", "a shared file cannot be buffered (Serilog.Sinks.File)");
        }

        if (formatter is not null)
        {
            args.Exclusive("formatter", "outputTemplate", template);
            return sink => sink.File(formatter(), path!, minimum, sizeLimit, buffered: buffered, shared: shared,
                flushToDiskInterval: flush, rollingInterval: rolling, rollOnFileSizeLimit: rollOnSize, retainedFileCountLimit: retained);
        }

        return sink => sink.File(path!, minimum, template ?? KestrelTcpLogging.TextTemplate, CultureInfo.InvariantCulture, sizeLimit, buffered: buffered, shared: shared,
            flushToDiskInterval: flush, rollingInterval: rolling, rollOnFileSizeLimit: rollOnSize, retainedFileCountLimit: retained);
    }

    private static Action<LoggerSinkConfiguration> ReadDebug(SinkArguments args)
    {
        var minimum = args.Level("restrictedToMinimumLevel") ?? LogEventLevel.Verbose;
        var formatter = args.Formatter("formatter");
        var template = args.String("outputTemplate");
        if (formatter is not null)
        {
            args.Exclusive("formatter", "outputTemplate", template);
            return sink => sink.Debug(formatter(), minimum);
        }

        return sink => sink.Debug(minimum, template ?? KestrelTcpLogging.TextTemplate, CultureInfo.InvariantCulture);
    }

    private static Action<LoggerSinkConfiguration> ReadAsync(SinkArguments args, ICollection<string> problems, ref string description)
    {
        var bufferSize = args.Int("bufferSize", 10_000, min: 1);
        var blockWhenFull = args.Bool("blockWhenFull") ?? false;
        var inner = new List<Action<LoggerSinkConfiguration>>();
        var names = new List<string>();
        if (args.Section("configure") is not { } configure)
        {
            args.Missing("configure", "the sinks to run in the background, as a WriteTo list");
        }
        else
        {
            foreach (var entry in configure.GetChildren())
            {
                if (ReadSink(entry, problems, out var name) is { } sink)
                {
                    inner.Add(sink);
                    names.Add(name);
                }
            }
        }

        description = $"Async({string.Join(", ", names)})";
        return sink => sink.Async(
            wrapped =>
            {
                foreach (var each in inner)
                {
                    each(wrapped);
                }
            },
            bufferSize,
            blockWhenFull);
    }

    /// <summary>
    /// The <c>Args</c> of one sink: each read marks its key, so that what is left at the end is a
    /// key no sink has (<see cref="ReportUnread"/>); names match case-insensitively, as Serilog's own reader does.
    /// </summary>
    private sealed class SinkArguments(IConfigurationSection args, ICollection<string> problems)
    {
        private readonly HashSet<string> _read = new(StringComparer.OrdinalIgnoreCase);
        private readonly int _problemsBefore = problems.Count;

        public bool Failed => problems.Count > _problemsBefore;

        public void ReportUnread()
        {
            foreach (var child in args.GetChildren())
            {
                if (!_read.Contains(child.Key))
                {
                    problems.Add($"{child.Path}: not an argument of this sink ({string.Join(", ", _read)})");
                }
            }
        }

        public void Problem(string key, string text) => problems.Add($"{args.GetSection(key).Path}: {text}");

        public void Missing(string key, string what) => problems.Add($"{args.GetSection(key).Path}: missing ({what})");

        public void Exclusive(string key, string other, string? otherValue)
        {
            if (otherValue is not null)
            {
                Problem(other, $"not used with a {key}; give one or the other");
            }
        }

        public IConfigurationSection? Section(string key)
        {
            _read.Add(key);
            var section = args.GetSection(key);
            return section.Exists() ? section : null;
        }

        public string? String(string key) => Section(key)?.Value is { Length: > 0 } text ? text : null;

        public bool? Bool(string key) => Section(key) is null ? null : ReadBool(args, key, false, problems);

        public int Int(string key, int fallback, int min = 0) => ReadInt(Mark(key), key, fallback, min, int.MaxValue, problems);

        /// <summary>A positive count, or <c>null</c> for no limit (as Serilog.Sinks.File takes its limits).</summary>
        public long? Count(string key, long fallback, long max, string unit)
        {
            var section = Section(key);
            if (section is null)
            {
                return fallback;
            }

            if (section.Value is null or "" || section.Value.Equals("null", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            if (long.TryParse(section.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0 && value <= max)
            {
                return value;
            }

            Problem(key, $"'{section.Value}' is not a positive whole number of {unit} (at most {max}), or null for no limit");
            return fallback;
        }

        public TimeSpan? Interval(string key) => Section(key) is null ? null : ReadTimeSpan(args, key, TimeSpan.Zero, problems);

        public LogEventLevel? Level(string key) => Section(key) is { } section ? ReadLevel(section, problems) : null;

        public TEnum Choice<TEnum>(string key, TEnum fallback, string what)
            where TEnum : struct, Enum => ReadEnum(Mark(key).GetSection(key), fallback, what, problems);

        /// <summary>A formatter named by its type, as Serilog.Settings.Configuration writes it (<c>Type, Assembly</c>).</summary>
        public Func<ITextFormatter>? Formatter(string key)
        {
            if (String(key) is not { } text)
            {
                return null;
            }

            switch (TypeName(text))
            {
                case "Serilog.Formatting.Compact.CompactJsonFormatter":
                    return () => new CompactJsonFormatter();
                case "Serilog.Formatting.Compact.RenderedCompactJsonFormatter":
                    return () => new RenderedCompactJsonFormatter();
                case "Serilog.Formatting.Json.JsonFormatter":
                    return () => new JsonFormatter();
                default:
                    Problem(key, $"'{text}' is not a formatter of this build (Serilog.Formatting.Compact.CompactJsonFormatter, "
                        + "Serilog.Formatting.Compact.RenderedCompactJsonFormatter, Serilog.Formatting.Json.JsonFormatter; or an outputTemplate)");
                    return null;
            }
        }

        /// <summary>A console theme as Serilog.Settings.Configuration names a static member: <c>Serilog.Sinks.SystemConsole.Themes.AnsiConsoleTheme::Code, Serilog.Sinks.Console</c>.</summary>
        public ConsoleTheme? Theme(string key)
        {
            if (String(key) is not { } text)
            {
                return null;
            }

            var name = TypeName(text);
            var at = name.LastIndexOf("::", StringComparison.Ordinal);
            var member = at >= 0 ? name[(at + 2)..] : "";
            var type = at >= 0 ? name[..at] : name;
            type = type.StartsWith("Serilog.Sinks.SystemConsole.Themes.", StringComparison.Ordinal) ? type["Serilog.Sinks.SystemConsole.Themes.".Length..] : type;
            ConsoleTheme? theme = (type, member) switch
            {
                ("AnsiConsoleTheme", "Code") => AnsiConsoleTheme.Code,
                ("AnsiConsoleTheme", "Literate") => AnsiConsoleTheme.Literate,
                ("AnsiConsoleTheme", "Grayscale") => AnsiConsoleTheme.Grayscale,
                ("AnsiConsoleTheme", "Sixteen") => AnsiConsoleTheme.Sixteen,
                ("SystemConsoleTheme", "Literate") => SystemConsoleTheme.Literate,
                ("SystemConsoleTheme", "Grayscale") => SystemConsoleTheme.Grayscale,
                ("SystemConsoleTheme", "Colored") => SystemConsoleTheme.Colored,
                ("ConsoleTheme", "None") => ConsoleTheme.None,
                _ => null,
            };
            if (theme is null)
            {
                Problem(key, $"'{text}' is not a console theme of this build (AnsiConsoleTheme::Code, ::Literate, ::Grayscale, ::Sixteen; "
                    + "SystemConsoleTheme::Literate, ::Grayscale, ::Colored; ConsoleTheme::None)");
            }

            return theme;
        }

        private static string TypeName(string text) => (text.IndexOf(',', StringComparison.Ordinal) is var comma and >= 0 ? text[..comma] : text).Trim();

        private IConfigurationSection Mark(string key)
        {
            _read.Add(key);
            return args;
        }
    }
}

using System.Text;
using KestrelTcp.Configuration;

namespace KestrelTcp.Handlers;

/// <summary>Which quote a QOTD connection gets (<c>Options:Order</c>).</summary>
internal enum QotdOrder
{
    /// <summary>Any quote, each connection drawn at random.</summary>
    Random,

    /// <summary>The quotes in turn, the first quote first, across every connection of the listener.</summary>
    Sequential,
}

/// <summary>
/// Options of the Qotd handler (<c>KestrelTcp:Listeners:{name}:Options</c>): the quotes, from
/// <c>Quotes</c> (a list) or <c>QuotesFile</c> (a <c>fortune</c> file), else the built-in ones, and the
/// <c>Order</c>. Every quote is checked at start-up: at most <see cref="MaxQuoteLength"/> characters of
/// printable ASCII, CR and LF (RFC 865). Line endings inside a quote become <c>\r\n</c>, line endings
/// at its end are dropped (the handler ends the quote with <c>\r\n</c>), and the length is counted after
/// that, on what is sent before the final <c>\r\n</c>.
/// </summary>
internal sealed class QotdOptions : IHandlerOptions<QotdOptions>
{
    /// <summary>RFC 865: "The message should be limited to 512 characters."</summary>
    public const int MaxQuoteLength = 512;

    private const string LengthRule = "a quote is at most 512 characters, RFC 865";
    private const string CharacterRule = "a quote is printable ASCII, CR and LF, RFC 865";

    /// <summary>Served when neither <c>Quotes</c> nor <c>QuotesFile</c> is set: public-domain lines, each with its source.</summary>
    public static IReadOnlyList<string> BuiltInQuotes { get; } =
    [
        "The only thing we have to fear is fear itself.\n    -- Franklin D. Roosevelt, first inaugural address, 1933",
        "Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty, "
            + "and dedicated to the proposition that all men are created equal.\n    -- Abraham Lincoln, Gettysburg Address, 1863",
        "Brevity is the soul of wit.\n    -- William Shakespeare, Hamlet",
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n"
            + "    -- Jane Austen, Pride and Prejudice, 1813",
        "Well done is better than well said.\n    -- Benjamin Franklin, Poor Richard's Almanack, 1737",
        "Our life is frittered away by detail. Simplify, simplify.\n    -- Henry David Thoreau, Walden, 1854",
        "That's one small step for man, one giant leap for mankind.\n    -- Neil Armstrong, Apollo 11, 1969",
    ];

    /// <summary>The order quotes are served in; default <see cref="QotdOrder.Random"/>, what QOTD servers have always done.</summary>
    public QotdOrder Order { get; init; } = QotdOrder.Random;

    /// <summary>The quotes as sent: ASCII, <c>\r\n</c> line endings, each followed by <c>\r\n</c>. Never empty.</summary>
    public required IReadOnlyList<byte[]> Quotes { get; init; }

    /// <summary>
    /// Reads the options. A relative <c>QuotesFile</c> is looked for in the current directory (the
    /// host's default content root, where <c>dotnet run</c> and the container start), then next to the
    /// binary (<see cref="AppContext.BaseDirectory"/>, where <c>appsettings.json</c> is copied): handler
    /// options are read without the host's environment.
    /// </summary>
    public static QotdOptions Parse(IConfigurationSection section, ICollection<string> problems) =>
        Parse(section, problems, [Directory.GetCurrentDirectory(), AppContext.BaseDirectory]);

    /// <summary>Reads the options, looking for a relative <c>QuotesFile</c> in <paramref name="directories"/>, in order.</summary>
    internal static QotdOptions Parse(IConfigurationSection section, ICollection<string> problems, IReadOnlyList<string> directories)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(problems);
        ArgumentNullException.ThrowIfNull(directories);

        var order = QotdOrder.Random;
        if (section["Order"] is { Length: > 0 } orderText
            && (!Enum.TryParse(orderText, ignoreCase: true, out order) || !Enum.IsDefined(order) || !char.IsAsciiLetter(orderText[0])))
        {
            problems.Add($"{section.Path}:Order: '{orderText}' is not an order (Random, Sequential)");
            order = QotdOrder.Random;
        }

        var listSection = section.GetSection("Quotes");
        var listed = listSection.GetChildren().ToList();
        var file = section.GetSection("QuotesFile");
        var quotes = new List<byte[]>();
        if (listed.Count > 0 || listSection.Value is not null)
        {
            if (file.Value is { Length: > 0 })
            {
                problems.Add($"{file.Path}: set together with {listSection.Path}; give one or the other");
            }

            // A single value (an environment variable, a command-line switch) is a list of one.
            foreach (var entry in listed.Count > 0 ? listed : [listSection])
            {
                if (entry.Value is null)
                {
                    problems.Add($"{entry.Path}: not a text (a quote is a string)");
                    continue;
                }

                if (Check(entry.Value, out var quote) is { } problem)
                {
                    problems.Add($"{entry.Path}: {(problem.Index >= 0 ? $"character {Describe(entry.Value, problem.Index)} at position {problem.Index + 1} is not allowed ({CharacterRule})" : problem.Message)}");
                    continue;
                }

                quotes.Add(Encode(quote));
            }
        }
        else if (file.Value is { Length: > 0 } path)
        {
            ReadFile(file.Path, path, directories, quotes, problems);
        }
        else
        {
            quotes.AddRange(BuiltInQuotes.Select(q => Encode(Normalise(q))));
        }

        return new QotdOptions { Order = order, Quotes = quotes };
    }

    /// <summary>
    /// Splits a <c>fortune</c> file into its quotes: separated by lines holding only <c>%</c>, with
    /// <c>\n</c>, <c>\r\n</c> (or <c>\r</c>) line endings; empty entries (a leading or trailing <c>%</c>,
    /// two in a row) are skipped, blank lines around a quote dropped. Each quote comes with the file line
    /// it starts on (from 1) and its lines joined by <c>\n</c>.
    /// </summary>
    internal static List<(string Text, int Line)> SplitFortunes(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var quotes = new List<(string Text, int Line)>();
        var lines = new List<string>();
        var first = 0;
        var number = 0;
        foreach (var line in UnifyLineEndings(text).Split('\n'))
        {
            number++;
            if (line == "%")
            {
                Add();
                continue;
            }

            if (lines.Count == 0 && line.Length == 0)
            {
                continue; // blank lines before a quote
            }

            if (lines.Count == 0)
            {
                first = number;
            }

            lines.Add(line);
        }

        Add();
        return quotes;

        void Add()
        {
            while (lines.Count > 0 && lines[^1].Length == 0)
            {
                lines.RemoveAt(lines.Count - 1);
            }

            if (lines.Count > 0)
            {
                quotes.Add((string.Join('\n', lines), first));
            }

            lines.Clear();
        }
    }

    private static void ReadFile(string key, string path, IReadOnlyList<string> directories, List<byte[]> quotes, ICollection<string> problems)
    {
        string? full;
        if (Path.IsPathFullyQualified(path))
        {
            full = path;
            if (!File.Exists(full))
            {
                problems.Add($"{key}: '{path}' not found");
                return;
            }
        }
        else
        {
            var candidates = directories.Select(d => Path.GetFullPath(path, d)).Distinct(StringComparer.Ordinal).ToList();
            full = candidates.FirstOrDefault(File.Exists);
            if (full is null)
            {
                problems.Add($"{key}: '{path}' not found (looked for {string.Join(", ", candidates)})");
                return;
            }
        }

        string text;
        try
        {
            text = File.ReadAllText(full, Encoding.UTF8);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            problems.Add($"{key}: '{full}' cannot be read ({ex.Message})");
            return;
        }

        var entries = SplitFortunes(text);
        if (entries.Count == 0)
        {
            problems.Add($"{key}: '{full}' holds no quotes (a fortune file: quotes separated by lines holding only %)");
            return;
        }

        for (var i = 0; i < entries.Count; i++)
        {
            var (entry, line) = entries[i];
            if (Check(entry, out var quote) is not { } problem)
            {
                quotes.Add(Encode(quote));
                continue;
            }

            var where = $"{key}: {full}: quote {i + 1} (line {line})";
            if (problem.Index < 0)
            {
                problems.Add($"{where}: {problem.Message}");
            }
            else
            {
                // The entry's lines are the file's, joined by \n: the bad character's own line and column.
                var before = entry.AsSpan(0, problem.Index);
                var badLine = line + before.Count('\n');
                var column = problem.Index - before.LastIndexOf('\n');
                problems.Add($"{where}: character {Describe(entry, problem.Index)} on line {badLine}, column {column} is not allowed ({CharacterRule})");
            }
        }
    }

    /// <summary>Checks a quote as configured; gives it normalised, or the problem (with the index of a bad character, else -1).</summary>
    private static (int Index, string Message)? Check(string text, out string quote)
    {
        quote = "";
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c is not ((>= ' ' and <= '~') or '\r' or '\n'))
            {
                return (i, "");
            }
        }

        quote = Normalise(text);
        if (quote.Length == 0)
        {
            return (-1, "empty (a quote needs at least one character)");
        }

        if (quote.Length > MaxQuoteLength)
        {
            return (-1, $"{quote.Length} characters ({LengthRule})");
        }

        return null;
    }

    /// <summary>Line endings as <c>\r\n</c>, none at the end.</summary>
    private static string Normalise(string text) => UnifyLineEndings(text).TrimEnd('\n').Replace("\n", "\r\n", StringComparison.Ordinal);

    // CR LF, LF and a lone CR, and nothing else (string.ReplaceLineEndings would also take form feeds
    // and Unicode separators for line endings, and hide them from the check).
    private static string UnifyLineEndings(string text) =>
        text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');

    private static byte[] Encode(string quote) => Encoding.ASCII.GetBytes(quote + "\r\n");

    private static string Describe(string text, int index) =>
        Rune.TryGetRuneAt(text, index, out var rune) ? $"U+{rune.Value:X4}" : $"U+{(int)text[index]:X4}";
}

using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace KestrelTcp.Tests.Deployment;

/// <summary>One Dockerfile instruction: its keyword (upper case) and the rest of its (joined) line.</summary>
public sealed record DockerInstruction(string Keyword, string Arguments)
{
    /// <summary>The arguments split on whitespace, quotes respected.</summary>
    public IReadOnlyList<string> Words => DockerfileModel.SplitWords(Arguments);

    /// <summary>Leading <c>--name=value</c> flags.</summary>
    public IReadOnlyDictionary<string, string> Flags =>
        Words.TakeWhile(w => w.StartsWith("--", StringComparison.Ordinal))
            .Select(w => w[2..].Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");

    /// <summary>The words after the leading flags.</summary>
    public IReadOnlyList<string> Operands => Words.SkipWhile(w => w.StartsWith("--", StringComparison.Ordinal)).ToList();
}

/// <summary>A build stage: its FROM and the instructions after it.</summary>
public sealed class DockerStage
{
    public required DockerInstruction From { get; init; }

    public List<DockerInstruction> Instructions { get; } = [];

    public string Image => From.Operands[0];

    public string? Name => From.Operands.Count >= 3 && From.Operands[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? From.Operands[2] : null;

    public string? Platform => From.Flags.GetValueOrDefault("platform");

    public IEnumerable<DockerInstruction> All(string keyword) => Instructions.Where(i => i.Keyword == keyword);

    public DockerInstruction? Last(string keyword) => All(keyword).LastOrDefault();

    /// <summary>The ENV this stage sets, in order (later wins).</summary>
    public IReadOnlyDictionary<string, string> Environment
    {
        get
        {
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var instruction in All("ENV"))
            {
                var words = instruction.Words;
                if (words.Count > 0 && !words[0].Contains('=', StringComparison.Ordinal))
                {
                    // Legacy form: ENV KEY value with spaces
                    env[words[0]] = instruction.Arguments.Trim()[words[0].Length..].Trim();
                    continue;
                }

                foreach (var pair in words.Select(w => w.Split('=', 2)))
                {
                    env[pair[0]] = pair[1];
                }
            }

            return env;
        }
    }
}

/// <summary>
/// Just enough of the Dockerfile grammar for the tests: continuation lines, comments, stages, and the
/// exec (JSON) form of ENTRYPOINT/CMD/HEALTHCHECK.
/// </summary>
public sealed partial class DockerfileModel
{
    public List<DockerStage> Stages { get; } = [];

    /// <summary>ARGs declared before the first FROM, with their defaults.</summary>
    public List<DockerInstruction> GlobalArgs { get; } = [];

    public DockerStage Final => Stages[^1];

    public DockerStage Stage(string name) =>
        Stages.SingleOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new Xunit.Sdk.XunitException($"the Dockerfile has no stage named '{name}'");

    public static DockerfileModel Parse(string text)
    {
        var model = new DockerfileModel();
        foreach (var line in LogicalLines(text))
        {
            var match = InstructionRegex().Match(line);
            Assert.True(match.Success, $"cannot parse Dockerfile line: {line}");
            var instruction = new DockerInstruction(match.Groups[1].Value.ToUpperInvariant(), match.Groups[2].Value.Trim());
            if (instruction.Keyword == "FROM")
            {
                model.Stages.Add(new DockerStage { From = instruction });
            }
            else if (model.Stages.Count == 0)
            {
                Assert.Equal("ARG", instruction.Keyword);
                model.GlobalArgs.Add(instruction);
            }
            else
            {
                model.Stages[^1].Instructions.Add(instruction);
            }
        }

        return model;
    }

    /// <summary>The exec form (<c>["a", "b"]</c>) of ENTRYPOINT, CMD or a HEALTHCHECK's CMD; null for the shell form.</summary>
    public static IReadOnlyList<string>? ExecForm(string arguments)
    {
        var text = arguments.Trim();
        if (!text.StartsWith('['))
        {
            return null;
        }

        return JsonSerializer.Deserialize<string[]>(text);
    }

    /// <summary>A HEALTHCHECK's options (<c>interval</c>, <c>timeout</c>, …) and its CMD's exec form.</summary>
    public static (IReadOnlyDictionary<string, string> Options, IReadOnlyList<string>? Command) HealthCheck(DockerInstruction healthcheck)
    {
        var cmd = Regex.Match(healthcheck.Arguments, @"(?:^|\s)CMD\s+(.*)$", RegexOptions.Singleline);
        Assert.True(cmd.Success, $"HEALTHCHECK without CMD: {healthcheck.Arguments}");
        var options = new DockerInstruction("HEALTHCHECK", healthcheck.Arguments[..cmd.Index]).Flags;
        return (options, ExecForm(cmd.Groups[1].Value));
    }

    /// <summary>A Docker duration (<c>15s</c>, <c>1m30s</c>, <c>500ms</c>).</summary>
    public static TimeSpan Duration(string text)
    {
        var total = TimeSpan.Zero;
        foreach (Match part in Regex.Matches(text, @"(\d+(?:\.\d+)?)(ms|s|m|h)"))
        {
            var value = double.Parse(part.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            total += part.Groups[2].Value switch
            {
                "ms" => TimeSpan.FromMilliseconds(value),
                "s" => TimeSpan.FromSeconds(value),
                "m" => TimeSpan.FromMinutes(value),
                _ => TimeSpan.FromHours(value),
            };
        }

        return total;
    }

    /// <summary>Replaces <c>$NAME</c> and <c>${NAME}</c>.</summary>
    public static string Substitute(string text, IReadOnlyDictionary<string, string> variables) =>
        VariableRegex().Replace(text, m =>
        {
            var name = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
            return variables.TryGetValue(name, out var value) ? value : throw new Xunit.Sdk.XunitException($"${name} is not defined");
        });

    public static IReadOnlyList<string> SplitWords(string text)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        char? quote = null;
        foreach (var c in text)
        {
            if (quote is not null)
            {
                if (c == quote)
                {
                    quote = null;
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (c is '"' or '\'')
            {
                quote = c;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }

    private static IEnumerable<string> LogicalLines(string text)
    {
        var pending = new StringBuilder();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            var trimmed = line.TrimStart();
            if (trimmed.StartsWith('#') || (trimmed.Length == 0 && pending.Length == 0))
            {
                // Comment lines are dropped, even inside a continued instruction (as Docker does).
                continue;
            }

            if (line.TrimEnd().EndsWith('\\'))
            {
                pending.Append(line.TrimEnd()[..^1]).Append(' ');
                continue;
            }

            pending.Append(line);
            yield return pending.ToString().Trim();
            pending.Clear();
        }

        if (pending.Length > 0)
        {
            yield return pending.ToString().Trim();
        }
    }

    [GeneratedRegex(@"^([A-Za-z]+)\s*(.*)$", RegexOptions.Singleline)]
    private static partial Regex InstructionRegex();

    [GeneratedRegex(@"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")]
    private static partial Regex VariableRegex();
}

/// <summary>
/// The .dockerignore rules as Docker applies them: patterns anchored at the context root, <c>*</c> and
/// <c>?</c> within a path segment, <c>**</c> across segments, <c>!</c> re-includes, the last match wins,
/// and a path is excluded when it or one of its parent folders matches.
/// </summary>
internal sealed class DockerIgnore
{
    private readonly List<(Regex Pattern, bool Exclude)> rules = [];

    public DockerIgnore(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var exclude = !line.StartsWith('!');
            var pattern = line.TrimStart('!').Trim().Trim('/');
            rules.Add((new Regex("^" + ToRegex(pattern) + "$"), exclude));
        }
    }

    public static DockerIgnore Load() =>
        new(File.Exists(DeploymentFiles.PathOf(".dockerignore")) ? DeploymentFiles.Read(".dockerignore") : "");

    /// <summary>Whether a context path (<c>src/KestrelTcp/obj/x</c>, forward slashes) stays out of the build context.</summary>
    public bool IsExcluded(string relativePath)
    {
        var parts = relativePath.Replace('\\', '/').Trim('/').Split('/');
        var excluded = false;
        foreach (var (pattern, exclude) in rules)
        {
            for (var n = 1; n <= parts.Length; n++)
            {
                if (pattern.IsMatch(string.Join('/', parts.Take(n))))
                {
                    excluded = exclude;
                    break;
                }
            }
        }

        return excluded;
    }

    private static string ToRegex(string pattern)
    {
        var regex = new StringBuilder();
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                var slash = i + 2 < pattern.Length && pattern[i + 2] == '/';
                regex.Append(slash ? "(?:.*/)?" : ".*");
                i += slash ? 2 : 1;
            }
            else
            {
                regex.Append(c switch
                {
                    '*' => "[^/]*",
                    '?' => "[^/]",
                    _ => Regex.Escape(c.ToString()),
                });
            }
        }

        return regex.ToString();
    }
}

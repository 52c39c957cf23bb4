using System.Text;
using KestrelTcp.Configuration;

namespace KestrelTcp.Handlers;

/// <summary>Options of the Greeting handler (<c>KestrelTcp:Listeners:{name}:Options</c>).</summary>
internal sealed class GreetingOptions : IHandlerOptions<GreetingOptions>
{
    /// <summary>The default banner: the classic tutorial's welcome line.</summary>
    public const string DefaultBanner = "Welcome! You have connected to {LocalAddress} on port {LocalPort}\r\n";

    /// <summary>The default reply to a line.</summary>
    public const string DefaultReply = "Hello, {Line}!\r\n";

    /// <summary>The default answer to an exit command.</summary>
    public const string DefaultFarewell = "Goodbye!\r\n";

    /// <summary>Written on connect.</summary>
    public required MessageTemplate Banner { get; init; }

    /// <summary>Written for every line that is not an exit command; may use <c>{Line}</c>.</summary>
    public required MessageTemplate Reply { get; init; }

    /// <summary>Written for an exit command, before the connection closes.</summary>
    public required MessageTemplate Farewell { get; init; }

    /// <summary>Lines (compared ASCII case-insensitively) that end the conversation; default quit, exit, bye.</summary>
    public required IReadOnlyList<byte[]> ExitCommands { get; init; }

    /// <inheritdoc />
    public static GreetingOptions Parse(IConfigurationSection section, ICollection<string> problems)
    {
        ArgumentNullException.ThrowIfNull(section);
        MessageTemplate Template(string key, string fallback, bool allowLine) =>
            MessageTemplate.Parse(section[key] ?? fallback, allowLine, $"{section.Path}:{key}", problems);

        // A list, one comma-separated value, or an empty value for none at all (configuration cannot
        // hold an empty list: "ExitCommands": [] reads as if the key were absent, which means the defaults).
        var commandsSection = section.GetSection("ExitCommands");
        var commands = commandsSection.GetChildren().Select(c => c.Value ?? "").ToList();
        if (commands.Count == 0)
        {
            commands = commandsSection.Value is { } single ? [.. single.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)] : ["quit", "exit", "bye"];
        }

        foreach (var command in commands.Where(c => c.Length == 0 || !System.Text.Ascii.IsValid(c) || c.Any(char.IsControl)))
        {
            problems.Add($"{commandsSection.Path}: '{command}' is not a usable exit command (printable ASCII, not empty)");
        }

        return new GreetingOptions
        {
            Banner = Template("Banner", DefaultBanner, allowLine: false),
            Reply = Template("Reply", DefaultReply, allowLine: true),
            Farewell = Template("Farewell", DefaultFarewell, allowLine: false),
            ExitCommands = [.. commands.Select(Encoding.ASCII.GetBytes)],
        };
    }
}

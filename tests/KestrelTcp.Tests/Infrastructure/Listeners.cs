using KestrelTcp.Configuration;
using KestrelTcp.Handlers;
using Microsoft.Extensions.Configuration;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>Listener definitions for unit tests, with handler options parsed as at start-up.</summary>
public static class Listeners
{
    public static ListenerDefinition Greeting(int maxLineLength = 8192, params (string Key, string? Value)[] options) =>
        Create("greeting", "Greeting", maxLineLength, section => GreetingOptions.Parse(section, Problems()), options);

    public static ListenerDefinition Time(params (string Key, string? Value)[] options) =>
        Create("time", "Time", 8192, section => TimeHandlerOptions.Parse(section, Problems()), options);

    private static ListenerDefinition Create(string name, string handler, int maxLineLength, Func<IConfigurationSection, object> parse, (string Key, string? Value)[] options)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(options.Select(o => new KeyValuePair<string, string?>($"KestrelTcp:Listeners:{name}:Options:{o.Key}", o.Value)))
            .Build();
        return new ListenerDefinition
        {
            Name = name,
            HandlerName = handler,
            Port = 0,
            Limits = new ConnectionLimits { MaxLineLength = maxLineLength },
            HandlerOptions = parse(configuration.GetSection($"KestrelTcp:Listeners:{name}:Options")),
        };
    }

    private static ICollection<string> Problems() => new ThrowOnProblem();

    private sealed class ThrowOnProblem : System.Collections.ObjectModel.Collection<string>
    {
        protected override void InsertItem(int index, string item) => throw new InvalidOperationException(item);
    }
}

using KestrelTcp.Configuration;
using KestrelTcp.Handlers;
using Microsoft.Extensions.Configuration;

namespace KestrelTcp.Tests.Handlers;

/// <summary>Listener definitions for the RFC 863/864/865 handlers and Info, their options parsed as at start-up.</summary>
internal static class ServiceListeners
{
    public static ListenerDefinition Discard() => new() { Name = "discard", HandlerName = "Discard", Port = 0 };

    public static ListenerDefinition Info(string name = "info") => new() { Name = name, HandlerName = "Info", Port = 0 };

    public static ListenerDefinition Chargen(params (string Key, string? Value)[] options) =>
        Create("chargen", "Chargen", Section("chargen", options), section => ChargenOptions.Parse(section, new ThrowOnProblem()));

    public static ListenerDefinition Qotd(params (string Key, string? Value)[] options) =>
        Create("qotd", "Qotd", Section("qotd", options), section => QotdOptions.Parse(section, new ThrowOnProblem()));

    /// <summary>The <c>Options</c> section of listener <paramref name="name"/> holding <paramref name="options"/>.</summary>
    public static IConfigurationSection Section(string name, params (string Key, string? Value)[] options) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(options.Select(o => new KeyValuePair<string, string?>($"KestrelTcp:Listeners:{name}:Options:{o.Key}", o.Value)))
            .Build()
            .GetSection($"KestrelTcp:Listeners:{name}:Options");

    private static ListenerDefinition Create(string name, string handler, IConfigurationSection section, Func<IConfigurationSection, object> parse) =>
        new() { Name = name, HandlerName = handler, Port = 0, HandlerOptions = parse(section) };

    private sealed class ThrowOnProblem : System.Collections.ObjectModel.Collection<string>
    {
        protected override void InsertItem(int index, string item) => throw new InvalidOperationException(item);
    }
}

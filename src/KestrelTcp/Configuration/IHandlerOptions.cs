namespace KestrelTcp.Configuration;

/// <summary>
/// Options of a handler, read from a listener's <c>Options</c> section at start-up. Parsing reports
/// every problem with its full key instead of throwing, so one run shows them all.
/// </summary>
public interface IHandlerOptions<TSelf> where TSelf : class, IHandlerOptions<TSelf>
{
    /// <summary>Reads the options from <paramref name="section"/>, adding one message per problem to <paramref name="problems"/>.</summary>
    static abstract TSelf Parse(IConfigurationSection section, ICollection<string> problems);
}

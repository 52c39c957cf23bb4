namespace KestrelTcp.Diagnostics;

/// <summary>
/// Keeps Kestrel's per-connection log scope (a single <c>ConnectionId</c> property, opened for the
/// whole life of every connection) out of Serilog. Serilog holds a scope object, an enricher stack
/// and a new async-local context for it: about 240 bytes on every held connection, which 10,000 held
/// connections pay in full (docs/benchmarks.md). Every KestrelTcp connection event names its
/// connection already; any other scope, and every log event, passes through unchanged. Serilog
/// has no switch for this and Kestrel opens the scope whenever its category is enabled at all, so
/// the logger factory that Serilog.AspNetCore registers is wrapped.
/// </summary>
internal sealed class KestrelScopeFilter(ILoggerFactory inner) : ILoggerFactory
{
    private const string KestrelCategory = "Microsoft.AspNetCore.Server.Kestrel";

    /// <summary>Wraps the <see cref="ILoggerFactory"/> registered last (Serilog's) in the filter.</summary>
    public static void Apply(IServiceCollection services)
    {
        var registered = services.Last(d => d.ServiceType == typeof(ILoggerFactory));
        services.Remove(registered);
        services.AddSingleton<ILoggerFactory>(provider => new KestrelScopeFilter(registered switch
        {
            { ImplementationFactory: { } factory } => (ILoggerFactory)factory(provider),
            { ImplementationInstance: ILoggerFactory instance } => instance,
            _ => (ILoggerFactory)ActivatorUtilities.CreateInstance(provider, registered.ImplementationType!),
        }));
    }

    public ILogger CreateLogger(string categoryName)
    {
        var logger = inner.CreateLogger(categoryName);
        return categoryName.StartsWith(KestrelCategory, StringComparison.Ordinal) ? new Filtered(logger) : logger;
    }

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose() => inner.Dispose();

    /// <summary>Kestrel's connection scope: one <c>ConnectionId</c> pair.</summary>
    internal static bool IsConnectionScope<TState>(TState state) =>
        state is IReadOnlyList<KeyValuePair<string, object>> { Count: 1 } pairs && pairs[0].Key == "ConnectionId";

    private sealed class Filtered(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => IsConnectionScope(state) ? null : inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner.Log(logLevel, eventId, state, exception, formatter);
    }
}

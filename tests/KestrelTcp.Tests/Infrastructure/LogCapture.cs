using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>One captured log event with its structured properties.</summary>
public sealed record CapturedLog(string Category, LogLevel Level, EventId EventId, string Message, IReadOnlyDictionary<string, object?> Properties, Exception? Exception)
{
    public object? this[string property] => Properties.TryGetValue(property, out var value) ? value : null;
}

/// <summary>
/// An <see cref="ILoggerProvider"/> that records every event at every level. Added next to Serilog
/// in the services callback; Microsoft.Extensions.Logging hands each event to every provider.
/// </summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLog> _events = new();

    public IReadOnlyCollection<CapturedLog> Events => _events;

    public IEnumerable<CapturedLog> Named(string eventName) => _events.Where(e => e.EventId.Name == eventName);

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _events);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<CapturedLog> events) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var properties = state is IReadOnlyList<KeyValuePair<string, object?>> list
                ? list.ToDictionary(p => p.Key, p => p.Value)
                : new Dictionary<string, object?>();
            events.Enqueue(new CapturedLog(category, logLevel, eventId, formatter(state, exception), properties, exception));
        }
    }
}

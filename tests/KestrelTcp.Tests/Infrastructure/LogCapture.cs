using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>One captured log event with its structured properties.</summary>
public sealed record CapturedLog(string Category, LogLevel Level, EventId EventId, string Message, IReadOnlyDictionary<string, object?> Properties, Exception? Exception)
{
    public object? this[string property] => Properties.TryGetValue(property, out var value) ? value : null;
}

/// <summary>
/// An <see cref="ILoggerProvider"/> that records every event Serilog lets through (the server's
/// Serilog writes to the other registered providers: writeToProviders). Added in the services
/// callback, with <see cref="TestServer.VerboseLogs"/> in the settings to see Debug events too.
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
            events.Enqueue(new CapturedLog(category, logLevel, eventId, formatter(state, exception), SerilogProperties.Of(state), exception));
        }
    }
}

using Serilog.Events;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>The structured properties of an event a test provider received: from Serilog's <see cref="LogEvent"/>, or a plain state list.</summary>
public static class SerilogProperties
{
    public static IReadOnlyDictionary<string, object?> Of<TState>(TState state) => state switch
    {
        LogEvent logEvent => logEvent.Properties.ToDictionary(p => p.Key, p => Value(p.Value)),
        IReadOnlyList<KeyValuePair<string, object?>> list => list.ToDictionary(p => p.Key, p => p.Value),
        _ => new Dictionary<string, object?>(),
    };

    private static object? Value(LogEventPropertyValue value) => value switch
    {
        ScalarValue scalar => scalar.Value,
        _ => value.ToString(),
    };
}

namespace KestrelTcp.Configuration;

/// <summary>How the server logs: <c>KestrelTcp:Logging:*</c> (everything else is the <c>Serilog</c> section).</summary>
internal sealed record LoggingOptions
{
    /// <summary>
    /// The console's format (<c>ConsoleFormat</c>): <c>Text</c> (the default: one readable line per
    /// event, for people at a terminal) or <c>Json</c> (one compact-JSON object per line, with the
    /// event's properties as fields: what a container's log collector wants).
    /// </summary>
    public ConsoleFormat ConsoleFormat { get; init; } = ConsoleFormat.Text;

    /// <summary>The <c>Serilog</c> section: levels, properties and sinks (<see cref="Diagnostics.SerilogSettings"/>).</summary>
    public Diagnostics.SerilogSettings Serilog { get; init; } = Diagnostics.SerilogSettings.Empty;
}

/// <summary>The console formats.</summary>
internal enum ConsoleFormat
{
    /// <summary>Plain text lines.</summary>
    Text,

    /// <summary>Serilog's compact JSON, one event per line.</summary>
    Json,
}

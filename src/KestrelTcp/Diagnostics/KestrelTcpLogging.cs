using System.Globalization;
using KestrelTcp.Configuration;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;
using Serilog.Sinks.Async;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// Serilog, wired as Serilog.AspNetCore documents it for a .NET host: a bootstrap logger for what
/// happens before the host is built (invalid configuration is written through it, one plain line
/// per problem on stderr), then <c>AddSerilog</c> with the <c>Serilog</c> section as read at start-up
/// (<see cref="SerilogSettings"/>) and the host's services. Without a <c>Serilog:WriteTo</c> the console sits behind Serilog's async sink,
/// so a slow terminal or pipe never blocks a connection; what that sink has to drop is counted and
/// reported by <see cref="LogDropReporter"/>. <c>KestrelTcp:Logging:ConsoleFormat</c> picks plain
/// text (people at a terminal) or one compact-JSON event per line (containers).
/// </summary>
internal static class KestrelTcpLogging
{
    /// <summary>The console's text line; also the default template of a configured text sink (<see cref="SerilogSettings"/>).</summary>
    internal const string TextTemplate = "[{Timestamp:yyyy-MM-dd HH:mm:ss.fff} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}";

    /// <summary>The logger before the host exists: every event a plain line on stderr, so stdout carries nothing but the server's own log.</summary>
    public static Serilog.ILogger CreateBootstrapLogger() => new LoggerConfiguration()
        .MinimumLevel.Information()
        .WriteTo.Console(outputTemplate: "{Message:lj}{NewLine}{Exception}", standardErrorFromLevel: LogEventLevel.Verbose,
            formatProvider: CultureInfo.InvariantCulture)
        .CreateBootstrapLogger();

    public static void AddKestrelTcpLogging(this WebApplicationBuilder builder)
    {
        // Serilog is the only console writer; other providers added later (a test's capture, an
        // exporter) still get every event through writeToProviders.
        builder.Logging.ClearProviders();
        var services = builder.Services;
        services.AddSingleton<LogDropMonitor>();
        services.AddHostedService<LogDropReporter>();
        services.AddSerilog(
            (provider, logger) => Configure(logger, provider.GetRequiredService<KestrelTcpOptions>().Logging,
                provider.GetRequiredService<LogDropMonitor>()).ReadFrom.Services(provider),
            preserveStaticLogger: true,
            writeToProviders: true);
        KestrelScopeFilter.Apply(services);
    }

    public static LoggerConfiguration Configure(LoggerConfiguration logger, LoggingOptions options, IAsyncLogEventSinkMonitor? monitor = null)
    {
        logger
            .MinimumLevel.Information()
            // Kestrel's "Now listening on: http://…" names raw TCP ports as HTTP; our own start-up events replace it.
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            // The health check service logs every Unhealthy result at Error: readiness 503 while starting and
            // draining is expected, and with probes every few seconds it would fill the log with false errors.
            .MinimumLevel.Override("Microsoft.Extensions.Diagnostics.HealthChecks", LogEventLevel.Fatal)
            .Enrich.FromLogContext();
        options.Serilog.Apply(logger);

        if (!options.Serilog.HasSinks)
        {
            logger.WriteTo.Async(
                sink =>
                {
                    if (options.ConsoleFormat == ConsoleFormat.Json)
                    {
                        sink.Console(new CompactJsonFormatter());
                    }
                    else
                    {
                        sink.Console(outputTemplate: TextTemplate, formatProvider: CultureInfo.InvariantCulture);
                    }
                },
                monitor: monitor);
        }

        return logger;
    }
}

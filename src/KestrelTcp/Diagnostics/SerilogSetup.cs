using Serilog;
using Serilog.Events;
using Serilog.Extensions.Logging;
using Serilog.Sinks.Async;

namespace KestrelTcp.Diagnostics;

/// <summary>
/// Serilog from the <c>Serilog</c> configuration section. The logger is built when the host first
/// asks for logging, so it sees the final configuration (files, environment, command line, tests).
/// Without a <c>Serilog:WriteTo</c> it writes to the console through the async sink, so that a
/// slow terminal or pipe never blocks a connection; what that sink has to drop is counted and
/// reported by <see cref="LogDropReporter"/>.
/// </summary>
internal static class SerilogSetup
{
    public static ILoggingBuilder AddKestrelTcpSerilog(this ILoggingBuilder logging)
    {
        logging.ClearProviders();
        // Serilog's own minimum level decides; Microsoft.Extensions.Logging passes everything on.
        logging.SetMinimumLevel(LogLevel.Trace);
        logging.Services.AddSingleton<LogDropMonitor>();
        logging.Services.AddHostedService<LogDropReporter>();
        logging.Services.AddSingleton<ILoggerProvider>(sp => new KestrelScopeFilter(new SerilogLoggerProvider(
            CreateLogger(sp.GetRequiredService<IConfiguration>(), sp.GetRequiredService<LogDropMonitor>()), dispose: true)));
        return logging;
    }

    public static Serilog.ILogger CreateLogger(IConfiguration configuration, IAsyncLogEventSinkMonitor? monitor = null)
    {
        var logger = new LoggerConfiguration()
            .MinimumLevel.Information()
            // Kestrel's "Now listening on: http://…" names raw TCP ports as HTTP; our own start-up events replace it.
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            // The health check service logs every Unhealthy result at Error: readiness 503 while starting and
            // draining is expected, and with probes every few seconds it would fill the log with false errors.
            .MinimumLevel.Override("Microsoft.Extensions.Diagnostics.HealthChecks", LogEventLevel.Fatal)
            .Enrich.FromLogContext()
            .ReadFrom.Configuration(configuration);

        if (!configuration.GetSection("Serilog:WriteTo").Exists())
        {
            logger.WriteTo.Async(sink => sink.Console(
                outputTemplate: "[{Timestamp:yyyy-MM-dd HH:mm:ss.fff} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}",
                formatProvider: System.Globalization.CultureInfo.InvariantCulture), monitor: monitor);
        }

        return logger.CreateLogger();
    }
}

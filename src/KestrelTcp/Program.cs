using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;

if (HealthCheckCommand.IsRequested(args))
{
    return await HealthCheckCommand.RunAsync(args);
}

// Until the host is built (and for any start-up failure), Serilog writes plain lines to stderr.
Serilog.Log.Logger = KestrelTcpLogging.CreateBootstrapLogger();
try
{
    var builder = WebApplication.CreateBuilder(args);
    builder.AddKestrelTcp();
    return await builder.RunKestrelTcpAsync(app => app.UseKestrelTcpManagement());
}
finally
{
    await Serilog.Log.CloseAndFlushAsync();
}

/// <summary>The server's entry point (public for <c>WebApplicationFactory</c>).</summary>
public partial class Program;

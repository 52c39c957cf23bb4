using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;

if (HealthCheckCommand.IsRequested(args))
{
    return await HealthCheckCommand.RunAsync(args);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddKestrelTcp();

return await builder.RunKestrelTcpAsync(app => app.MapKestrelTcpManagement());

/// <summary>The server's entry point (public for <c>WebApplicationFactory</c>).</summary>
public partial class Program;

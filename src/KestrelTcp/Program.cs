using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;

if (HealthCheckCommand.IsRequested(args))
{
    return await HealthCheckCommand.RunAsync(args);
}

var builder = WebApplication.CreateBuilder(args);
builder.AddKestrelTcp();

var app = builder.Build();
app.MapKestrelTcpManagement();
return await app.RunKestrelTcpAsync();

/// <summary>The server's entry point (public for <c>WebApplicationFactory</c>).</summary>
public partial class Program;

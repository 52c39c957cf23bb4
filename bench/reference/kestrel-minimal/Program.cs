// Usage: KestrelMinimal ECHO_PORT TIME_PORT HTTP_PORT [ADDRESS]
// Echo and the ctime line of refserver.c (RFC 867) on Kestrel connection handlers, /health/ready on HTTP.
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;

var address = IPAddress.Parse(args.Length > 3 ? args[3] : "127.0.0.1");
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k =>
{
    k.Listen(address, int.Parse(args[0], CultureInfo.InvariantCulture), l => l.UseConnectionHandler<EchoHandler>());
    k.Listen(address, int.Parse(args[1], CultureInfo.InvariantCulture), l => l.UseConnectionHandler<TimeHandler>());
    k.Listen(address, int.Parse(args[2], CultureInfo.InvariantCulture));
});
var app = builder.Build();
app.MapGet("/health/ready", () => "Healthy");
app.Run();

internal sealed class EchoHandler : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        try
        {
            await connection.Transport.Input.CopyToAsync(connection.Transport.Output);
        }
        catch (ConnectionResetException)
        {
        }
    }
}

internal sealed class TimeHandler : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        // "Wed Jun 30 21:49:08 1993\r\n", as ctime(3) writes it.
        var now = DateTime.Now;
        var line = string.Create(CultureInfo.InvariantCulture, $"{now:ddd MMM} {now.Day,2} {now:HH:mm:ss yyyy}\r\n");
        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(line));
        await connection.Transport.Output.CompleteAsync();
    }
}

using System.Buffers;
using KestrelTcp.Configuration;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Tests.Hosting;

/// <summary>A user-added protocol: upper-cases every byte (a handler registered in one line and named in configuration).</summary>
public sealed class UpperCaseHandler(ListenerDefinition listener) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        await connection.Transport.Output.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"[{listener.Name}]\n"));
        while (true)
        {
            var result = await connection.Transport.Input.ReadAsync();
            // The README's example loop.
            var output = connection.Transport.Output;
            foreach (var segment in result.Buffer)
            {
                var span = output.GetSpan(segment.Length);
                for (var i = 0; i < segment.Length; i++)
                {
                    var b = segment.Span[i];
                    span[i] = b is >= (byte)'a' and <= (byte)'z' ? (byte)(b - 32) : b;
                }

                output.Advance(segment.Length);
            }

            connection.Transport.Input.AdvanceTo(result.Buffer.End);
            await connection.Transport.Output.FlushAsync();
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }
}

public class ExtensibilityTests
{
    [Fact]
    public async Task CustomHandler_RegisteredByName_ServedFromConfiguration()
    {
        await using var server = await TestServer.StartAsync(
            [TestServer.Listener("shout", "Upper")],
            services => services.AddKestrelTcpHandler<UpperCaseHandler>("Upper"));
        await using var client = await server.ConnectAsync("shout");
        Assert.Equal("[shout]\n", await client.ReadLineAsync());
        await client.SendAsync("hello, kestrel \u00e9\u0000");
        client.ShutdownSend();
        Assert.Equal("HELLO, KESTREL \u00e9\u0000", await client.ReadToEndTextAsync());
        var health = await server.JsonAsync("/health");
        Assert.Equal("Upper", health.GetProperty("listeners")[0].GetProperty("handler").GetString());
    }
}

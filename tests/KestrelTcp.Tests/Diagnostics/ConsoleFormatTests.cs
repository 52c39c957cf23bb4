using System.Net;
using System.Text.Json;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Diagnostics;

/// <summary>The console as a container's log collector and a person at a terminal see it: the real server process's stdout.</summary>
public class ConsoleFormatTests
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Json_EveryStdoutLineIsOneJsonEvent_CloseEventCarriesItsFields()
    {
        string remote;
        string output;
        using (var server = await ChildServer.StartAsync(("KestrelTcp:Logging:ConsoleFormat", "Json")))
        {
            await using (var client = await server.ConnectAsync("echo"))
            {
                remote = ((IPEndPoint)client.Socket.LocalEndPoint!).ToString();
                await client.SendAsync("hello");
                client.ShutdownSend();
                await client.ReadToEndAsync();
            }

            Assert.Equal(HttpStatusCode.OK, await server.StatusAsync("/health/ready"));
            server.Terminate();
            Assert.Equal(0, await server.WaitForExitAsync(ExitWithin));
            output = server.StandardOutput;
        }

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        var events = lines.Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.All(events, e => Assert.True(e.TryGetProperty("@t", out _) && (e.TryGetProperty("@mt", out _) || e.TryGetProperty("@m", out _)), e.ToString()));

        var closed = Assert.Single(events, e => EventName(e) == "ConnectionClosed");
        Assert.Equal("echo", closed.GetProperty("Listener").GetString());
        Assert.False(string.IsNullOrEmpty(closed.GetProperty("ConnectionId").GetString()));
        Assert.Equal(remote, closed.GetProperty("Remote").GetString());
        Assert.Equal(5, closed.GetProperty("BytesReceived").GetInt64());
        Assert.Equal(5, closed.GetProperty("BytesSent").GetInt64());
        Assert.Equal("Client", closed.GetProperty("Reason").GetString());
        Assert.False(closed.TryGetProperty("@l", out _)); // Information: the compact format leaves the level out

        Assert.Equal(3, events.Count(e => EventName(e) == "ListenerStarted"));
        Assert.Contains(events, e => EventName(e) == "DrainCompleted");
    }

    [Fact]
    public async Task Text_DefaultConsole_OneReadableLinePerEvent()
    {
        string output;
        using (var server = await ChildServer.StartAsync())
        {
            await using (var client = await server.ConnectAsync("echo"))
            {
                await client.SendAsync("hello");
                client.ShutdownSend();
                await client.ReadToEndAsync();
            }

            server.Terminate();
            Assert.Equal(0, await server.WaitForExitAsync(ExitWithin));
            output = server.StandardOutput;
        }

        var closed = Assert.Single(output.Split('\n'), l => l.Contains("KestrelTcp.Connections: Connection ", StringComparison.Ordinal));
        Assert.Matches(@"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INF\] KestrelTcp\.Connections: Connection \S+ on echo from 127\.0\.0\.1:\d+ closed \(Client\) after [\d.]+ ms, 5 bytes in, 5 bytes out$", closed);
        Assert.DoesNotContain("{", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_InvalidConfiguration_PlainLinesOnStderrNothingOnStdoutExit2()
    {
        var (arguments, _, _) = BuiltServer.FreePortArguments();
        arguments.AddRange(["--KestrelTcp:Logging:ConsoleFormat=Json", "--KestrelTcp:Listeners:echo:Port=70000"]);
        using var server = BuiltServer.Start(arguments);
        Assert.Equal(2, await server.WaitForExitAsync(ExitWithin));
        Assert.Equal("", server.StandardOutput);
        Assert.Equal(
            ["KestrelTcp:Listeners:echo:Port: 70000 is not a port (1-65535, or 0 for any free port)", "KestrelTcp: invalid configuration (1 problem(s)); not started."],
            server.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [Fact]
    public async Task ConsoleFormat_Unknown_Exit2NamingTheKey()
    {
        var (arguments, _, _) = BuiltServer.FreePortArguments();
        arguments.Add("--KestrelTcp:Logging:ConsoleFormat=Xml");
        using var server = BuiltServer.Start(arguments);
        Assert.Equal(2, await server.WaitForExitAsync(ExitWithin));
        Assert.Contains("KestrelTcp:Logging:ConsoleFormat: 'Xml' is not a console format (Text or Json)", server.StandardError, StringComparison.Ordinal);
    }

    private static string? EventName(JsonElement e) =>
        e.TryGetProperty("EventId", out var id) && id.TryGetProperty("Name", out var name) ? name.GetString() : null;
}

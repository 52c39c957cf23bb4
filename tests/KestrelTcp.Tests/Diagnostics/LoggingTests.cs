using System.Net;
using KestrelTcp.Connections;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Tests.Diagnostics;

/// <summary>One structured event per closed connection, at the level its kind deserves, and errors with their cause.</summary>
public class LoggingTests
{
    [Fact]
    public async Task ConnectionClosed_ClientSentBytes_InformationWithEveryProperty()
    {
        var logs = new LogCapture();
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync([TestServer.Listener("echo", "Echo"), TestServer.VerboseLogs], s =>
        {
            s.AddSingleton<TimeProvider>(clock);
            s.AddSingleton<ILoggerProvider>(logs);
        });
        string remote;
        await using (var client = await server.ConnectAsync("echo"))
        {
            remote = ((IPEndPoint)client.Socket.LocalEndPoint!).ToString();
            await client.SendAsync("hello");
            Assert.Equal("hello"u8.ToArray(), await client.ReadExactlyAsync(5));
            clock.Advance(TimeSpan.FromMilliseconds(1234.5));
            client.ShutdownSend();
            Assert.Empty(await client.ReadToEndAsync());
        }

        var closed = await SingleAsync(logs, "ConnectionClosed");
        Assert.Equal(LogLevel.Information, closed.Level);
        Assert.Equal(3, closed.EventId.Id);
        Assert.Equal("KestrelTcp.Connections", closed.Category);
        Assert.Equal("echo", closed["Listener"]);
        Assert.False(string.IsNullOrEmpty(closed["ConnectionId"] as string));
        Assert.Equal(remote, closed["Remote"]);
        Assert.Equal(1234.5, Assert.IsType<double>(closed["DurationMs"])); // the server clock's, as long as the connection was open on it
        Assert.Equal(5L, closed["BytesReceived"]);
        Assert.Equal(5L, closed["BytesSent"]);
        Assert.Equal(CloseReason.Client, closed["Reason"]);
        // Serilog renders string properties quoted in the message it hands to other providers (the console shows them bare).
        var message = closed.Message.Replace("\"", "", StringComparison.Ordinal);
        Assert.Contains($"from {remote} closed (Client)", message, StringComparison.Ordinal);
        Assert.Contains("after 1234.5 ms, 5 bytes in, 5 bytes out", message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Events, e => e.Level >= LogLevel.Warning);
    }

    [Theory]
    [InlineData("Time")]
    [InlineData("Echo")]
    public async Task ConnectionClosed_ClientSentNothing_Debug(string handler)
    {
        var logs = new LogCapture();
        await using var server = await TestServer.StartAsync([TestServer.Listener("l", handler), TestServer.VerboseLogs], s => s.AddSingleton<ILoggerProvider>(logs));
        await using (var client = await server.ConnectAsync("l"))
        {
            client.ShutdownSend();
            await client.ReadToEndAsync();
        }

        var closed = await SingleAsync(logs, "ConnectionClosed");
        Assert.Equal(LogLevel.Debug, closed.Level);
        Assert.Equal(0L, closed["BytesReceived"]);
        Assert.Equal(handler == "Time" ? CloseReason.Server : CloseReason.Client, closed["Reason"]);
    }

    [Fact]
    public async Task ConnectionClosed_ClientReset_DebugOrInformationButNeverAnError()
    {
        var logs = new LogCapture();
        await using var server = await TestServer.StartAsync([TestServer.Listener("echo", "Echo"), TestServer.VerboseLogs], s => s.AddSingleton<ILoggerProvider>(logs));
        var client = await server.ConnectAsync("echo");
        await client.SendAsync("x");
        await client.ReadExactlyAsync(1);
        client.Reset();

        var closed = await SingleAsync(logs, "ConnectionClosed");
        Assert.Equal(LogLevel.Information, closed.Level);
        Assert.Equal(CloseReason.Client, closed["Reason"]);
        Assert.DoesNotContain(logs.Events, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task HandlerThrows_ErrorWithItsCauseThenOneCloseEvent()
    {
        var logs = new LogCapture();
        await using var server = await TestServer.StartAsync([TestServer.Listener("boom", "Boom"), TestServer.VerboseLogs], s =>
        {
            s.AddKestrelTcpHandler<ThrowingHandler>("Boom");
            s.AddSingleton<ILoggerProvider>(logs);
        });
        await using (var client = await server.ConnectAsync("boom"))
        {
            await client.SendAsync("go");
            await client.ReadToEndAsync();
        }

        var closed = await SingleAsync(logs, "ConnectionClosed");
        Assert.Equal(CloseReason.Error, closed["Reason"]);
        var failed = Assert.Single(logs.Named("ConnectionFailed"));
        Assert.Equal(LogLevel.Error, failed.Level);
        Assert.Equal(ThrowingHandler.Message, Assert.IsType<InvalidOperationException>(failed.Exception).Message);
        Assert.Equal("boom", failed["Listener"]);
        Assert.Equal(closed["ConnectionId"], failed["ConnectionId"]);
    }

    [Fact]
    public async Task ServerStops_CloseEventCarriesShutdownReason()
    {
        var logs = new LogCapture();
        var server = await TestServer.StartAsync([TestServer.Listener("greeting", "Greeting"), TestServer.VerboseLogs], s => s.AddSingleton<ILoggerProvider>(logs));
        await using var client = await server.ConnectAsync("greeting");
        await client.ReadLineAsync();
        await client.SendAsync("hi\n");
        await client.ReadLineAsync();

        await server.DisposeAsync();

        Assert.Equal("Server shutting down\r\n", await client.ReadToEndTextAsync());
        var closed = Assert.Single(logs.Named("ConnectionClosed"));
        Assert.Equal(CloseReason.Shutdown, closed["Reason"]);
        Assert.Single(logs.Named("DrainCompleted"));
    }

    [Fact]
    public async Task ListenerStarted_LoggedWithTheBoundTcpEndpoint()
    {
        var logs = new LogCapture();
        await using var server = await TestServer.StartAsync([TestServer.Listener("echo", "Echo"), TestServer.VerboseLogs], s => s.AddSingleton<ILoggerProvider>(logs));
        var started = Assert.Single(logs.Named("ListenerStarted"));
        Assert.Equal(LogLevel.Information, started.Level);
        Assert.Equal($"tcp://127.0.0.1:{server.Port("echo")}", started["Endpoint"]);
        Assert.Equal("Echo", started["Handler"]);
    }

    [Fact]
    public async Task ManagementRequests_LoggedBySerilog_ProbesAtDebugOthersAtInformation()
    {
        var logs = new LogCapture();
        await using var server = await TestServer.StartAsync([TestServer.Listener("echo", "Echo"), TestServer.VerboseLogs], s => s.AddSingleton<ILoggerProvider>(logs));
        await server.Http.GetAsync("/health/ready");
        await server.Http.GetAsync("/metrics");
        await server.Http.GetAsync("/connections");

        await TestServer.WaitUntilAsync(() => Task.FromResult(logs.Events.Count(e => e.Category == RequestLogging) >= 3), because: "three request events");
        var requests = logs.Events.Where(e => e.Category == RequestLogging).ToDictionary(e => (string)e["RequestPath"]!);
        Assert.Equal(LogLevel.Debug, requests["/health/ready"].Level);
        Assert.Equal(LogLevel.Debug, requests["/metrics"].Level);
        Assert.Equal(LogLevel.Information, requests["/connections"].Level);
        Assert.Equal(200, requests["/connections"]["StatusCode"]);
        Assert.Equal("GET", requests["/connections"]["RequestMethod"]);
    }

    private const string RequestLogging = "Serilog.AspNetCore.RequestLoggingMiddleware";

    // The close event is written after the counters are updated: wait for it rather than for quiet.
    private static async Task<CapturedLog> SingleAsync(LogCapture logs, string name)
    {
        await TestServer.WaitUntilAsync(() => Task.FromResult(logs.Named(name).Any()), because: $"a {name} event");
        return Assert.Single(logs.Named(name));
    }
}

using System.Net;
using System.Net.Sockets;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Tests.Connections;

/// <summary>MaxConnections and MaxConnectionsPerClient over real sockets: who is refused, how, and how it is counted and logged.</summary>
public class ConnectionLimitTests
{
    private const string Rejected = "kestreltcp_connections_rejected_total";

    [Fact]
    public async Task MaxConnections_NPlusOnethConnection_ClosedAtOnceAndCountedOnlyAsRejected()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo", ("MaxConnections", "2")));
        await using var first = await ConnectEchoingAsync(server, "echo");
        await using var second = await ConnectEchoingAsync(server, "echo");

        await using (var third = await server.ConnectAsync("echo"))
        {
            await third.SendAsync("refused?");
            Assert.Empty(await third.ReadToEndAsync());
        }

        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, Rejected, ("listener", "echo"), ("reason", "max_connections")));
        Assert.Equal(0, PrometheusText.Value(metrics, Rejected, ("listener", "echo"), ("reason", "max_connections_per_client")));
        Assert.Equal(2, PrometheusText.Value(metrics, "kestreltcp_connections_accepted_total", ("listener", "echo"), ("handler", "Echo")));
        Assert.Equal(2, PrometheusText.Value(metrics, "kestreltcp_connections_active", ("listener", "echo"), ("handler", "Echo")));
        Assert.Equal(0, PrometheusText.Sum(metrics, "kestreltcp_connections_closed_total", "echo"));
        Assert.Equal(8, PrometheusText.Value(metrics, "kestreltcp_bytes_received_total", ("listener", "echo"))); // two "ping", not "refused?"

        // The open ones are undisturbed, and a freed slot is usable again.
        await AssertEchoesAsync(first, "still fine");
        await first.DisposeAsync();
        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("echo")!.OpenCount == 1), because: "the first connection to close");
        await using var fourth = await ConnectEchoingAsync(server, "echo");
        Assert.Equal(3, await server.MetricAsync("kestreltcp_connections_accepted_total", ("listener", "echo"), ("handler", "Echo")));
        Assert.Equal(1, await server.MetricAsync(Rejected, ("listener", "echo"), ("reason", "max_connections")));
    }

    [Fact]
    public async Task MaxConnections_GreetingOverLimit_SendsErrBusyThenClosesGracefully()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting", ("MaxConnections", "1")));
        await using var first = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await first.ReadLineAsync());

        await using var second = await server.ConnectAsync("greeting");
        Assert.Equal("ERR busy\r\n", await second.ReadToEndTextAsync());

        Assert.Equal(1, await server.MetricAsync(Rejected, ("listener", "greeting"), ("reason", "max_connections")));
        await first.SendAsync("bob\n");
        Assert.Equal("Hello, bob!\r\n", await first.ReadLineAsync());
    }

    [Fact]
    public async Task MaxConnections_ListenerOverride_TakesPrecedenceOverGlobalLimits()
    {
        await using var server = await TestServer.StartAsync(
            new Dictionary<string, string?> { ["KestrelTcp:Limits:MaxConnections"] = "1" },
            TestServer.Listener("echo", "Echo", ("MaxConnections", "3")),
            TestServer.Listener("greeting", "Greeting"));

        var echoes = new List<TcpTestClient>();
        for (var i = 0; i < 3; i++)
        {
            echoes.Add(await ConnectEchoingAsync(server, "echo"));
        }

        await using (var refused = await server.ConnectAsync("echo"))
        {
            Assert.Empty(await refused.ReadToEndAsync());
        }

        await using var greeting = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await greeting.ReadLineAsync());
        await using (var busy = await server.ConnectAsync("greeting"))
        {
            Assert.Equal("ERR busy\r\n", await busy.ReadToEndTextAsync());
        }

        var metrics = await server.MetricsAsync();
        Assert.Equal(1, PrometheusText.Value(metrics, Rejected, ("listener", "echo"), ("reason", "max_connections")));
        Assert.Equal(1, PrometheusText.Value(metrics, Rejected, ("listener", "greeting"), ("reason", "max_connections")));
        Assert.Equal(3, PrometheusText.Value(metrics, "kestreltcp_connections_active", ("listener", "echo"), ("handler", "Echo")));
        foreach (var echo in echoes)
        {
            await echo.DisposeAsync();
        }
    }

    [Fact]
    public async Task MaxConnectionsPerClient_SecondFromSameAddress_RefusedWhileAnotherAddressIsAccepted()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("greeting", "Greeting", ("MaxConnectionsPerClient", "1")));
        var port = server.Port("greeting");
        var one = IPAddress.Parse("127.0.0.1");
        var two = IPAddress.Parse("127.0.0.2");

        await using var fromOne = await ConnectFromAsync(one, port);
        Assert.StartsWith("Welcome!", await fromOne.ReadLineAsync());
        await using (var again = await ConnectFromAsync(one, port))
        {
            Assert.Equal("ERR busy\r\n", await again.ReadToEndTextAsync());
        }

        await using var fromTwo = await ConnectFromAsync(two, port);
        Assert.StartsWith("Welcome!", await fromTwo.ReadLineAsync());
        await using (var againFromTwo = await ConnectFromAsync(two, port))
        {
            Assert.Equal("ERR busy\r\n", await againFromTwo.ReadToEndTextAsync());
        }

        var metrics = await server.MetricsAsync();
        Assert.Equal(2, PrometheusText.Value(metrics, Rejected, ("listener", "greeting"), ("reason", "max_connections_per_client")));
        Assert.Equal(0, PrometheusText.Value(metrics, Rejected, ("listener", "greeting"), ("reason", "max_connections")));
        Assert.Equal(2, PrometheusText.Value(metrics, "kestreltcp_connections_accepted_total", ("listener", "greeting"), ("handler", "Greeting")));
        var remotes = (await server.JsonAsync("/connections")).ToString();
        Assert.Contains("127.0.0.1:", remotes);
        Assert.Contains("127.0.0.2:", remotes);

        // The slot of an address is freed when its connection closes.
        await fromOne.SendAsync("quit\n");
        Assert.Equal("Goodbye!\r\n", await fromOne.ReadToEndTextAsync());
        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Runtime.Find("greeting")!.OpenCount == 1), because: "the quit connection to close");
        await using var oneAgain = await ConnectFromAsync(one, port);
        Assert.StartsWith("Welcome!", await oneAgain.ReadLineAsync());
    }

    [Fact]
    public async Task MaxConnections_SaturatedAndFlooded_HttpPortKeepsAnswering()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo", ("MaxConnections", "1")));
        await using var holder = await ConnectEchoingAsync(server, "echo");
        const int Flood = 50;
        await Task.WhenAll(Enumerable.Range(0, Flood).Select(async _ =>
        {
            await using var refused = await server.ConnectAsync("echo");
            Assert.Empty(await refused.ReadToEndAsync());
        }));

        // More HTTP connections at once than the TCP limit allows: the limit is not theirs.
        var answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(async i =>
        {
            using var client = new HttpClient { BaseAddress = server.Http.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            using var response = await client.GetAsync(i % 2 == 0 ? "/health/live" : "/health/ready");
            return response.StatusCode;
        }));
        Assert.All(answers, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(Flood, await server.MetricAsync(Rejected, ("listener", "echo"), ("reason", "max_connections")));
        await AssertEchoesAsync(holder, "undisturbed");
    }

    [Fact]
    public async Task MaxConnections_CloseAccountingThrows_PlaceStillGivenBack()
    {
        // A log provider that throws on the close event (Microsoft.Extensions.Logging re-throws it):
        // the connection's place under MaxConnections must come back all the same.
        await using var server = await TestServer.StartAsync(
            [TestServer.Listener("echo", "Echo", ("MaxConnections", "1"))],
            services => services.AddSingleton<ILoggerProvider>(new ThrowingLoggerProvider("ConnectionClosed")));
        for (var i = 0; i < 3; i++)
        {
            await using (var client = await ConnectEchoingAsync(server, "echo"))
            {
            }

            await server.WaitForQuietAsync();
        }

        Assert.Equal(0, await server.MetricAsync(Rejected, ("listener", "echo"), ("reason", "max_connections")));
    }

    private sealed class ThrowingLoggerProvider(string eventName) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(eventName);

        public void Dispose()
        {
        }

        private sealed class Logger(string eventName) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (eventId.Name == eventName)
                {
                    throw new InvalidOperationException("log sink failed");
                }
            }
        }
    }

    [Fact]
    public async Task Rejections_Flood_LoggedAtMostOncePerSecondPerListenerWithTheCount()
    {
        var logs = new CapturingLoggerProvider();
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(
            [TestServer.Listener("echo", "Echo", ("MaxConnections", "1")), TestServer.Listener("greeting", "Greeting", ("MaxConnections", "1"))],
            services =>
            {
                services.AddSingleton<TimeProvider>(clock);
                services.AddSingleton<ILoggerProvider>(logs);
            });
        await using var echo = await ConnectEchoingAsync(server, "echo");
        await using var greeting = await server.ConnectAsync("greeting");
        Assert.StartsWith("Welcome!", await greeting.ReadLineAsync());
        string[] listeners = ["echo", "greeting"];

        // The first refusal is logged at once; the next nine, in the same instant, are held back.
        await RefuseAsync(server, listeners, 10);
        AssertCounts(logs, listeners, 1);

        // A millisecond short of a second later: still held back.
        clock.Advance(TimeSpan.FromMilliseconds(999));
        await RefuseAsync(server, listeners, 1);
        AssertCounts(logs, listeners, 1);

        // A second after the last event: one event carries everything refused since (9 + 1 + this one).
        clock.Advance(TimeSpan.FromMilliseconds(1));
        await RefuseAsync(server, listeners, 1);
        AssertCounts(logs, listeners, 1, 11);

        // Nothing refused is lost from the log: the sum of the counts is the metric's.
        clock.Advance(TimeSpan.FromSeconds(1));
        await RefuseAsync(server, listeners, 1);
        AssertCounts(logs, listeners, 1, 11, 1);
        foreach (var listener in listeners)
        {
            Assert.Equal(13, await server.MetricAsync(Rejected, ("listener", listener), ("reason", "max_connections")));
            Assert.All(RejectionEvents(logs, listener), e => Assert.Equal(LogLevel.Warning, e.Level));
        }
    }

    private static async Task RefuseAsync(TestServer server, string[] listeners, int count)
    {
        for (var i = 0; i < count; i++)
        {
            foreach (var listener in listeners)
            {
                // The rejection is logged before the refused connection is closed.
                await using var client = await server.ConnectAsync(listener);
                await client.ReadToEndAsync();
            }
        }
    }

    private static void AssertCounts(CapturingLoggerProvider logs, string[] listeners, params long[] counts)
    {
        foreach (var listener in listeners)
        {
            Assert.Equal(counts, RejectionEvents(logs, listener).Select(e => (long)e["Count"]!));
        }
    }

    private static List<CapturingLoggerProvider.LogEntry> RejectionEvents(CapturingLoggerProvider logs, string listener) =>
        [.. logs.Entries.Where(e => e.EventId.Name == "ConnectionsRejected" && (string?)e["Listener"] == listener)];

    private static async Task<TcpTestClient> ConnectEchoingAsync(TestServer server, string listener)
    {
        var client = await server.ConnectAsync(listener);
        await AssertEchoesAsync(client, "ping");
        return client;
    }

    private static async Task AssertEchoesAsync(TcpTestClient client, string text)
    {
        await client.SendAsync(text);
        Assert.Equal(text, System.Text.Encoding.UTF8.GetString(await client.ReadExactlyAsync(text.Length)));
    }

    /// <summary>A client whose source address is <paramref name="source"/> (any 127/8 address is loopback on Linux).</summary>
    internal static async Task<TcpTestClient> ConnectFromAsync(IPAddress source, int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Bind(new IPEndPoint(source, 0));
        return await TcpTestClient.ConnectAsync(socket, new IPEndPoint(IPAddress.Loopback, port));
    }
}

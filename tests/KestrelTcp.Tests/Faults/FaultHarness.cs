using System.IO.Pipelines;
using System.Text;
using KestrelTcp.Faults;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;

namespace KestrelTcp.Tests.Faults;

/// <summary>
/// One connection through <see cref="FaultMiddleware"/> over in-memory pipes, on a <see cref="TestClock"/>:
/// every fault's wait moves only when the test advances the clock. The handler is the test's.
/// </summary>
internal sealed class FaultHarness
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    public FaultHarness(FaultOptions options, Func<ConnectionContext, Task> handler, PipeOptions? clientReceives = null)
    {
        Connection = new PipeConnection(clientReceives);
        Counters = FaultCounters.For(options) ?? throw new ArgumentException("no fault configured", nameof(options));
        Original = Connection.Context.Transport;
        Middleware = new FaultMiddleware(c =>
        {
            HandlerStarted.TrySetResult(Clock.Elapsed);
            HandlerTransport = c.Transport;
            return handler(c);
        }, Counters, Clock, NullLogger.Instance);
    }

    public TestClock Clock { get; } = new();

    public PipeConnection Connection { get; }

    public FaultCounters Counters { get; }

    public FaultMiddleware Middleware { get; }

    public IDuplexPipe Original { get; }

    public IDuplexPipe? HandlerTransport { get; private set; }

    public TaskCompletionSource<TimeSpan> HandlerStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Run { get; private set; } = Task.CompletedTask;

    public PipeReader Client => Connection.ClientInput;

    /// <summary>Runs the connection as Kestrel does: the middleware, then the transport's output completed.</summary>
    public FaultHarness Start()
    {
        Run = RunAsync();
        return this;

        async Task RunAsync()
        {
            try
            {
                await Middleware.OnConnectionAsync(Connection.Context);
            }
            finally
            {
                await Connection.Context.Transport.Output.CompleteAsync();
            }
        }
    }

    /// <summary>What the client has been sent by now, without waiting (empty if nothing).</summary>
    public string Available()
    {
        if (!Client.TryRead(out var result))
        {
            return "";
        }

        var text = Encoding.ASCII.GetString(result.Buffer);
        Client.AdvanceTo(result.Buffer.End);
        return text;
    }

    /// <summary>The next bytes the client gets (one read, consumed), or null at the end of the output.</summary>
    public async Task<string?> NextAsync()
    {
        using var cts = new CancellationTokenSource(Patience);
        var result = await Client.ReadAsync(cts.Token);
        var text = Encoding.ASCII.GetString(result.Buffer);
        Client.AdvanceTo(result.Buffer.End);
        return text.Length == 0 && result.IsCompleted ? null : text;
    }

    /// <summary>Everything the client gets until the output completes.</summary>
    public async Task<string> RestAsync()
    {
        var all = new StringBuilder();
        while (await NextAsync() is { } text)
        {
            all.Append(text);
        }

        return all.ToString();
    }

    public static async Task WriteAsync(ConnectionContext connection, string text) =>
        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(text));
}

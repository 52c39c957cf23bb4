using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using KestrelTcp.Connections;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>
/// A connection over in-memory pipes, for driving a handler without sockets (as Bedrock's
/// protocol tests do): the test writes to <see cref="ClientOutput"/> and reads <see cref="ClientInput"/>.
/// </summary>
public sealed class PipeConnection : ICloseReasonFeature, IConnectionLifetimeNotificationFeature
{
    private readonly CancellationTokenSource _closeRequested = new();
    private int _reason;

    public PipeConnection(PipeOptions? serverInputOptions = null)
    {
        var toServer = new Pipe(serverInputOptions ?? PipeOptions.Default);
        var toClient = new Pipe();
        Context = new DefaultConnectionContext("test-1", new DuplexPipe(toServer.Reader, toClient.Writer), new DuplexPipe(toClient.Reader, toServer.Writer))
        {
            RemoteEndPoint = new IPEndPoint(IPAddress.Parse("192.0.2.10"), 50123),
            LocalEndPoint = new IPEndPoint(IPAddress.Parse("192.0.2.1"), 7001),
        };
        Context.Features.Set<ICloseReasonFeature>(this);
        Context.Features.Set<IConnectionLifetimeNotificationFeature>(this);
    }

    public DefaultConnectionContext Context { get; }

    public PipeWriter ClientOutput => Context.Application!.Output;

    public PipeReader ClientInput => Context.Application!.Input;

    public CloseReason CloseReason => (CloseReason)_reason;

    public CancellationToken ConnectionClosedRequested
    {
        get => _closeRequested.Token;
        set => throw new NotSupportedException();
    }

    public void SetCloseReason(CloseReason reason) => Interlocked.CompareExchange(ref _reason, (int)reason, 0);

    /// <summary>As the drain asks: the reason is recorded (unless one was), then the close request cancels the pending read.</summary>
    public void RequestClose()
    {
        SetCloseReason(CloseReason.Shutdown);
        _closeRequested.Cancel();
        Context.Transport.Input.CancelPendingRead();
    }

    public async Task SendAsync(string text) => await ClientOutput.WriteAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes) => await ClientOutput.WriteAsync(bytes);

    public void CompleteSending() => ClientOutput.Complete();

    /// <summary>Reads (and consumes, so the server is never blocked by backpressure) everything the server wrote until it completed its output.</summary>
    public async Task<byte[]> ReadAllAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var all = new List<byte>();
        while (true)
        {
            var result = await ClientInput.ReadAsync(cts.Token);
            foreach (var segment in result.Buffer)
            {
                all.AddRange(segment.Span);
            }

            ClientInput.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return [.. all];
            }
        }
    }

    /// <summary>Reads until at least <paramref name="count"/> bytes are available, without consuming beyond them.</summary>
    public async Task<byte[]> ReadAsync(int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var result = await ClientInput.ReadAsync(cts.Token);
            if (result.Buffer.Length >= count || result.IsCompleted)
            {
                var slice = result.Buffer.Slice(0, Math.Min(count, result.Buffer.Length));
                var bytes = slice.ToArray();
                ClientInput.AdvanceTo(slice.End);
                return bytes;
            }

            ClientInput.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    public async Task<string> ReadTextAsync(int count) => Encoding.UTF8.GetString(await ReadAsync(count));

    /// <summary>Runs <paramref name="handler"/> to completion and completes the server's output, as Kestrel does.</summary>
    public async Task RunAsync(ConnectionHandler handler)
    {
        try
        {
            await handler.OnConnectedAsync(Context);
        }
        finally
        {
            await Context.Transport.Output.CompleteAsync();
            await Context.Transport.Input.CompleteAsync();
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

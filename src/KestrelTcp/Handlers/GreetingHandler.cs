using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>
/// The greeting server of the socket tutorials, made line-oriented: a banner on connect, a reply
/// per line, a farewell for an exit command, <c>Server shutting down</c> when the server stops.
/// </summary>
public sealed class GreetingHandler(ListenerDefinition listener, TimeProvider timeProvider) : LineProtocolHandler(listener), IBusyReply
{
    private static readonly byte[] ShuttingDown = "Server shutting down\r\n"u8.ToArray();
    private static readonly byte[] Busy = "ERR busy\r\n"u8.ToArray();

    private readonly GreetingOptions _options = listener.GetHandlerOptions<GreetingOptions>();
    private readonly string _listener = listener.Name;
    private readonly int _longestCommand = listener.GetHandlerOptions<GreetingOptions>().ExitCommands.Select(c => c.Length).DefaultIfEmpty().Max();

    /// <inheritdoc />
    public ReadOnlyMemory<byte> BusyReply => Busy;

    /// <inheritdoc />
    protected override LineAction OnConnected(ConnectionContext connection, PipeWriter output)
    {
        _options.Banner.Write(output, connection, _listener, timeProvider);
        return LineAction.Continue;
    }

    /// <inheritdoc />
    protected override LineAction OnLine(ConnectionContext connection, in ReadOnlySequence<byte> line, PipeWriter output)
    {
        if (IsExitCommand(line))
        {
            _options.Farewell.Write(output, connection, _listener, timeProvider);
            return LineAction.Close;
        }

        _options.Reply.Write(output, connection, _listener, timeProvider, line);
        return LineAction.Continue;
    }

    /// <inheritdoc />
    protected override void OnCloseRequested(ConnectionContext connection, PipeWriter output, bool shuttingDown)
    {
        if (shuttingDown)
        {
            output.Write(ShuttingDown);
        }
    }

    private bool IsExitCommand(in ReadOnlySequence<byte> line)
    {
        if (line.Length > _longestCommand || line.IsEmpty)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[(int)line.Length];
        line.CopyTo(bytes);
        foreach (var command in _options.ExitCommands)
        {
            if (Ascii.EqualsIgnoreCase(bytes, command))
            {
                return true;
            }
        }

        return false;
    }
}

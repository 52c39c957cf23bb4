using KestrelTcp.Configuration;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>
/// RFC 865 quote of the day: on connect, one quote and <c>\r\n</c>, then the connection closes; what the
/// client sends is ignored. The quotes (<c>Quotes</c>, a <c>QuotesFile</c> in <c>fortune</c> format, or
/// the built-in ones) are checked and encoded once at start-up; a connection writes one of them as it is.
/// With <c>Order: Sequential</c> the listener's connections take the quotes in turn, the first quote
/// first, whatever the threads they run on.
/// </summary>
public sealed class QotdHandler(ListenerDefinition listener) : ConnectionHandler
{
    private readonly QotdOptions _options = listener.GetHandlerOptions<QotdOptions>();

    // The listener's count of quotes served in Sequential order: the one state its connections share.
    private long _served;

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        await connection.Transport.Output.WriteAsync(_options.Quotes[NextIndex()]);
    }

    private int NextIndex()
    {
        var count = _options.Quotes.Count;
        return _options.Order == QotdOrder.Sequential
            ? (int)((ulong)(Interlocked.Increment(ref _served) - 1) % (ulong)count)
            : Random.Shared.Next(count);
    }
}

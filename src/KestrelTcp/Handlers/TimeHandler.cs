using KestrelTcp.Configuration;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Handlers;

/// <summary>
/// RFC 867 daytime (and RFC 868 time): on connect, write the current time once and close.
/// </summary>
public sealed class TimeHandler(ListenerDefinition listener, TimeProvider timeProvider) : ConnectionHandler
{
    private readonly TimeHandlerOptions _options = listener.GetHandlerOptions<TimeHandlerOptions>();

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var output = connection.Transport.Output;
        var written = TimeFormatter.Format(timeProvider.GetUtcNow(), _options.Format, _options.TimeZone ?? timeProvider.LocalTimeZone, output.GetSpan(TimeFormatter.MaxLength));
        output.Advance(written);
        await output.FlushAsync();
    }
}

using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Tests.Diagnostics;

/// <summary>A test-only handler with a bug: it reads what the client sends, then throws.</summary>
public sealed class ThrowingHandler : ConnectionHandler
{
    public const string Message = "Boom: a handler bug";

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var result = await connection.Transport.Input.ReadAsync();
        connection.Transport.Input.AdvanceTo(result.Buffer.End);
        throw new InvalidOperationException(Message);
    }
}

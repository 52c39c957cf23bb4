using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.Tests.Dashboard;

/// <summary>
/// A test-only handler that ignores the server's requests to finish (its reads canceled) and ends
/// only when the client does: it keeps a drain open for as long as the test wants.
/// </summary>
public sealed class HoldHandler : ConnectionHandler
{
    public const string Name = "Hold";

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        while (true)
        {
            var result = await input.ReadAsync();
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }
}

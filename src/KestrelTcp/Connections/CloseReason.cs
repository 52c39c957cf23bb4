namespace KestrelTcp.Connections;

/// <summary>Why a connection ended: the <c>reason</c> label of <c>kestreltcp_connections_closed_total</c>.</summary>
public enum CloseReason
{
    /// <summary>No reason recorded yet.</summary>
    None = 0,

    /// <summary>The client closed (FIN or reset).</summary>
    Client,

    /// <summary>The handler finished and closed, e.g. Time after its one write or Greeting after <c>quit</c>.</summary>
    Server,

    /// <summary>Nothing was received for <c>IdleTimeout</c>.</summary>
    IdleTimeout,

    /// <summary>A line exceeded <c>MaxLineLength</c>.</summary>
    LineTooLong,

    /// <summary>The server was shutting down.</summary>
    Shutdown,

    /// <summary>The handler failed.</summary>
    Error,
}

/// <summary>
/// Lets a handler tell the connection tracking why it is closing a connection (for example
/// <see cref="CloseReason.LineTooLong"/>); the first reason recorded wins.
/// </summary>
public interface ICloseReasonFeature
{
    /// <summary>The reason recorded so far, or <see cref="CloseReason.None"/>.</summary>
    CloseReason CloseReason { get; }

    /// <summary>Records <paramref name="reason"/> unless a reason was recorded already.</summary>
    void SetCloseReason(CloseReason reason);
}

/// <summary>What a handler can ask about its connection's life.</summary>
public static class ConnectionLifetimeExtensions
{
    /// <summary>
    /// True when the connection was asked to finish because the server is shutting down, as opposed
    /// to an idle timeout: both raise Kestrel's close request
    /// (<see cref="Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature"/>),
    /// and the reason recorded with it (<see cref="ICloseReasonFeature"/>) tells them apart. Without
    /// KestrelTcp's tracking (a handler hosted elsewhere), any close request counts as a shutdown.
    /// </summary>
    public static bool IsShutdownRequested(this Microsoft.AspNetCore.Connections.ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.Features.Get<ICloseReasonFeature>() is { } reason
            ? reason.CloseReason == CloseReason.Shutdown
            : connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested.IsCancellationRequested == true;
    }
}

using System.Net;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Connections;

/// <summary>
/// One open connection of a listener, as the tracking middleware keeps it in the listener's open
/// set (where <c>/connections</c>, the idle timeout and the drain find it): when it started, why it
/// ends, and the transport's figures of what it moved (<see cref="IConnectionTransferFeature"/>).
/// </summary>
internal sealed class TrackedConnection(ConnectionContext context, IConnectionTransferFeature transfer, long startTimestamp, DateTimeOffset connectedAt)
    : ICloseReasonFeature
{
    private int _closeReason;

    public string Id => context.ConnectionId;

    public ConnectionContext Context => context;

    public IConnectionTransferFeature Transfer => transfer;

    /// <summary>The client's endpoint; IPv4 clients of a dual-stack socket shown as IPv4.</summary>
    public EndPoint? Remote => context.RemoteEndPoint switch
    {
        IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip => new IPEndPoint(ip.Address.MapToIPv4(), ip.Port),
        var other => other,
    };

    public DateTimeOffset ConnectedAt => connectedAt;

    public long StartTimestamp => startTimestamp;

    /// <summary>When the idle timeout asked this connection to finish (a <see cref="TimeProvider"/> timestamp), or 0.</summary>
    public long IdleClosingSince { get; set; }

    public CloseReason CloseReason => (CloseReason)Volatile.Read(ref _closeReason);

    public void SetCloseReason(CloseReason reason) => Interlocked.CompareExchange(ref _closeReason, (int)reason, (int)CloseReason.None);

    /// <summary>
    /// Asks the connection to finish, for <paramref name="reason"/> (the drain, the idle timeout): the
    /// reason is recorded, then Kestrel's close request is raised, which the tracking middleware turns
    /// into a canceled read for the handler (<see cref="ConnectionClosing"/>).
    /// </summary>
    public void RequestClose(CloseReason reason)
    {
        SetCloseReason(reason);
        context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
    }

    public void Abort(string reason) => context.Abort(new ConnectionAbortedException(reason));
}

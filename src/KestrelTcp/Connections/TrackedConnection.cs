using System.Net;
using KestrelTcp.ProxyProtocol;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace KestrelTcp.Connections;

/// <summary>
/// One open connection of a listener, as the tracking middleware keeps it in the listener's open
/// set (where <c>/connections</c>, the idle timeout and the drain find it): when it started, why it
/// ends, and the transport's figures of what it moved (<see cref="IConnectionTransferFeature"/>).
/// <para>
/// It is also the connection's <see cref="IConnectionLifetimeNotificationFeature"/>, in front of
/// Kestrel's: the drain and the idle timeout ask a connection to finish through that feature only,
/// and Kestrel's close request by itself cancels nothing, so this one also cancels the pending read
/// of the pipe the handler reads (the innermost <see cref="ConnectionContext.Transport"/> at that
/// moment, after TLS or any other middleware that replaced it): a handler waiting for input wakes up
/// and finishes gracefully. Decorating the feature costs nothing per connection, where registering
/// on Kestrel's token cost a callback node and a registration list on every held connection.
/// </para>
/// </summary>
internal sealed class TrackedConnection : ICloseReasonFeature, IConnectionLifetimeNotificationFeature
{
    private readonly ConnectionContext _context;
    private readonly IConnectionLifetimeNotificationFeature? _kestrel;
    private int _closeReason;

    public TrackedConnection(ConnectionContext context, IConnectionTransferFeature transfer, long startTimestamp)
    {
        _context = context;
        _kestrel = context.Features.Get<IConnectionLifetimeNotificationFeature>();
        Transfer = transfer;
        StartTimestamp = startTimestamp;
        context.Features.Set<ICloseReasonFeature>(this);
        context.Features.Set<IConnectionLifetimeNotificationFeature>(this);
    }

    public string Id => _context.ConnectionId;

    public IConnectionTransferFeature Transfer { get; }

    /// <summary>The client's endpoint (after a PROXY protocol header, the header's source); IPv4 clients of a dual-stack socket shown as IPv4.</summary>
    public EndPoint? Remote => Plain(_context.RemoteEndPoint);

    /// <summary>The TCP peer when a PROXY protocol header named the client (the proxy), else null.</summary>
    public EndPoint? Peer => _context.Features.Get<IProxyProtocolFeature>() is { } proxy ? Plain(proxy.Peer) : null;

    /// <summary>When the connection was accepted: a <see cref="TimeProvider"/> timestamp (the wall-clock time is derived when shown).</summary>
    public long StartTimestamp { get; }

    public CancellationToken ConnectionClosedRequested
    {
        get => _kestrel?.ConnectionClosedRequested ?? CancellationToken.None;
        set => throw new NotSupportedException("Kestrel owns the close request token.");
    }

    /// <summary>The neighbours of this connection in its listener's <see cref="OpenConnectionSet"/> (under the set's lock).</summary>
    public TrackedConnection? PreviousOpen { get; set; }

    public TrackedConnection? NextOpen { get; set; }

    /// <summary>When the idle timeout asked this connection to finish (a <see cref="TimeProvider"/> timestamp), or 0.</summary>
    public long IdleClosingSince { get; set; }

    public CloseReason CloseReason => (CloseReason)Volatile.Read(ref _closeReason);

    public void SetCloseReason(CloseReason reason) => Interlocked.CompareExchange(ref _closeReason, (int)reason, (int)CloseReason.None);

    /// <summary>Kestrel's close request, then the handler's pending read canceled.</summary>
    public void RequestClose()
    {
        _kestrel?.RequestClose();
        // Not on the requester's thread: with inline scheduling the handler's continuation would run
        // right there, and the drain and the idle scan serve every connection of the server.
        ThreadPool.UnsafeQueueUserWorkItem(static c => c.Transport.Input.CancelPendingRead(), _context, preferLocal: false);
    }

    /// <summary>
    /// Asks the connection to finish, for <paramref name="reason"/> (the drain, the idle timeout): the
    /// reason is recorded, then the close is requested through the connection's lifetime feature.
    /// </summary>
    public void RequestClose(CloseReason reason)
    {
        SetCloseReason(reason);
        _context.Features.Get<IConnectionLifetimeNotificationFeature>()?.RequestClose();
    }

    private static EndPoint? Plain(EndPoint? endpoint) => endpoint switch
    {
        IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip => new IPEndPoint(ip.Address.MapToIPv4(), ip.Port),
        var other => other,
    };

    public void Abort(string reason) => _context.Abort(new ConnectionAbortedException(reason));
}

using System.Net;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using KestrelTcp.Diagnostics;
using KestrelTcp.Faults;
using KestrelTcp.Tls;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace KestrelTcp.Hosting;

/// <summary>A configured listener at run time: its handler, its Kestrel endpoint, its open connections and its counters.</summary>
internal sealed class ListenerRuntime(ListenerDefinition definition, ConnectionHandler handler, TimeProvider time, ILoggerFactory loggers)
{
    private readonly OpenConnectionSet _open = new();
    private volatile ListenerState _state;

    public ListenerDefinition Definition { get; } = definition;

    public string Name => Definition.Name;

    public string HandlerName => Definition.HandlerName;

    public ConnectionHandler Handler { get; } = handler;

    public ConnectionLimiter Limiter { get; } = new(definition.Limits);

    /// <summary>The listener's certificates, watched for rotation, or null for a plain listener.</summary>
    public TlsListener? Tls { get; } = definition.Tls is { } tls ? new TlsListener(tls, definition.Name, loggers.CreateLogger("KestrelTcp.Tls"), time) : null;

    /// <summary>The connection-rate buckets, or null when the listener has no rate limit.</summary>
    public ConnectionRateLimiter? Rates { get; } = ConnectionRateLimiter.Applies(definition.Limits) ? new(definition.Limits, time) : null;

    public ListenerStats Stats { get; } = new();

    /// <summary>The listener's faults and their counts, or null when it injects none.</summary>
    public FaultCounters? Faults { get; } = FaultCounters.For(definition.Faults);

    // One log per reason: a flood refused for one reason does not hide the first refusal for another.
    private readonly RejectionLog[] _rejectionLogs = [.. Enum.GetValues<RejectReason>().Select(_ => new RejectionLog(time))];

    public ListenOptions? ListenOptions { get; set; }

    public ListenerState State
    {
        get => _state;
        set => _state = value;
    }

    public bool IsDraining => _state >= ListenerState.Draining;

    // Closed is read first: a connection accepted and closed between the two reads then cannot make this negative.
    public long ActiveConnections
    {
        get
        {
            var closed = Stats.ClosedTotal;
            return Stats.Accepted - closed;
        }
    }

    public int OpenCount => _open.Count;

    public bool HasOpenConnections => _open.Count > 0;

    /// <summary>A copy of the open connections (newest first), to act on outside the set's lock.</summary>
    public TrackedConnection[] OpenConnections => _open.Snapshot();

    /// <summary>The open set itself, for callers that copy into a buffer of their own (<see cref="IdleTimeout"/>).</summary>
    public OpenConnectionSet Open => _open;

    /// <summary>The endpoint actually bound (with the real port when 0 was asked), as <c>tcp://address:port</c> or <c>unix:path</c>.</summary>
    public string Endpoint => DescribeEndpoint(ListenOptions, Definition);

    /// <summary>
    /// Counts a connection refused before its handler ran, and logs the refusals of
    /// <paramref name="reason"/> at most once a second, with how many there were.
    /// </summary>
    public void Refuse(RejectReason reason, ILogger logger)
    {
        Stats.OnRejected(reason);
        var count = _rejectionLogs[(int)reason].Note();
        if (count > 0)
        {
            Log.ConnectionsRejected(logger, Name, count, reason);
        }
    }

    public void OnAccepted(TrackedConnection connection)
    {
        _open.Add(connection);
        Stats.OnAccepted();
        Stats.NoteOpen(_open.Count);
    }

    public void OnClosed(TrackedConnection connection, CloseReason reason)
    {
        _open.Remove(connection);
        Stats.OnClosed(reason);
    }

    public long BytesReceived => Stats.BytesReceived;

    public long BytesSent => Stats.BytesSent;

    internal static string DescribeEndpoint(ListenOptions? options, ListenerDefinition definition)
    {
        if (definition.UnixSocketPath is { } path)
        {
            return $"unix:{path}";
        }

        var ip = options?.IPEndPoint;
        var port = ip?.Port ?? definition.Port ?? 0;
        var address = definition.IsWildcard ? (ip?.Address ?? IPAddress.IPv6Any) : ip?.Address;
        return address is null
            ? $"tcp://{definition.Address}:{port}"
            : $"tcp://{new IPEndPoint(address, port)}";
    }
}

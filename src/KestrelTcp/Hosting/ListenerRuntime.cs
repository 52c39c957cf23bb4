using System.Collections.Concurrent;
using System.Net;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using KestrelTcp.Diagnostics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace KestrelTcp.Hosting;

/// <summary>A configured listener at run time: its handler, its Kestrel endpoint, its open connections and its counters.</summary>
internal sealed class ListenerRuntime(ListenerDefinition definition, ConnectionHandler handler)
{
    private readonly ConcurrentDictionary<TrackedConnection, byte> _open = new(ReferenceEqualityComparer.Instance);
    private volatile ListenerState _state;

    public ListenerDefinition Definition { get; } = definition;

    public string Name => Definition.Name;

    public string HandlerName => Definition.HandlerName;

    public ConnectionHandler Handler { get; } = handler;

    public ConnectionLimiter Limiter { get; } = new(definition.Limits);

    public ListenerStats Stats { get; } = new();

    public RejectionLog RejectionLog { get; } = new();

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

    public bool HasOpenConnections => !_open.IsEmpty;

    /// <summary>The open connections; enumerating takes no lock (unlike <c>Keys</c>, which would stall accepts).</summary>
    public IEnumerable<TrackedConnection> OpenConnections
    {
        get
        {
            foreach (var entry in _open)
            {
                yield return entry.Key;
            }
        }
    }

    /// <summary>The endpoint actually bound (with the real port when 0 was asked), as <c>tcp://address:port</c> or <c>unix:path</c>.</summary>
    public string Endpoint => DescribeEndpoint(ListenOptions, Definition);

    public void OnAccepted(TrackedConnection connection)
    {
        _open.TryAdd(connection, 0);
        Stats.OnAccepted();
    }

    public void OnClosed(TrackedConnection connection, CloseReason reason)
    {
        _open.TryRemove(connection, out _);
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

using System.Net;
using KestrelTcp.Configuration;

namespace KestrelTcp.Connections;

/// <summary>
/// Counts a listener's open connections, in total and per remote IP, against its limits. The per-IP
/// table holds only addresses with open connections, so it cannot grow beyond the open count.
/// </summary>
internal sealed class ConnectionLimiter(ConnectionLimits limits)
{
    private readonly Dictionary<IPAddress, int> _perClient = [];
    private int _open;

    /// <summary>Connections holding a place now: given back as the limit middleware finishes, just after the tracking recorded the close.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>
    /// Takes a place for a connection from <paramref name="remote"/>, or says why not. <paramref name="client"/>
    /// is the address the place counts against, to give back to <see cref="Release"/>: null unless a
    /// per-client limit is set (an IPv4 client of a dual-stack socket costs an address object, which a
    /// held connection would otherwise keep for nothing).
    /// </summary>
    public RejectReason TryAcquire(EndPoint? remote, out IPAddress? client)
    {
        client = null;
        if (Interlocked.Increment(ref _open) > limits.MaxConnections && limits.MaxConnections > 0)
        {
            Interlocked.Decrement(ref _open);
            return RejectReason.MaxConnections;
        }

        if (limits.MaxConnectionsPerClient > 0 && (client = ClientAddress(remote)) is not null)
        {
            lock (_perClient)
            {
                _perClient.TryGetValue(client, out var count);
                if (count >= limits.MaxConnectionsPerClient)
                {
                    Interlocked.Decrement(ref _open);
                    return RejectReason.MaxConnectionsPerClient;
                }

                _perClient[client] = count + 1;
            }
        }

        return RejectReason.None;
    }

    public void Release(IPAddress? client)
    {
        Interlocked.Decrement(ref _open);
        if (limits.MaxConnectionsPerClient > 0 && client is not null)
        {
            lock (_perClient)
            {
                if (_perClient.TryGetValue(client, out var count) && count > 1)
                {
                    _perClient[client] = count - 1;
                }
                else
                {
                    _perClient.Remove(client);
                }
            }
        }
    }

    /// <summary>The address a per-client limit counts against: IPv4 clients of a dual-stack socket as IPv4.</summary>
    public static IPAddress? ClientAddress(EndPoint? remote) => remote switch
    {
        IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip => ip.Address.MapToIPv4(),
        IPEndPoint ip => ip.Address,
        _ => null,
    };
}

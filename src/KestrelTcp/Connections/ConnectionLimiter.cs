using System.Net;
using KestrelTcp.Configuration;

namespace KestrelTcp.Connections;

/// <summary>
/// Counts a listener's open connections, in total and per remote IP, against its limits. The per-IP
/// table holds only addresses with open connections, so it cannot grow beyond the open count.
/// </summary>
internal sealed class ConnectionLimiter(ConnectionLimits limits)
{
    /// <summary>Connections that may wait for a place with <see cref="ConnectionLimits.QueueWhenFull"/>: Kestrel's default listen backlog.</summary>
    public const int MaxWaiting = 512;

    private readonly Dictionary<IPAddress, int> _perClient = [];
    private readonly Queue<TaskCompletionSource<bool>> _waiting = new();
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

        var refused = TryAcquirePerClient(remote, out client);
        if (refused != RejectReason.None)
        {
            ReleasePlace();
        }

        return refused;
    }

    /// <summary>The per-client half of <see cref="TryAcquire"/>, for a connection that already holds a place.</summary>
    public RejectReason TryAcquirePerClient(EndPoint? remote, out IPAddress? client)
    {
        client = null;
        if (limits.MaxConnectionsPerClient > 0 && (client = ClientAddress(remote)) is not null)
        {
            lock (_perClient)
            {
                _perClient.TryGetValue(client, out var count);
                if (count >= limits.MaxConnectionsPerClient)
                {
                    client = null;
                    return RejectReason.MaxConnectionsPerClient;
                }

                _perClient[client] = count + 1;
            }
        }

        return RejectReason.None;
    }

    /// <summary>Connections waiting for a place now.</summary>
    public int Waiting
    {
        get
        {
            lock (_waiting)
            {
                return _waiting.Count;
            }
        }
    }

    /// <summary>
    /// With <see cref="ConnectionLimits.QueueWhenFull"/>, after <see cref="TryAcquire"/> refused for
    /// <see cref="RejectReason.MaxConnections"/>: waits for a place, first come first served. True when a
    /// place was taken (give it back to <see cref="Release"/> as any other); false when the queue is full
    /// or the drain refused the waiting (<see cref="RefuseWaiting"/>).
    /// </summary>
    public Task<bool> WaitForPlaceAsync()
    {
        lock (_waiting)
        {
            // Under the lock Release hands places over in: a place freed meanwhile is taken here.
            if (Interlocked.Increment(ref _open) <= limits.MaxConnections)
            {
                return Task.FromResult(true);
            }

            Interlocked.Decrement(ref _open);
            if (_waiting.Count >= MaxWaiting)
            {
                return Task.FromResult(false);
            }

            var waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting.Enqueue(waiter);
            return waiter.Task;
        }
    }

    /// <summary>Ends every wait for a place, refused: the listener is draining.</summary>
    public void RefuseWaiting()
    {
        lock (_waiting)
        {
            while (_waiting.TryDequeue(out var waiter))
            {
                waiter.TrySetResult(false);
            }
        }
    }

    public void Release(IPAddress? client)
    {
        ReleasePlace();
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

    // A place given back goes to the first waiting connection, if any, without ever being free: a new
    // arrival cannot take it past the queue.
    private void ReleasePlace()
    {
        if (limits.QueueWhenFull)
        {
            lock (_waiting)
            {
                if (_waiting.TryDequeue(out var waiter))
                {
                    waiter.TrySetResult(true);
                    return;
                }

                Interlocked.Decrement(ref _open);
                return;
            }
        }

        Interlocked.Decrement(ref _open);
    }

    /// <summary>The address a per-client limit counts against: IPv4 clients of a dual-stack socket as IPv4.</summary>
    public static IPAddress? ClientAddress(EndPoint? remote) => remote switch
    {
        IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip => ip.Address.MapToIPv4(),
        IPEndPoint ip => ip.Address,
        _ => null,
    };
}

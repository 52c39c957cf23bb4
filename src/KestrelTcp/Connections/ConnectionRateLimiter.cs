using System.Net;
using System.Threading.RateLimiting;
using KestrelTcp.Configuration;

namespace KestrelTcp.Connections;

/// <summary>
/// A listener's connection-rate limits, <c>MaxConnectionRate</c> and <c>MaxConnectionRatePerClient</c>:
/// token buckets of the runtime's <see cref="TokenBucketRateLimiter"/>, each holding one second's worth
/// and refilled continuously. They replenish on demand (<c>AutoReplenishment = false</c>, where
/// <see cref="TokenBucketRateLimiter.TryReplenish"/> adds the tokens the time since the last call has
/// earned), so no bucket has a timer: a table of thousands of clients costs no thread wake-ups.
/// <para>
/// The per-client table is bounded: a bucket untouched for a second is full again, the same as a new
/// one, so it can be dropped without changing any answer; the table is swept of those when it reaches
/// <see cref="MaxTrackedClients"/>, and if a flood of distinct addresses has filled it within one
/// second, the oldest quarter is dropped (those clients start again with a full bucket: the
/// listener's own rate still bounds them all).
/// </para>
/// </summary>
internal sealed class ConnectionRateLimiter
{
    /// <summary>
    /// Clients whose buckets are kept at most. 16,384 buckets of a few hundred bytes each are a few MB
    /// at worst; more distinct clients than that within one second is a flood the listener's own rate
    /// (or the connection limit) has to stop, not a per-client bucket.
    /// </summary>
    public const int MaxTrackedClients = 16_384;

    private readonly TokenBucketRateLimiter? _listener;
    private readonly int _perClientRate;
    private readonly TimeProvider _time;
    private readonly Dictionary<IPAddress, ClientBucket> _clients = [];

    public ConnectionRateLimiter(ConnectionLimits limits, TimeProvider time)
    {
        _time = time;
        _perClientRate = limits.MaxConnectionRatePerClient;
        if (limits.MaxConnectionRate > 0)
        {
            _listener = CreateBucket(limits.MaxConnectionRate);
        }
    }

    /// <summary>True when the listener has any rate limit, so that it needs this check at all.</summary>
    public static bool Applies(ConnectionLimits limits) => limits.MaxConnectionRate > 0 || limits.MaxConnectionRatePerClient > 0;

    /// <summary>Clients with a bucket now (for tests of the bound).</summary>
    public int TrackedClients
    {
        get
        {
            lock (_clients)
            {
                return _clients.Count;
            }
        }
    }

    /// <summary>
    /// Takes a token for a new connection from <paramref name="client"/>: the client's first (a client
    /// over its own rate uses no listener token), then the listener's.
    /// </summary>
    public bool TryAcquire(IPAddress? client)
    {
        if (_perClientRate > 0 && client is not null && !TryAcquireForClient(client))
        {
            return false;
        }

        return _listener is null || TryTake(_listener);
    }

    private bool TryAcquireForClient(IPAddress client)
    {
        var now = _time.GetTimestamp();
        lock (_clients)
        {
            if (!_clients.TryGetValue(client, out var bucket))
            {
                if (_clients.Count >= MaxTrackedClients)
                {
                    Trim(now);
                }

                bucket = new ClientBucket(CreateBucket(_perClientRate));
                _clients.Add(client, bucket);
            }

            bucket.LastUsed = now;
            return TryTake(bucket.Limiter);
        }
    }

    // Under the table's lock. Buckets idle for a second are full: dropping them changes nothing.
    private void Trim(long now)
    {
        var stale = new List<IPAddress>();
        foreach (var (address, bucket) in _clients)
        {
            if (_time.GetElapsedTime(bucket.LastUsed, now) >= TimeSpan.FromSeconds(1))
            {
                stale.Add(address);
            }
        }

        if (stale.Count < MaxTrackedClients / 4)
        {
            stale.AddRange(_clients.OrderBy(c => c.Value.LastUsed).Take(MaxTrackedClients / 4 - stale.Count).Select(c => c.Key));
        }

        foreach (var address in stale)
        {
            if (_clients.Remove(address, out var bucket))
            {
                bucket.Limiter.Dispose();
            }
        }
    }

    private static bool TryTake(TokenBucketRateLimiter bucket)
    {
        bucket.TryReplenish();
        using var lease = bucket.AttemptAcquire();
        return lease.IsAcquired;
    }

    private static TokenBucketRateLimiter CreateBucket(int perSecond) => new(new TokenBucketRateLimiterOptions
    {
        TokenLimit = perSecond,
        TokensPerPeriod = perSecond,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        AutoReplenishment = false,
        QueueLimit = 0,
    });

    private sealed class ClientBucket(TokenBucketRateLimiter limiter)
    {
        public TokenBucketRateLimiter Limiter { get; } = limiter;

        public long LastUsed { get; set; }
    }
}

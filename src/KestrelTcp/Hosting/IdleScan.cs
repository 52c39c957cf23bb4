namespace KestrelTcp.Hosting;

/// <summary>
/// Enforces every listener's <c>IdleTimeout</c>: once a second it walks the open connections of the
/// listeners that have one and lets each check its last receive time. Kestrel has no idle timeout
/// for raw TCP; one timer for the server costs nothing per connection, where a per-connection
/// heartbeat callback cost a list and a registration on every held connection.
/// </summary>
internal sealed class IdleScan : IDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly ListenerRuntime[] _listeners;
    private readonly ITimer? _timer;

    public IdleScan(IEnumerable<ListenerRuntime> listeners, TimeProvider time)
    {
        _listeners = listeners.Where(l => l.Definition.Limits.IdleTimeout > TimeSpan.Zero).ToArray();
        if (_listeners.Length > 0)
        {
            _timer = time.CreateTimer(static state => ((IdleScan)state!).Scan(), this, Interval, Interval);
        }
    }

    public void Scan()
    {
        foreach (var listener in _listeners)
        {
            var timeout = listener.Definition.Limits.IdleTimeout;
            foreach (var connection in listener.OpenConnections)
            {
                connection.CheckIdle(timeout);
            }
        }
    }

    public void Dispose() => _timer?.Dispose();
}

using System.Buffers;
using KestrelTcp.Hosting;

namespace KestrelTcp.Connections;

/// <summary>
/// Enforces every listener's <c>IdleTimeout</c>: once a second it walks the open connections of the
/// listeners that have one. A connection that has received nothing for the timeout (by its
/// transport's last-receive time) is asked to finish gracefully (FIN); one whose handler ignores that
/// for as long again (blocked writing to a client that never reads) is aborted. Kestrel has no idle
/// timeout for raw TCP; one timer for the server costs nothing per connection.
/// </summary>
internal sealed class IdleTimeout : IDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly ListenerRuntime[] _listeners;
    private readonly TimeProvider _time;
    private readonly ITimer? _timer;

    public IdleTimeout(IEnumerable<ListenerRuntime> listeners, TimeProvider time)
    {
        _time = time;
        _listeners = [.. listeners.Where(l => l.Definition.Limits.IdleTimeout > TimeSpan.Zero)];
        if (_listeners.Length > 0)
        {
            _timer = time.CreateTimer(static state => ((IdleTimeout)state!).Scan(), this, Interval, Interval);
        }
    }

    public void Scan()
    {
        var now = _time.GetTimestamp();
        foreach (var listener in _listeners)
        {
            var timeout = listener.Definition.Limits.IdleTimeout;
            // A pooled copy: with 10,000 open a fresh one would be an 80 KB array a second.
            var buffer = ArrayPool<TrackedConnection>.Shared.Rent(listener.OpenCount + 16);
            var count = listener.Open.CopyTo(buffer);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    Check(buffer[i], timeout, now);
                }
            }
            finally
            {
                ArrayPool<TrackedConnection>.Shared.Return(buffer, clearArray: true);
            }
        }
    }

    public void Dispose() => _timer?.Dispose();

    private void Check(TrackedConnection connection, TimeSpan timeout, long now)
    {
        if (connection.IdleClosingSince != 0)
        {
            if (_time.GetElapsedTime(connection.IdleClosingSince, now) >= timeout)
            {
                connection.Abort("Idle timeout");
            }

            return;
        }

        if (_time.GetElapsedTime(connection.Transfer.LastReceivedTimestamp, now) >= timeout)
        {
            connection.IdleClosingSince = now;
            connection.RequestClose(CloseReason.IdleTimeout);
        }
    }
}

namespace KestrelTcp.Connections;

/// <summary>
/// The open connections of one listener: a doubly-linked list whose nodes are the tracked
/// connections themselves, under a lock held only to link, unlink or copy. Each held connection
/// costs two references here, where a concurrent dictionary cost a 40-byte node and its share of
/// the bucket table. Callers act on a copy (<see cref="CopyTo"/>), never under the lock: asking a
/// connection to close runs whatever its handler registered on the request.
/// </summary>
internal sealed class OpenConnectionSet
{
    private readonly Lock _lock = new();
    private TrackedConnection? _first;
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public void Add(TrackedConnection connection)
    {
        lock (_lock)
        {
            connection.NextOpen = _first;
            if (_first is not null)
            {
                _first.PreviousOpen = connection;
            }

            _first = connection;
            _count++;
        }
    }

    public void Remove(TrackedConnection connection)
    {
        lock (_lock)
        {
            if (connection.PreviousOpen is { } previous)
            {
                previous.NextOpen = connection.NextOpen;
            }
            else if (_first == connection)
            {
                _first = connection.NextOpen;
            }
            else
            {
                return; // not in the set (removed already)
            }

            if (connection.NextOpen is { } next)
            {
                next.PreviousOpen = connection.PreviousOpen;
            }

            connection.PreviousOpen = connection.NextOpen = null;
            _count--;
        }
    }

    /// <summary>Copies up to <c>buffer.Length</c> open connections (newest first) into <paramref name="buffer"/>; returns how many.</summary>
    public int CopyTo(TrackedConnection[] buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        lock (_lock)
        {
            var copied = 0;
            for (var connection = _first; connection is not null && copied < buffer.Length; connection = connection.NextOpen)
            {
                buffer[copied++] = connection;
            }

            return copied;
        }
    }

    /// <summary>A copy of at most <paramref name="max"/> open connections.</summary>
    public TrackedConnection[] Snapshot(int max = int.MaxValue)
    {
        var buffer = new TrackedConnection[Math.Min(max, Count + 16)];
        var copied = CopyTo(buffer);
        return copied == buffer.Length ? buffer : buffer[..copied];
    }
}

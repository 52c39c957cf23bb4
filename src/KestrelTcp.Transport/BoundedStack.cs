namespace KestrelTcp.Transport;

/// <summary>
/// A small thread-safe last-in first-out store of reusable objects, holding at most a fixed number:
/// the free lists of the transport's memory pool and of the socket senders. LIFO, so the object
/// handed out next is the one returned last, still warm in the CPU's caches.
/// </summary>
internal sealed class BoundedStack<T>(int capacity)
    where T : class
{
    private readonly T?[] _items = new T?[capacity];
    private readonly Lock _lock = new();
    private int _count;
    private bool _closed;

    public bool TryPop(out T item)
    {
        lock (_lock)
        {
            if (_count > 0)
            {
                item = _items[--_count]!;
                _items[_count] = null;
                return true;
            }
        }

        item = null!;
        return false;
    }

    /// <summary>Keeps <paramref name="item"/> unless full or closed; false means the caller lets it go.</summary>
    public bool TryPush(T item)
    {
        lock (_lock)
        {
            if (_closed || _count == _items.Length)
            {
                return false;
            }

            _items[_count++] = item;
            return true;
        }
    }

    /// <summary>Drops everything held and keeps nothing from now on.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            Array.Clear(_items);
            _count = 0;
        }
    }
}

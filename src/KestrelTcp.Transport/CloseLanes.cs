using System.Collections.Concurrent;

namespace KestrelTcp.Transport;

/// <summary>
/// Where connections that end (the client's FIN, a reset) finish, with inline completions: one
/// dedicated thread per processor, each with its own queue. Inline, a connection's end would run
/// its handler's finish, the close event and the socket's teardown on the socket event thread that
/// saw it, and when thousands of clients leave at once (a proxy restarting) that thread is busy with
/// them for hundreds of milliseconds while the sockets it also serves, the management port's among
/// them, wait: `/health/ready` stalled 400–600 ms in the hold benchmark's closing burst. Here the
/// burst queues up behind the lane while the event threads and the thread pool stay free, and the
/// kernel shares the processor between them. Data never goes through a lane; only ends do.
/// Owned by one <see cref="TcpTransportFactory"/>; its threads end when the factory is disposed.
/// </summary>
internal sealed class CloseLanes : IDisposable
{
    private readonly BlockingCollection<Action>[] _queues;
    private int _next;

    public CloseLanes(int count)
    {
        _queues = new BlockingCollection<Action>[count];
        for (var i = 0; i < count; i++)
        {
            var queue = _queues[i] = new BlockingCollection<Action>(new ConcurrentQueue<Action>());
            var thread = new Thread(() => Run(queue)) { IsBackground = true, Name = $"KestrelTcp close {i}" };
            thread.UnsafeStart();
        }
    }

    /// <summary>Runs <paramref name="end"/> on the next lane (or right here once the lanes are stopped).</summary>
    public void Post(Action end)
    {
        var queue = _queues[(int)((uint)Interlocked.Increment(ref _next) % (uint)_queues.Length)];
        try
        {
            queue.Add(end);
        }
        catch (InvalidOperationException)
        {
            // Stopped with the transport: the connection still has to end.
            end();
        }
    }

    public void Dispose()
    {
        foreach (var queue in _queues)
        {
            queue.CompleteAdding();
        }
    }

    private static void Run(BlockingCollection<Action> queue)
    {
        foreach (var end in queue.GetConsumingEnumerable())
        {
            // Each end completes a read whose continuation is an async method, which keeps its
            // exceptions in its task: nothing thrown here is expected, and none may stop the lane.
            try
            {
                end();
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"KestrelTcp close lane: {ex}");
            }
        }
    }
}

using System.Collections.Concurrent;

namespace KestrelTcp.Transport;

/// <summary>
/// Where connections that end (the client's FIN, a reset) finish, with inline scheduling: one
/// dedicated thread per processor, each with its own queue. Inline, a connection's end would run
/// its handler's finish, the close event and the socket's teardown on the socket event thread that
/// saw it, and when thousands of clients leave at once (a proxy restarting) that thread is busy with
/// them for hundreds of milliseconds while the sockets it also serves, the management port's among
/// them, wait: `/health/ready` stalled 400–600 ms in the hold benchmark's closing burst. Here the
/// burst queues up behind the lane while the event threads and the thread pool stay free, and the
/// kernel shares the processor between them. Data never goes through a lane; only ends do.
/// </summary>
internal static class CloseLane
{
    private static readonly Lane[] Lanes = CreateLanes(Math.Clamp(Environment.ProcessorCount, 1, 8));
    private static int s_next;

    public static void Post(TcpInput input)
    {
        var lane = Lanes[(int)((uint)Interlocked.Increment(ref s_next) % (uint)Lanes.Length)];
        lane.Post(input);
    }

    private static Lane[] CreateLanes(int count)
    {
        var lanes = new Lane[count];
        for (var i = 0; i < count; i++)
        {
            lanes[i] = new Lane(i);
        }

        return lanes;
    }

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The lanes live as long as the process.")]
    private sealed class Lane
    {
        private readonly BlockingCollection<TcpInput> _queue = new(new ConcurrentQueue<TcpInput>());

        public Lane(int index)
        {
            var thread = new Thread(Run) { IsBackground = true, Name = $"KestrelTcp close {index}" };
            thread.UnsafeStart();
        }

        public void Post(TcpInput input) => _queue.Add(input);

        private void Run()
        {
            foreach (var input in _queue.GetConsumingEnumerable())
            {
                try
                {
                    input.DeliverEnd();
                }
                catch (Exception ex)
                {
                    // Continuations are async methods, which keep their exceptions in their tasks, so
                    // this does not happen; if it ever does, the lane must go on serving the others.
                    Console.Error.WriteLine($"KestrelTcp close lane: {ex}");
                }
            }
        }
    }
}

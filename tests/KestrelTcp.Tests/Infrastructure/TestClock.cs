using Microsoft.Extensions.Time.Testing;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>
/// The server's clock in a test: a <see cref="FakeTimeProvider"/> that moves only when the test
/// advances it, and that says when code arms a timer on it. A test advances past a wait (the
/// drain's poll, Shutdown:Delay, Echo's quiet period) only once the code is in it: advanced a moment
/// earlier, the timer would be armed after the jump and the test would wait for nothing.
/// </summary>
public sealed class TestClock : FakeTimeProvider
{
    /// <summary>Wed Jan 29 19:14:15.123 2014 UTC, the Time handler's example in the README.</summary>
    public static readonly DateTimeOffset Epoch = new(2014, 1, 29, 19, 14, 15, 123, TimeSpan.Zero);

    private readonly List<(TimeSpan DueTime, TaskCompletionSource Armed)> _watches = [];

    public TestClock()
        : base(Epoch)
    {
    }

    /// <summary>How far the clock has been advanced since it started.</summary>
    public TimeSpan Elapsed => GetUtcNow() - Start;

    /// <summary>
    /// Completes when a timer due <paramref name="dueTime"/> from its arming is armed next. Call it
    /// before the action that arms the timer, await it after.
    /// </summary>
    public Task WhenArmed(TimeSpan dueTime)
    {
        var armed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_watches)
        {
            _watches.Add((dueTime, armed));
        }

        return armed.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new WatchedTimer(this, base.CreateTimer(callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan));
        timer.Change(dueTime, period);
        return timer;
    }

    private void OnArmed(TimeSpan dueTime)
    {
        lock (_watches)
        {
            foreach (var watch in _watches.Where(w => w.DueTime == dueTime).ToList())
            {
                watch.Armed.TrySetResult();
                _watches.Remove(watch);
            }
        }
    }

    // Task.Delay and CancellationTokenSource may arm a timer by Change after creating it: both are seen.
    private sealed class WatchedTimer(TestClock clock, ITimer inner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            var changed = inner.Change(dueTime, period);
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                clock.OnArmed(dueTime);
            }

            return changed;
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}

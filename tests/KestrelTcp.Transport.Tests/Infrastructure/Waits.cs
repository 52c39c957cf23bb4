using System.Diagnostics;

namespace KestrelTcp.Transport.Tests.Infrastructure;

/// <summary>Bounded waits: every one ends in a result or a failure, none in a fixed sleep that decides a test.</summary>
public static class Waits
{
    /// <summary>How long anything that should happen may take before the test fails.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Waits until <paramref name="progress"/> has not moved for <paramref name="quiet"/> and returns
    /// where it stopped; fails after <see cref="Timeout"/>. For a flow that backpressure should stop:
    /// whether it stopped at the right place is for the caller to assert (a flow that is not held
    /// stops too, at its end, and the caller's bound then fails).
    /// </summary>
    public static async Task<long> SettledAsync(Func<long> progress, TimeSpan? quiet = null)
    {
        var stillFor = quiet ?? TimeSpan.FromMilliseconds(300);
        var deadline = Stopwatch.StartNew();
        var last = progress();
        var since = Stopwatch.StartNew();
        while (since.Elapsed < stillFor)
        {
            if (deadline.Elapsed > Timeout)
            {
                throw new TimeoutException($"still moving after {Timeout.TotalSeconds} s (at {last})");
            }

            await Task.Delay(20);
            var now = progress();
            if (now != last)
            {
                last = now;
                since.Restart();
            }
        }

        return last;
    }

    /// <summary>Waits until <paramref name="condition"/> holds; fails after <see cref="Timeout"/> naming <paramref name="what"/>.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > Timeout)
            {
                Assert.Fail($"timed out after {Timeout.TotalSeconds} s waiting until {what}");
            }

            await Task.Delay(10);
        }
    }

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(Timeout);

    public static Task Within(this Task task) => task.WaitAsync(Timeout);

    public static Task<T> Within<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(Timeout);

    public static Task Within(this ValueTask task) => task.AsTask().WaitAsync(Timeout);
}

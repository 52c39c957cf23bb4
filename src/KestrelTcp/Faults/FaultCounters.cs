using System.Diagnostics.Metrics;
using KestrelTcp.Hosting;

namespace KestrelTcp.Faults;

/// <summary>
/// A listener's faults and how often each was applied: one count per fault kind, added to once per
/// faulted connection (never per byte), read by <c>kestreltcp_faults_total</c> at collection time.
/// Only the listener's configured faults are exported, each from the start at 0: the series present
/// are exactly those that can move. (Every reject reason can happen on every listener, so
/// <c>rejected_total</c> lists them all; a fault that is not configured never can.)
/// </summary>
internal sealed class FaultCounters
{
    private readonly long[] _counts = new long[FaultKinds.All.Count];

    private FaultCounters(FaultOptions options)
    {
        Options = options;
        Kinds = options.ConfiguredKinds();
    }

    public FaultOptions Options { get; }

    /// <summary>The faults configured, in label order.</summary>
    public FaultKind[] Kinds { get; }

    /// <summary>The counters of a listener whose <c>Faults</c> configure at least one fault, else null (nothing is added for it).</summary>
    public static FaultCounters? For(FaultOptions? options) =>
        options is not null && options.ConfiguredKinds().Length > 0 ? new FaultCounters(options) : null;

    public long Count(FaultKind kind) => Volatile.Read(ref _counts[(int)kind]);

    /// <summary>Counts every configured fault once, for one connection they apply to.</summary>
    public void Applied()
    {
        foreach (var kind in Kinds)
        {
            Interlocked.Increment(ref _counts[(int)kind]);
        }
    }

    /// <summary>The measurements of <c>kestreltcp.faults</c>: per listener with faults, per configured fault.</summary>
    public static IEnumerable<Measurement<long>> Measure(IEnumerable<ListenerRuntime> listeners) =>
        listeners.Where(l => l.Faults is not null).SelectMany(l => l.Faults!.Kinds.Select(k => new Measurement<long>(l.Faults.Count(k),
            new KeyValuePair<string, object?>("listener", l.Name), new KeyValuePair<string, object?>("fault", FaultKinds.Label(k)))));
}

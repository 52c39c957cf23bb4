using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// KestrelTcp.HeapStat PID heap [TOP]      live managed heap of PID by type (one induced GC with a heap dump)
// KestrelTcp.HeapStat PID pauses SECONDS  every GC of PID for SECONDS: generation, reason, pause; thread-pool adjustments
// KestrelTcp.HeapStat PID allocs SECONDS [TOP]  what PID allocates for SECONDS, by type (the runtime's allocation ticks: one per ~100 KB)
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: KestrelTcp.HeapStat PID heap [TOP] | KestrelTcp.HeapStat PID pauses SECONDS");
    return 2;
}

var pid = int.Parse(args[0], CultureInfo.InvariantCulture);
var client = new DiagnosticsClient(pid);
return args[1] switch
{
    "heap" => Heap(client, args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 40),
    "pauses" => Pauses(client, args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 30),
    "allocs" => Allocs(client, args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10, args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 30),
    _ => 2,
};

static int Heap(DiagnosticsClient client, int top)
{
    const ClrTraceEventParser.Keywords Keywords = ClrTraceEventParser.Keywords.GC | ClrTraceEventParser.Keywords.GCHeapCollect
        | ClrTraceEventParser.Keywords.GCHeapDump | ClrTraceEventParser.Keywords.Type | ClrTraceEventParser.Keywords.GCHeapAndTypeNames;
    using var session = client.StartEventPipeSession(
        [new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Verbose, (long)Keywords)], requestRundown: false, circularBufferMB: 512);
    using var source = new EventPipeEventSource(session.EventStream);
    var types = new Dictionary<ulong, string>();
    var sizes = new Dictionary<ulong, (long Count, long Bytes)>();
    var dumpGc = -1;
    var stopping = 0;
    source.Clr.GCStart += e =>
    {
        if (dumpGc < 0 && e.Reason == GCReason.Induced)
        {
            dumpGc = e.Count;
        }
    };
    source.Clr.GCStop += e =>
    {
        if (e.Count == dumpGc && Interlocked.Exchange(ref stopping, 1) == 0)
        {
            // The heap dump's bulk events follow the GC's end closely; give them a second.
            _ = Task.Delay(1000).ContinueWith(_ => session.Stop(), TaskScheduler.Default);
        }
    };
    source.Clr.TypeBulkType += e =>
    {
        for (var i = 0; i < e.Count; i++)
        {
            var type = e.Values(i);
            types[type.TypeID] = type.TypeName;
        }
    };
    source.Clr.GCBulkNode += e =>
    {
        for (var i = 0; i < e.Count; i++)
        {
            var node = e.Values(i);
            sizes.TryGetValue(node.TypeID, out var sum);
            sizes[node.TypeID] = (sum.Count + 1, sum.Bytes + (long)node.Size);
        }
    };
    source.Process();

    Console.WriteLine($"live heap: {sizes.Values.Sum(s => s.Bytes)} bytes in {sizes.Values.Sum(s => s.Count)} objects");
    Console.WriteLine($"{"bytes",12} {"objects",8} type");
    foreach (var (id, sum) in sizes.OrderByDescending(kv => kv.Value.Bytes).Take(top))
    {
        Console.WriteLine($"{sum.Bytes,12} {sum.Count,8} {(types.TryGetValue(id, out var name) ? name : id.ToString(CultureInfo.InvariantCulture))}");
    }

    return 0;
}

static int Allocs(DiagnosticsClient client, int seconds, int top)
{
    using var session = client.StartEventPipeSession(
        [new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Verbose, (long)ClrTraceEventParser.Keywords.GC)], requestRundown: false);
    using var source = new EventPipeEventSource(session.EventStream);
    var sums = new Dictionary<string, (long Ticks, long Bytes)>();
    source.Clr.GCAllocationTick += e =>
    {
        sums.TryGetValue(e.TypeName ?? "?", out var sum);
        sums[e.TypeName ?? "?"] = (sum.Ticks + 1, sum.Bytes + e.AllocationAmount64);
    };
    _ = Task.Delay(TimeSpan.FromSeconds(seconds)).ContinueWith(_ => session.Stop(), TaskScheduler.Default);
    source.Process();

    Console.WriteLine($"allocated (sampled): {sums.Values.Sum(s => s.Bytes)} bytes in {sums.Values.Sum(s => s.Ticks)} ticks");
    foreach (var (type, sum) in sums.OrderByDescending(kv => kv.Value.Bytes).Take(top))
    {
        Console.WriteLine($"{sum.Bytes,12} {sum.Ticks,6} {type}");
    }

    return 0;
}

static int Pauses(DiagnosticsClient client, int seconds)
{
    const ClrTraceEventParser.Keywords Keywords = ClrTraceEventParser.Keywords.GC | ClrTraceEventParser.Keywords.Threading;
    using var session = client.StartEventPipeSession(
        [new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, (long)Keywords)], requestRundown: false);
    using var source = new EventPipeEventSource(session.EventStream);
    double suspendedAt = 0;
    var generation = -1;
    var reason = "";
    var pauses = new List<double>();
    source.Clr.GCSuspendEEStart += e => suspendedAt = e.TimeStampRelativeMSec;
    source.Clr.GCStart += e =>
    {
        generation = e.Depth;
        reason = $"{e.Reason}/{e.Type}";
    };
    source.Clr.GCRestartEEStop += e =>
    {
        var pause = e.TimeStampRelativeMSec - suspendedAt;
        pauses.Add(pause);
        Console.WriteLine($"{e.TimeStampRelativeMSec,10:0} ms  gen{generation} {reason,-30} pause {pause,8:0.0} ms");
    };
    source.Clr.ThreadPoolWorkerThreadAdjustmentAdjustment += e =>
        Console.WriteLine($"{e.TimeStampRelativeMSec,10:0} ms  thread pool -> {e.NewWorkerThreadCount} threads ({e.Reason})");
    _ = Task.Delay(TimeSpan.FromSeconds(seconds)).ContinueWith(_ => session.Stop(), TaskScheduler.Default);
    source.Process();
    Console.WriteLine($"{pauses.Count} GCs, longest pause {(pauses.Count > 0 ? pauses.Max() : 0):0.0} ms, total {pauses.Sum():0.0} ms");
    return 0;
}

using KestrelTcp.Bench;

// KestrelTcp's load generator. bench/run.sh drives it; each command runs one scenario against one
// server and prints progress on stderr and one RESULT line on stdout. See docs/benchmarks.md.
const string Usage = """
    usage: KestrelTcp.Bench COMMAND [--key value …]
      bulk      --port P [--connections 64] [--chunk 16384] [--window 65536]
      pingpong  --port P [--connections 1] [--size 64] [--mode sync|async]
      accept    --port P (Time) [--workers 32] [--timeout-ms 5000]
      hold      --port P [--protocol echo|greeting] [--connections 10000] [--seconds 30] [--ping-interval 10]
                [--http-port H] [--pid SERVER_PID] [--threads 16]
      tls-bulk  --port P (TLS Echo) [--connections 64] [--chunk 16384] [--window 65536]
      tls-handshake --port P (TLS Echo) [--connections 16] [--size 16]
                TLS: [--tls-protocols tls13|tls12|any] [--tls-host 127.0.0.1]; certificate not validated, no resumption
                (diagnostics: --tls-resume allows resumption, --tls-system-roots builds the chain against the system's roots)
      startup   --http-port H [--runs 5] [--target NAME] -- COMMAND ARGS…
      report    FILE [--markdown]   (table and ratios from the RESULT lines in FILE)
      ports     N                   (prints N free loopback ports)
    common: --host 127.0.0.1 (loopback unless you name another) --target NAME --pid SERVER_PID[,PID…] (CPU summed)
            --case NAME --round N --stack WHAT (copied into the RESULT line)
            --warmup 1 --seconds 5 --max-ops 100000000
    """;

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}

foreach (var tag in (string[])["case", "round", "stack"])
{
    var at = Array.IndexOf(args, "--" + tag);
    if (at > 0 && at + 1 < args.Length)
    {
        Result.Tags.Add(new(tag, args[at + 1]));
    }
}

try
{
    return args[0] switch
    {
        "bulk" => await Bulk.RunAsync(new Args(args[1..])),
        "pingpong" => await PingPong.RunAsync(new Args(args[1..])),
        "accept" => await Accept.RunAsync(new Args(args[1..])),
        "tls-bulk" => await TlsBulk.RunAsync(new Args(args[1..])),
        "tls-handshake" => await TlsHandshake.RunAsync(new Args(args[1..])),
        "hold" => Hold.Run(new Args(args[1..])),
        "startup" => Startup.Run(new Args(args[1..])),
        "report" => Report.Run(args[1], new Args(args[2..])),
        "ports" => Ports(int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture)),
        _ => throw new ArgumentException($"unknown command '{args[0]}'"),
    };
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(Usage);
    return 2;
}

static int Ports(int n)
{
    Console.WriteLine(string.Join(' ', Probe.FreePorts(n)));
    return 0;
}

using System.Globalization;
using System.Text;

namespace KestrelTcp.Bench;

/// <summary>One scenario's outcome: a <c>RESULT key=value …</c> line on stdout, the machine-readable record.</summary>
internal sealed class Result(string scenario, string target)
{
    private readonly List<KeyValuePair<string, string>> _fields = [new("scenario", scenario), new("target", target), .. Tags];

    /// <summary>Fields every line carries, from <c>--case</c> and <c>--round</c>, so a report can pair runs.</summary>
    public static List<KeyValuePair<string, string>> Tags { get; } = [];

    public Result Add(string key, string value)
    {
        _fields.Add(new(key, value.Replace(' ', '_')));
        return this;
    }

    public Result Add(string key, long value) => Add(key, value.ToString(CultureInfo.InvariantCulture));

    public Result Add(string key, double value) => Add(key, value.ToString("0.###", CultureInfo.InvariantCulture));

    public override string ToString()
    {
        var sb = new StringBuilder("RESULT");
        foreach (var (k, v) in _fields)
        {
            sb.Append(' ').Append(k).Append('=').Append(v);
        }

        return sb.ToString();
    }

    public void Print()
    {
        Console.Out.WriteLine(ToString());
        Console.Out.Flush();
    }

    /// <summary>Parses a <c>RESULT</c> line back into its fields.</summary>
    public static Dictionary<string, string>? Parse(string line)
    {
        if (!line.StartsWith("RESULT ", StringComparison.Ordinal))
        {
            return null;
        }

        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in line[7..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                fields[part[..eq]] = part[(eq + 1)..];
            }
        }

        return fields;
    }
}

/// <summary>Failures counted by kind (refused, reset, timeout, eof, corrupt, …).</summary>
internal sealed class Failures
{
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);

    public long Total
    {
        get
        {
            lock (_counts)
            {
                return _counts.Values.Sum();
            }
        }
    }

    public void Add(string kind)
    {
        lock (_counts)
        {
            _counts[kind] = _counts.GetValueOrDefault(kind) + 1;
        }
    }

    public void Add(Exception e) => Add(Kind(e));

    public static string Kind(Exception e) => e switch
    {
        System.Net.Sockets.SocketException s => s.SocketErrorCode switch
        {
            System.Net.Sockets.SocketError.ConnectionRefused => "refused",
            System.Net.Sockets.SocketError.ConnectionReset => "reset",
            System.Net.Sockets.SocketError.TimedOut => "timeout",
            System.Net.Sockets.SocketError.OperationAborted => "aborted",
            var code => code.ToString().ToLowerInvariant(),
        },
        ObjectDisposedException or OperationCanceledException => "aborted",
        BenchException b => b.Kind,
        System.Security.Authentication.AuthenticationException => "tls_handshake",
        EndOfStreamException => "eof",
        IOException { InnerException: System.Net.Sockets.SocketException s } => Kind(s),
        IOException => "io",
        _ => e.GetType().Name,
    };

    public override string ToString()
    {
        lock (_counts)
        {
            return _counts.Count == 0 ? "none" : string.Join(',', _counts.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}:{p.Value}"));
        }
    }
}

/// <summary>A failure the benchmark detects itself: early end of stream, wrong bytes.</summary>
internal sealed class BenchException(string kind) : Exception(kind)
{
    public string Kind { get; } = kind;
}

using System.Globalization;
using System.Net;

namespace KestrelTcp.Bench;

/// <summary><c>--key value</c> options; everything after a bare <c>--</c> is kept as <see cref="Rest"/>.</summary>
internal sealed class Args
{
    private readonly Dictionary<string, string> _values = new(StringComparer.OrdinalIgnoreCase);

    public Args(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--")
            {
                Rest = args.Skip(i + 1).ToArray();
                break;
            }

            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                throw new ArgumentException($"unexpected argument '{a}'");
            }

            var eq = a.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                _values[a[2..eq]] = a[(eq + 1)..];
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                _values[a[2..]] = args[++i];
            }
            else
            {
                _values[a[2..]] = "true";
            }
        }
    }

    public string[] Rest { get; } = [];

    public string Str(string key, string fallback) => _values.TryGetValue(key, out var v) ? v : fallback;

    public string? Str(string key) => _values.TryGetValue(key, out var v) ? v : null;

    public int Int(string key, int fallback) => _values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public double Double(string key, double fallback) => _values.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public bool Flag(string key) => _values.TryGetValue(key, out var v) && v != "false";

    /// <summary>The server to load. Loopback unless the user names another host.</summary>
    public IPAddress Host()
    {
        var host = Str("host", "127.0.0.1");
        if (IPAddress.TryParse(host, out var ip))
        {
            return ip;
        }

        return Dns.GetHostAddresses(host)[0];
    }

    public IPEndPoint EndPoint(string portKey) =>
        new(Host(), Int(portKey, 0) is > 0 and var p ? p : throw new ArgumentException($"--{portKey} is required"));
}

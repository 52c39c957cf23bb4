using System.Net;

namespace KestrelTcp.Configuration;

/// <summary>
/// A list of addresses and CIDR blocks (<c>10.0.0.0/8</c>, <c>::1</c>), as <c>Access:Allow</c>,
/// <c>Access:Deny</c> and <c>ProxyProtocol:TrustedProxies</c> give them. Parsing and matching are the
/// runtime's <see cref="IPNetwork"/>; what this adds is the configuration reading (each bad entry a
/// problem naming its key) and the rule that an IPv4-mapped IPv6 client (<c>::ffff:10.1.2.3</c>, what
/// a dual-stack socket reports for an IPv4 peer) matches the IPv4 entries.
/// </summary>
public sealed class NetworkList
{
    /// <summary>The list with no entries: matches nothing.</summary>
    public static NetworkList Empty { get; } = new([]);

    private readonly IPNetwork[] _networks;

    public NetworkList(IEnumerable<IPNetwork> networks) => _networks = [.. networks];

    /// <summary>The entries, in configuration order.</summary>
    public IReadOnlyList<IPNetwork> Networks => _networks;

    public bool IsEmpty => _networks.Length == 0;

    /// <summary>True when <paramref name="address"/> is inside one of the entries.</summary>
    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        foreach (var network in _networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Reads the list under <paramref name="parent"/>:<paramref name="key"/>: an array
    /// (<c>key:0</c>, <c>key:1</c>, …) or one comma-separated value. A missing key gives <see cref="Empty"/>;
    /// every entry that is neither an address nor a CIDR block is a problem naming its key.
    /// </summary>
    public static NetworkList Read(IConfigurationSection parent, string key, ICollection<string> problems)
    {
        var section = parent.GetSection(key);
        var entries = new List<(string Path, string Text)>();
        if (section.Value is { Length: > 0 } single)
        {
            foreach (var part in single.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                entries.Add((section.Path, part));
            }
        }

        foreach (var child in section.GetChildren())
        {
            if (child.Value is { } text)
            {
                entries.Add((child.Path, text.Trim()));
            }
        }

        if (entries.Count == 0)
        {
            return Empty;
        }

        var networks = new List<IPNetwork>(entries.Count);
        foreach (var (path, text) in entries)
        {
            if (TryParse(text, out var network))
            {
                networks.Add(network);
            }
            else
            {
                problems.Add($"{path}: '{text}' is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)");
            }
        }

        return new NetworkList(networks);
    }

    /// <summary>
    /// An address (a block of one) or a CIDR block, parsed by <see cref="IPNetwork.TryParse(string, out IPNetwork)"/>
    /// (which takes <c>10.1.2.3/8</c> as <c>10.0.0.0/8</c>, as iptables does). IPv4 is written in full,
    /// four numbers: the legacy short forms <see cref="IPAddress"/> also reads (<c>10.0.0</c> is
    /// 10.0.0.0, <c>10</c> is 0.0.0.10) are refused as the typos they almost always are. An IPv4-mapped
    /// entry is taken as its IPv4 address.
    /// </summary>
    public static bool TryParse(string text, out IPNetwork network)
    {
        var trimmed = text.StartsWith('[') && text.EndsWith(']') ? text[1..^1] : text;
        var address = trimmed.AsSpan()[..(trimmed.IndexOf('/') is var slash and >= 0 ? slash : trimmed.Length)];
        if (!address.Contains(':') && address.Count('.') != 3)
        {
            network = default;
            return false;
        }

        return trimmed.Contains('/') ? IPNetwork.TryParse(trimmed, out network) : TryParseAddress(trimmed, out network);
    }

    private static bool TryParseAddress(string text, out IPNetwork network)
    {
        network = default;
        if (IPAddress.TryParse(text, out var address))
        {
            if (address.IsIPv4MappedToIPv6)
            {
                address = address.MapToIPv4();
            }

            if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                // Scope ids (fe80::1%eth0) play no part in matching.
                address.ScopeId = 0;
            }

            network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }

        return false;
    }
}

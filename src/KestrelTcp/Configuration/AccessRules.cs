using System.Net;

namespace KestrelTcp.Configuration;

/// <summary>
/// A listener's <c>Access</c> section: which clients it serves, checked against the client after the
/// PROXY protocol header (if any). xinetd's <c>only_from</c> and <c>no_access</c>.
/// </summary>
public sealed record AccessRules
{
    /// <summary>No rules: every client is served (the default).</summary>
    public static AccessRules None { get; } = new();

    /// <summary>When not empty, only clients inside one of these are served. Default empty: every client.</summary>
    public NetworkList Allow { get; init; } = NetworkList.Empty;

    /// <summary>Clients inside one of these are never served; wins over <see cref="Allow"/>. Default empty.</summary>
    public NetworkList Deny { get; init; } = NetworkList.Empty;

    /// <summary>True when there is no rule at all, so the listener needs no access check.</summary>
    public bool IsEmpty => Allow.IsEmpty && Deny.IsEmpty;

    /// <summary>
    /// True when <paramref name="client"/> may be served. A client without an IP address (a Unix socket
    /// peer without a PROXY header) is served only when there is no <see cref="Allow"/> list.
    /// </summary>
    public bool Permits(IPAddress? client) =>
        client is null
            ? Allow.IsEmpty
            : !Deny.Contains(client) && (Allow.IsEmpty || Allow.Contains(client));

    /// <summary>Reads <c>Access:Allow</c> and <c>Access:Deny</c> under <paramref name="section"/> (the listener's <c>Access</c> section).</summary>
    internal static AccessRules Read(IConfigurationSection section, ICollection<string> problems)
    {
        var rules = new AccessRules
        {
            Allow = NetworkList.Read(section, "Allow", problems),
            Deny = NetworkList.Read(section, "Deny", problems),
        };
        return rules.IsEmpty ? None : rules;
    }
}

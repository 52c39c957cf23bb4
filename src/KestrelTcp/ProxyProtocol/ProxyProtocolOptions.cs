using KestrelTcp.Configuration;

namespace KestrelTcp.ProxyProtocol;

/// <summary>
/// A listener's <c>ProxyProtocol</c> section: whether a PROXY protocol header must come first on each
/// connection, who may send it, and how long it may take to arrive.
/// </summary>
public sealed record ProxyProtocolOptions
{
    /// <summary>No PROXY protocol: what a listener without the section gets.</summary>
    public static ProxyProtocolOptions Off { get; } = new();

    /// <summary>
    /// Which header is required (<c>Mode</c>). Default <see cref="ProxyProtocolMode.Off"/>: a header is
    /// never guessed at, so only an operator who knows a proxy sends one turns it on.
    /// </summary>
    public ProxyProtocolMode Mode { get; init; } = ProxyProtocolMode.Off;

    /// <summary>
    /// The TCP peers (addresses or CIDR blocks) allowed to send a header (<c>TrustedProxies</c>); any
    /// other peer is refused when it connects. Required when <see cref="Mode"/> is not Off; default
    /// empty, because trusting anyone would let any client choose the address it is seen from.
    /// </summary>
    public NetworkList TrustedProxies { get; init; } = NetworkList.Empty;

    /// <summary>
    /// How long a trusted peer has to send the whole header (<c>HeaderTimeout</c>). Default 3 s, the
    /// spec's "at least 3 seconds to cover a TCP retransmit".
    /// </summary>
    public TimeSpan HeaderTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Reads a listener's <c>ProxyProtocol</c> <paramref name="section"/>; a missing section is <see cref="Off"/>.
    /// Every problem is added to <paramref name="problems"/> as <c>{full key}: {why}</c>; none stops the reading.
    /// </summary>
    internal static ProxyProtocolOptions Read(IConfigurationSection section, ICollection<string> problems)
    {
        if (!section.Exists())
        {
            return Off;
        }

        if (section.Value is { Length: > 0 } scalar)
        {
            // "ProxyProtocol": "V2" would otherwise be read as a section without a Mode: silently Off.
            problems.Add($"{section.Path}: '{scalar}' is a value, not a section (give Mode, TrustedProxies and HeaderTimeout under it)");
            return Off;
        }

        var mode = ConfigurationReading.ReadEnum(section.GetSection(nameof(Mode)), ProxyProtocolMode.Off, "a PROXY protocol mode", problems);

        var before = problems.Count;
        var trusted = NetworkList.Read(section, nameof(TrustedProxies), problems);
        if (mode != ProxyProtocolMode.Off && trusted.IsEmpty && problems.Count == before)
        {
            problems.Add($"{section.GetSection(nameof(TrustedProxies)).Path}: required when Mode is {mode} (the addresses or CIDR blocks of the proxies that may send a header)");
        }

        var timeout = ConfigurationReading.ReadTimeSpan(section, nameof(HeaderTimeout), Off.HeaderTimeout, problems);
        if (mode != ProxyProtocolMode.Off && timeout == TimeSpan.Zero)
        {
            var timeoutSection = section.GetSection(nameof(HeaderTimeout));
            problems.Add($"{timeoutSection.Path}: {timeoutSection.Value} is not more than zero, as it must be when Mode is {mode} (the time a trusted proxy has to send the whole header)");
        }

        return mode == ProxyProtocolMode.Off && trusted.IsEmpty && timeout == Off.HeaderTimeout
            ? Off
            : new ProxyProtocolOptions { Mode = mode, TrustedProxies = trusted, HeaderTimeout = timeout };
    }
}

using System.Globalization;
using KestrelTcp.Configuration;

namespace KestrelTcp.Faults;

/// <summary>
/// A listener's <c>Faults</c> section: the ways it misbehaves on purpose, whatever its handler, so that
/// clients and proxies can be tested against a bad server. The vocabulary is Toxiproxy's (latency,
/// bandwidth, slicer, limit_data, reset_peer, timeout, slow_close). Every default is "no fault": a key
/// that is not given changes nothing, and a listener without the section gets no fault machinery at all.
/// </summary>
public sealed record FaultOptions
{
    /// <summary>
    /// How much later each write of the handler reaches the client (<c>Latency</c>), order kept.
    /// Default zero: no added latency. Toxiproxy's <c>latency</c>.
    /// </summary>
    public TimeSpan Latency { get; init; }

    /// <summary>
    /// A random part added to or taken from <see cref="Latency"/> for each write, uniformly in ±Jitter
    /// (the total never below zero, and never reordering writes). Default zero: every write the same
    /// delay. Counted as <c>latency</c>.
    /// </summary>
    public TimeSpan Jitter { get; init; }

    /// <summary>
    /// The most bytes per second sent to the client, paced evenly at 50 ms granularity
    /// (<c>BandwidthBytesPerSecond</c>). Default 0: unpaced. Toxiproxy's <c>bandwidth</c> (which counts KB).
    /// </summary>
    public long BandwidthBytesPerSecond { get; init; }

    /// <summary>
    /// The largest piece the output is sent in (<c>SliceBytes</c>); each piece is its own send. Default
    /// 0: the handler's writes as they come. Toxiproxy's <c>slicer</c>, without its size variation.
    /// </summary>
    public int SliceBytes { get; init; }

    /// <summary>
    /// The pause between two pieces of output (<c>SliceDelay</c>): the pieces of <see cref="SliceBytes"/>,
    /// or without it the handler's writes. Default zero: no pause. Counted as <c>slice_bytes</c>.
    /// </summary>
    public TimeSpan SliceDelay { get; init; }

    /// <summary>
    /// How long after the connection opens the handler starts (<c>ConnectDelay</c>): a late banner.
    /// Default zero: at once.
    /// </summary>
    public TimeSpan ConnectDelay { get; init; }

    /// <summary>
    /// The connection is closed (FIN) once exactly this many bytes have been written to the client
    /// (<c>LimitBytes</c>). Default 0: no limit. Toxiproxy's <c>limit_data</c>.
    /// </summary>
    public long LimitBytes { get; init; }

    /// <summary>
    /// The connection is reset (RST) once the client has sent this many bytes (<c>ResetAfterBytes</c>);
    /// 1 resets on its first byte. Counted as the handler reads. Default 0: never.
    /// </summary>
    public long ResetAfterBytes { get; init; }

    /// <summary>
    /// The connection is reset (RST) this long after it opened (<c>ResetAfter</c>). Default zero: never.
    /// Toxiproxy's <c>reset_peer</c> with its timeout.
    /// </summary>
    public TimeSpan ResetAfter { get; init; }

    /// <summary>
    /// When set (<c>Timeout</c>), no data passes either way: the handler does not run, what the client
    /// sends stays unread, and after this long the connection is closed gracefully; <c>00:00:00</c>
    /// holds it open until the client leaves. Default unset: no such fault. Toxiproxy's <c>timeout</c>.
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// When the handler has finished and its output is delivered, the close waits this long
    /// (<c>CloseDelay</c>). Default zero: at once. Toxiproxy's <c>slow_close</c>.
    /// </summary>
    public TimeSpan CloseDelay { get; init; }

    /// <summary>
    /// The share of connections the faults apply to, 0 to 1 (<c>Probability</c>), rolled once per
    /// connection. Default 1.0: every connection, as Toxiproxy's <c>toxicity</c>.
    /// </summary>
    public double Probability { get; init; } = 1.0;

    /// <summary>The configured faults, each once (<see cref="Jitter"/> as latency, <see cref="SliceDelay"/> as slice_bytes).</summary>
    internal FaultKind[] ConfiguredKinds() => [.. FaultKinds.All.Where(IsConfigured)];

    /// <summary>True when the output goes through the fault pump (latency, bandwidth, slices, the byte limit).</summary>
    internal bool ShapesOutput => IsConfigured(FaultKind.Latency) || IsConfigured(FaultKind.BandwidthBytesPerSecond)
        || IsConfigured(FaultKind.SliceBytes) || IsConfigured(FaultKind.LimitBytes);

    internal bool IsConfigured(FaultKind kind) => kind switch
    {
        FaultKind.Latency => Latency > TimeSpan.Zero || Jitter > TimeSpan.Zero,
        FaultKind.BandwidthBytesPerSecond => BandwidthBytesPerSecond > 0,
        FaultKind.SliceBytes => SliceBytes > 0 || SliceDelay > TimeSpan.Zero,
        FaultKind.ConnectDelay => ConnectDelay > TimeSpan.Zero,
        FaultKind.LimitBytes => LimitBytes > 0,
        FaultKind.ResetAfterBytes => ResetAfterBytes > 0,
        FaultKind.ResetAfter => ResetAfter > TimeSpan.Zero,
        FaultKind.Timeout => Timeout is not null,
        FaultKind.CloseDelay => CloseDelay > TimeSpan.Zero,
        _ => false,
    };

    private static readonly string[] Keys =
    [
        nameof(Latency), nameof(Jitter), nameof(BandwidthBytesPerSecond), nameof(SliceBytes), nameof(SliceDelay), nameof(ConnectDelay),
        nameof(LimitBytes), nameof(ResetAfterBytes), nameof(ResetAfter), nameof(Timeout), nameof(CloseDelay), nameof(Probability),
    ];

    /// <summary>
    /// Reads a listener's <c>Faults</c> section; null when it is absent (the listener then gets no fault
    /// middleware at all). Every problem is added to <paramref name="problems"/> as <c>{full key}: {why}</c>;
    /// none stops the reading.
    /// </summary>
    internal static FaultOptions? Read(IConfigurationSection faultsSection, ICollection<string> problems)
    {
        if (!faultsSection.Exists())
        {
            return null;
        }

        if (faultsSection.Value is { Length: > 0 } scalar)
        {
            problems.Add($"{faultsSection.Path}: '{scalar}' is a value, not a section (give Latency, BandwidthBytesPerSecond, … under it)");
            return null;
        }

        foreach (var child in faultsSection.GetChildren())
        {
            // A misspelt key would otherwise leave the listener silently well-behaved.
            if (!Keys.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            {
                problems.Add($"{child.Path}: not a fault (known: {string.Join(", ", Keys)})");
            }
        }

        TimeSpan Duration(string key) => ConfigurationReading.ReadTimeSpan(faultsSection, key, TimeSpan.Zero, problems);

        return new FaultOptions
        {
            Latency = Duration(nameof(Latency)),
            Jitter = Duration(nameof(Jitter)),
            BandwidthBytesPerSecond = ConfigurationReading.ReadByteCount(faultsSection, nameof(BandwidthBytesPerSecond), long.MaxValue, "0 = unpaced", problems),
            SliceBytes = (int)ConfigurationReading.ReadByteCount(faultsSection, nameof(SliceBytes), int.MaxValue, "0 = not sliced", problems),
            SliceDelay = Duration(nameof(SliceDelay)),
            ConnectDelay = Duration(nameof(ConnectDelay)),
            LimitBytes = ConfigurationReading.ReadByteCount(faultsSection, nameof(LimitBytes), long.MaxValue, "0 = no limit", problems),
            ResetAfterBytes = ConfigurationReading.ReadByteCount(faultsSection, nameof(ResetAfterBytes), long.MaxValue, "0 = never", problems),
            ResetAfter = Duration(nameof(ResetAfter)),
            Timeout = faultsSection.GetSection(nameof(Timeout)).Value is { Length: > 0 } ? Duration(nameof(Timeout)) : null,
            CloseDelay = Duration(nameof(CloseDelay)),
            Probability = ReadProbability(faultsSection.GetSection(nameof(Probability)), problems),
        };
    }

    private static double ReadProbability(IConfigurationSection section, ICollection<string> problems)
    {
        if (section.Value is not { Length: > 0 } text)
        {
            return 1.0;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            problems.Add($"{section.Path}: '{text}' is not a number (a share from 0 to 1, e.g. 0.25)");
            return 1.0;
        }

        // Written so that NaN fails too.
        if (!(value >= 0 && value <= 1))
        {
            problems.Add($"{section.Path}: {text} is out of range (a share from 0 to 1, e.g. 0.25)");
            return 1.0;
        }

        return value;
    }
}

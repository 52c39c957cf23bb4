namespace KestrelTcp.Faults;

/// <summary>A kind of fault, as counted: the <c>fault</c> label of <c>kestreltcp_faults_total</c>.</summary>
internal enum FaultKind
{
    Latency,
    BandwidthBytesPerSecond,
    SliceBytes,
    ConnectDelay,
    LimitBytes,
    ResetAfterBytes,
    ResetAfter,
    Timeout,
    CloseDelay,
}

internal static class FaultKinds
{
    public static IReadOnlyList<FaultKind> All { get; } = Enum.GetValues<FaultKind>();

    /// <summary>The label value: the configuration key in snake case (Jitter and SliceDelay count with the key they modify).</summary>
    public static string Label(FaultKind kind) => kind switch
    {
        FaultKind.Latency => "latency",
        FaultKind.BandwidthBytesPerSecond => "bandwidth_bytes_per_second",
        FaultKind.SliceBytes => "slice_bytes",
        FaultKind.ConnectDelay => "connect_delay",
        FaultKind.LimitBytes => "limit_bytes",
        FaultKind.ResetAfterBytes => "reset_after_bytes",
        FaultKind.ResetAfter => "reset_after",
        FaultKind.Timeout => "timeout",
        FaultKind.CloseDelay => "close_delay",
        _ => "none",
    };
}

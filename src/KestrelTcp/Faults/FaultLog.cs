namespace KestrelTcp.Faults;

/// <summary>
/// The fault injection's log events (ids 130-139). Kestrel's scope carries the connection id. What a
/// fault does to a connection is what was asked for: Debug. That a listener misbehaves on purpose is
/// said once, at start-up, where an operator looks.
/// </summary>
internal static partial class FaultLog
{
    [LoggerMessage(EventId = 130, EventName = "FaultsConfigured", Level = LogLevel.Warning,
        Message = "Listener {Listener} injects faults on purpose: {Faults}, on {Probability:P0} of its connections")]
    public static partial void Configured(ILogger logger, string listener, string faults, double probability);

    [LoggerMessage(EventId = 131, EventName = "FaultsApplied", Level = LogLevel.Debug,
        Message = "Faults apply to this connection")]
    public static partial void Applied(ILogger logger);

    [LoggerMessage(EventId = 132, EventName = "FaultReset", Level = LogLevel.Debug,
        Message = "Reset the connection ({Fault})")]
    public static partial void Reset(ILogger logger, string fault);

    [LoggerMessage(EventId = 133, EventName = "FaultLimitReached", Level = LogLevel.Debug,
        Message = "Closed the connection after LimitBytes {LimitBytes} bytes sent")]
    public static partial void LimitReached(ILogger logger, long limitBytes);

    [LoggerMessage(EventId = 134, EventName = "FaultTimeoutEnded", Level = LogLevel.Debug,
        Message = "Timeout fault: held the connection {HeldMilliseconds} ms with {Unread} byte(s) unread; closing")]
    public static partial void TimeoutEnded(ILogger logger, double heldMilliseconds, long unread);

    [LoggerMessage(EventId = 135, EventName = "FaultPumpFailed", Level = LogLevel.Debug,
        Message = "The faulted output stopped: the handler or the transport failed")]
    public static partial void PumpFailed(ILogger logger, Exception exception);
}

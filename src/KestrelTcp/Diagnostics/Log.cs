using KestrelTcp.Connections;

namespace KestrelTcp.Diagnostics;

/// <summary>Every log event of KestrelTcp, source-generated: no formatting unless the level is on.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, EventName = "ListenerStarted", Level = LogLevel.Information,
        Message = "Listener {Listener} ({Handler}) listening on {Endpoint}")]
    public static partial void ListenerStarted(ILogger logger, string listener, string handler, string endpoint);

    [LoggerMessage(EventId = 2, EventName = "ManagementStarted", Level = LogLevel.Information,
        Message = "Health and metrics on {Endpoint} (/health, /health/live, /health/ready, /metrics, /connections)")]
    public static partial void ManagementStarted(ILogger logger, string endpoint);

    [LoggerMessage(EventId = 3, EventName = "ConnectionClosed",
        Message = "Connection {ConnectionId} on {Listener} from {Remote} closed ({Reason}) after {DurationMs:0.0} ms, {BytesReceived} bytes in, {BytesSent} bytes out")]
    public static partial void ConnectionClosed(ILogger logger, LogLevel level, string listener, string connectionId, string? remote,
        double durationMs, long bytesReceived, long bytesSent, CloseReason reason);

    [LoggerMessage(EventId = 4, EventName = "ConnectionsRejected", Level = LogLevel.Warning,
        Message = "Listener {Listener} refused {Count} connection(s) ({RejectReason}) in the last second or more")]
    public static partial void ConnectionsRejected(ILogger logger, string listener, long count, RejectReason rejectReason);

    [LoggerMessage(EventId = 5, EventName = "ShutdownStarted", Level = LogLevel.Information,
        Message = "Shutdown: readiness is now 503; draining {OpenConnections} open connection(s) after a delay of {Delay}, for at most {DrainTimeout}")]
    public static partial void ShutdownStarted(ILogger logger, long openConnections, TimeSpan delay, TimeSpan drainTimeout);

    [LoggerMessage(EventId = 6, EventName = "DrainCompleted", Level = LogLevel.Information,
        Message = "Shutdown: drain finished in {ElapsedMs:0} ms, {Aborted} connection(s) aborted at the drain timeout")]
    public static partial void DrainCompleted(ILogger logger, double elapsedMs, int aborted);

    [LoggerMessage(EventId = 7, EventName = "ConnectionFailed", Level = LogLevel.Error,
        Message = "Connection {ConnectionId} on {Listener} failed")]
    public static partial void ConnectionFailed(ILogger logger, Exception exception, string listener, string connectionId);

    [LoggerMessage(EventId = 8, EventName = "TransportStarted", Level = LogLevel.Information,
        Message = "Transport: {Transport} for {TcpEndpoints} TCP listener endpoint(s), inline scheduling {InlineScheduling}, {BlockSize}-byte buffers, {MaxReadBufferSize} bytes read ahead per connection at most")]
    public static partial void TransportStarted(ILogger logger, string transport, int tcpEndpoints, bool inlineScheduling, int blockSize, long maxReadBufferSize);

    [LoggerMessage(EventId = 10, EventName = "AcceptFailed", Level = LogLevel.Warning,
        Message = "Accepting on {Endpoint} failed ({Error}); retrying in 50 ms")]
    public static partial void AcceptFailed(ILogger logger, string endpoint, System.Net.Sockets.SocketError error);

    [LoggerMessage(EventId = 9, EventName = "LogEventsDropped", Level = LogLevel.Warning,
        Message = "Logging: {Dropped} log event(s) were dropped because the console could not keep up ({Total} since start)")]
    public static partial void LogEventsDropped(ILogger logger, long dropped, long total);
}

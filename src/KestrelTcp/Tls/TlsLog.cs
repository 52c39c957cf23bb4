namespace KestrelTcp.Tls;

/// <summary>The log events of TLS listeners (event ids 110-119).</summary>
internal static partial class TlsLog
{
    [LoggerMessage(EventId = 110, EventName = "TlsCertificateReloaded", Level = LogLevel.Information,
        Message = "Listener {Listener}: TLS certificate reloaded from {File} ({Subject}, thumbprint {Thumbprint}, valid until {NotAfter:u}); new handshakes use it")]
    public static partial void CertificateReloaded(ILogger logger, string listener, string file, string subject, string thumbprint, DateTime notAfter);

    [LoggerMessage(EventId = 111, EventName = "TlsCertificateReloadFailed", Level = LogLevel.Error,
        Message = "Listener {Listener}: the changed TLS certificate file {File} does not load: {Reason}; new handshakes keep the previous certificate")]
    public static partial void CertificateReloadFailed(ILogger logger, string listener, string file, string reason);

    [LoggerMessage(EventId = 112, EventName = "TlsClientAuthorityReloaded", Level = LogLevel.Information,
        Message = "Listener {Listener}: client certificate authority reloaded from {File} ({Count} certificate(s)); new handshakes use it")]
    public static partial void ClientAuthorityReloaded(ILogger logger, string listener, string file, int count);

    [LoggerMessage(EventId = 113, EventName = "TlsClientAuthorityReloadFailed", Level = LogLevel.Error,
        Message = "Listener {Listener}: the changed client certificate authority file {File} does not load: {Reason}; new handshakes keep the previous one")]
    public static partial void ClientAuthorityReloadFailed(ILogger logger, string listener, string file, string reason);

    [LoggerMessage(EventId = 114, EventName = "TlsFileCheckFailed", Level = LogLevel.Error,
        Message = "Listener {Listener}: checking the TLS files for changes failed")]
    public static partial void FileCheckFailed(ILogger logger, Exception exception, string listener);
}

namespace KestrelTcp.Configuration;

/// <summary>The HTTP management port (<c>KestrelTcp:Http</c>): health checks and metrics.</summary>
internal sealed record HttpEndpointOptions
{
    /// <summary>Default 8080, the port the ASP.NET Core container images expose.</summary>
    public int Port { get; init; } = 8080;

    /// <summary>Default <c>*</c>: every interface, IPv4 and IPv6, so probes from outside a container reach it.</summary>
    public string Address { get; init; } = "*";

    /// <summary>HTTPS for the management port (<c>KestrelTcp:Http:Tls</c>, the listeners' <c>Tls</c> section); null (the default) serves plain HTTP.</summary>
    public Tls.TlsOptions? Tls { get; init; }
}

using System.Diagnostics.CodeAnalysis;
using KestrelTcp.Faults;
using KestrelTcp.ProxyProtocol;
using KestrelTcp.Tls;

namespace KestrelTcp.Configuration;

/// <summary>
/// One entry of <c>KestrelTcp:Listeners</c>: a name, the handler that serves it, where it listens
/// and its effective limits. Handlers receive it in their constructor.
/// </summary>
public sealed class ListenerDefinition
{
    /// <summary>The listener's name: its key under <c>KestrelTcp:Listeners</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The registered name of the handler that serves the listener.</summary>
    public required string HandlerName { get; init; }

    /// <summary>The address to bind; null or <c>*</c> binds every interface (IPv4 and IPv6).</summary>
    public string? Address { get; init; }

    /// <summary>The TCP port; 0 asks for any free port. Null when <see cref="UnixSocketPath"/> is set.</summary>
    public int? Port { get; init; }

    /// <summary>A Unix domain socket path to listen on instead of a TCP port.</summary>
    public string? UnixSocketPath { get; init; }

    /// <summary>The global limits with this listener's overrides applied.</summary>
    public ConnectionLimits Limits { get; init; } = ConnectionLimits.Default;

    /// <summary>The PROXY protocol header the listener requires (<c>ProxyProtocol</c>); <see cref="ProxyProtocolOptions.Off"/> by default.</summary>
    public ProxyProtocolOptions ProxyProtocol { get; init; } = ProxyProtocolOptions.Off;

    /// <summary>Which clients the listener serves (<c>Access</c>); <see cref="AccessRules.None"/> serves every client.</summary>
    public AccessRules Access { get; init; } = AccessRules.None;

    /// <summary>TLS in front of the handler (<c>Tls</c>), or null for a plain listener.</summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>The faults the listener injects on purpose (<c>Faults</c>), or null for a well-behaved listener.</summary>
    public FaultOptions? Faults { get; init; }

    /// <summary>The handler's options as parsed and validated at start-up (null for handlers without options).</summary>
    public object? HandlerOptions { get; init; }

    /// <summary>The handler type registered under <see cref="HandlerName"/>, resolved at start-up.</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)]
    internal Type? HandlerType { get; init; }

    /// <summary>The configuration key of the listener, e.g. <c>KestrelTcp:Listeners:echo</c>.</summary>
    public string ConfigurationKey => $"{KestrelTcpOptions.SectionName}:Listeners:{Name}";

    /// <summary>The handler's options, typed.</summary>
    public TOptions GetHandlerOptions<TOptions>() where TOptions : class =>
        HandlerOptions as TOptions
        ?? throw new InvalidOperationException($"Listener '{Name}' has no handler options of type {typeof(TOptions).Name}.");

    /// <summary>True when the listener binds every interface.</summary>
    internal bool IsWildcard => string.IsNullOrEmpty(Address) || Address == "*";
}

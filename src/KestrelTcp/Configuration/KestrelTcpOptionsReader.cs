using System.Globalization;
using System.Net;
using KestrelTcp.Faults;
using KestrelTcp.ProxyProtocol;
using KestrelTcp.Tls;
using Microsoft.Extensions.Options;
using static KestrelTcp.Configuration.ConfigurationReading;

namespace KestrelTcp.Configuration;

/// <summary>
/// Reads <see cref="KestrelTcpOptions"/> from configuration by hand rather than through the binder,
/// so that each malformed value becomes a message naming its exact key instead of one exception,
/// then applies the rules that span listeners (<see cref="KestrelTcpOptionsValidator"/>): every
/// problem is reported at once, and only valid configuration becomes a snapshot.
/// </summary>
internal static class KestrelTcpOptionsReader
{
    private const string PortRange = "1-65535, or 0 for any free port";

    /// <summary>The validated snapshot.</summary>
    /// <exception cref="KestrelTcpConfigurationException">The configuration has problems; every one is listed.</exception>
    /// <param name="configuration">The host's configuration.</param>
    /// <param name="handlers">The registered handlers.</param>
    /// <param name="contentRoot">The folder relative paths (certificates) are read from: the content root, where <c>appsettings.json</c> is.</param>
    public static KestrelTcpOptions Read(IConfiguration configuration, IEnumerable<HandlerRegistration> handlers, string contentRoot)
    {
        var problems = new List<string>();
        var options = Read(configuration, handlers, contentRoot, problems);
        problems.AddRange(KestrelTcpOptionsValidator.Validate(options));
        return problems.Count == 0 ? options : throw new KestrelTcpConfigurationException(problems);
    }

    private static KestrelTcpOptions Read(IConfiguration configuration, IEnumerable<HandlerRegistration> handlers, string contentRoot, List<string> problems)
    {
        // Read in the order of the keys in appsettings.json, so the problems are listed in that order.
        var root = configuration.GetSection(KestrelTcpOptions.SectionName);
        var http = root.GetSection("Http");
        var httpOptions = new HttpEndpointOptions
        {
            Port = ReadPort(http, "Port", 8080, problems),
            Address = ReadAddress(http, "Address", problems) ?? "*",
            Tls = TlsOptions.Read(http.GetSection("Tls"), contentRoot, problems),
        };
        int? backlog = root.GetSection("Backlog").Value is { Length: > 0 } ? ReadInt(root, "Backlog", 512, 1, 65535, problems) : null;
        var transport = root.GetSection("Transport");
        var transportOptions = new TransportOptions
        {
            InlineScheduling = ReadBool(transport, "InlineScheduling", true, problems),
            Kind = ReadTransportKind(transport, problems),
        };
        var logging = new LoggingOptions
        {
            ConsoleFormat = ReadEnum(root.GetSection("Logging:ConsoleFormat"), ConsoleFormat.Text, "a console format", problems),
            Serilog = Diagnostics.SerilogSettings.Read(configuration.GetSection("Serilog"), problems),
        };
        var limits = ReadLimits(root.GetSection("Limits"), ConnectionLimits.Default, problems);
        var shutdown = root.GetSection("Shutdown");
        var shutdownOptions = new ShutdownOptions
        {
            Delay = ReadTimeSpan(shutdown, "Delay", TimeSpan.Zero, problems),
            DrainTimeout = ReadTimeSpan(shutdown, "DrainTimeout", TimeSpan.FromSeconds(10), problems),
        };

        var registrations = handlers
            .GroupBy(h => h.Name, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Last(), StringComparer.OrdinalIgnoreCase);
        var listeners = new List<ListenerDefinition>();
        foreach (var section in root.GetSection("Listeners").GetChildren())
        {
            if (ReadListener(section, limits, registrations, contentRoot, problems) is { } listener)
            {
                listeners.Add(listener);
            }
        }

        return new KestrelTcpOptions
        {
            Http = httpOptions,
            Backlog = backlog,
            Transport = transportOptions,
            Logging = logging,
            Limits = limits,
            Shutdown = shutdownOptions,
            Listeners = listeners,
        };
    }

    private static ListenerDefinition? ReadListener(
        IConfigurationSection section,
        ConnectionLimits defaults,
        Dictionary<string, HandlerRegistration> registrations,
        string contentRoot,
        List<string> problems)
    {
        if (!ReadBool(section, "Enabled", true, problems))
        {
            return null;
        }

        var handlerName = ReadString(section, "Handler");
        HandlerRegistration? registration = null;
        if (handlerName is null)
        {
            problems.Add($"{section.Path}:Handler: missing (known handlers: {Known(registrations)})");
        }
        else if (!registrations.TryGetValue(handlerName, out registration))
        {
            problems.Add($"{section.Path}:Handler: '{handlerName}' is not a registered handler (known handlers: {Known(registrations)})");
        }

        var unixSocketPath = ReadString(section, "UnixSocketPath");
        int? port = null;
        if (section.GetSection("Port").Value is { Length: > 0 })
        {
            port = ReadPort(section, "Port", 0, problems);
        }

        if (port is null && unixSocketPath is null)
        {
            problems.Add($"{section.Path}:Port: missing (give a Port, or a UnixSocketPath)");
        }
        else if (port is not null && unixSocketPath is not null)
        {
            problems.Add($"{section.Path}:UnixSocketPath: a listener has either a Port or a UnixSocketPath, not both");
        }

        var address = ReadAddress(section, "Address", problems);
        if (address == "localhost" && port == 0)
        {
            problems.Add($"{section.Path}:Address: 'localhost' cannot be bound with port 0; use 127.0.0.1 or ::1");
        }

        // Per-listener limits use the same keys as KestrelTcp:Limits, inside the listener itself or
        // inside a Limits subsection of it; the subsection wins where both are given.
        var limits = ReadLimits(section, defaults, problems);
        limits = ReadLimits(section.GetSection("Limits"), limits, problems);

        var proxyProtocol = ProxyProtocolOptions.Read(section.GetSection("ProxyProtocol"), problems);
        var access = AccessRules.Read(section.GetSection("Access"), problems);
        var tls = TlsOptions.Read(section.GetSection("Tls"), contentRoot, problems);
        var faults = FaultOptions.Read(section.GetSection("Faults"), problems);
        var handlerOptions = registration?.ParseOptions(section.GetSection("Options"), problems);

        return new ListenerDefinition
        {
            Name = section.Key,
            HandlerName = registration?.Name ?? handlerName ?? "",
            HandlerType = registration?.HandlerType,
            Address = address,
            Port = port,
            UnixSocketPath = unixSocketPath,
            Limits = limits,
            ProxyProtocol = proxyProtocol,
            Access = access,
            Tls = tls,
            Faults = faults,
            HandlerOptions = handlerOptions,
        };
    }

    private static ConnectionLimits ReadLimits(IConfigurationSection section, ConnectionLimits defaults, List<string> problems)
    {
        var limits = new ConnectionLimits
        {
            MaxConnections = ReadInt(section, "MaxConnections", defaults.MaxConnections, 0, int.MaxValue, problems, "0 for unlimited, or a positive count"),
            MaxConnectionsPerClient = ReadInt(section, "MaxConnectionsPerClient", defaults.MaxConnectionsPerClient, 0, int.MaxValue, problems, "0 for unlimited, or a positive count"),
            IdleTimeout = ReadTimeSpan(section, "IdleTimeout", defaults.IdleTimeout, problems),
            MaxLineLength = ReadInt(section, "MaxLineLength", defaults.MaxLineLength, 1, 1024 * 1024, problems, "1-1048576 bytes"),
            MaxConnectionRate = ReadInt(section, "MaxConnectionRate", defaults.MaxConnectionRate, 0, int.MaxValue, problems, "0 for unlimited, or connections per second"),
            MaxConnectionRatePerClient = ReadInt(section, "MaxConnectionRatePerClient", defaults.MaxConnectionRatePerClient, 0, int.MaxValue, problems, "0 for unlimited, or connections per second"),
            QueueWhenFull = ReadBool(section, "QueueWhenFull", defaults.QueueWhenFull, problems),
        };
        return limits == defaults ? defaults : limits;
    }

    private static TransportKind ReadTransportKind(IConfigurationSection transport, List<string> problems) =>
        ReadEnum(transport.GetSection("Kind"), TransportKind.KestrelTcp, "a transport", problems);

    private static int ReadPort(IConfigurationSection parent, string key, int fallback, List<string> problems)
    {
        var section = parent.GetSection(key);
        if (section.Value is { Length: > 0 } text
            && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            && (value < 0 || value > 65535))
        {
            problems.Add($"{section.Path}: {value} is not a port ({PortRange})");
            return fallback;
        }

        return ReadInt(parent, key, fallback, 0, 65535, problems, PortRange);
    }

    private static string? ReadAddress(IConfigurationSection parent, string key, List<string> problems)
    {
        var text = ReadString(parent, key);
        if (text is null || text == "*")
        {
            return text;
        }

        if (string.Equals(text, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return "localhost";
        }

        var trimmed = text.StartsWith('[') && text.EndsWith(']') ? text[1..^1] : text;
        if (!IPAddress.TryParse(trimmed, out var ip))
        {
            problems.Add($"{parent.GetSection(key).Path}: '{text}' is not an IP address (use *, localhost, or an IPv4/IPv6 address)");
            return null;
        }

        return ip.ToString();
    }

    private static string Known(Dictionary<string, HandlerRegistration> registrations) =>
        string.Join(", ", registrations.Values.Select(r => r.Name).Order(StringComparer.Ordinal));
}

using System.Net;

namespace KestrelTcp.Configuration;

/// <summary>The rules that span listeners (overlapping endpoints, a TCP port equal to the HTTP port), each broken one reported.</summary>
internal static class KestrelTcpOptionsValidator
{
    public static List<string> Validate(KestrelTcpOptions options)
    {
        var problems = new List<string>();
        var listenersKey = $"{KestrelTcpOptions.SectionName}:Listeners";
        var httpPort = options.Http.Port;

        for (var i = 0; i < options.Listeners.Count; i++)
        {
            var listener = options.Listeners[i];
            if (listener.Port is not { } port || port == 0)
            {
                if (listener.UnixSocketPath is { } path)
                {
                    foreach (var earlier in options.Listeners.Take(i).Where(l => l.UnixSocketPath == path))
                    {
                        problems.Add($"{listenersKey}:{listener.Name}:UnixSocketPath: '{path}' is already used by listener '{earlier.Name}'");
                    }
                }

                continue;
            }

            if (port == httpPort)
            {
                problems.Add($"{listenersKey}:{listener.Name}:Port: {port} is the HTTP management port ({KestrelTcpOptions.SectionName}:Http:Port)");
            }

            foreach (var earlier in options.Listeners.Take(i))
            {
                if (earlier.Port == port && Overlaps(listener, earlier))
                {
                    problems.Add($"{listenersKey}:{listener.Name}:Port: {port} on {Describe(listener)} overlaps listener '{earlier.Name}' ({port} on {Describe(earlier)})");
                }
            }
        }

        return problems;
    }

    // The same port conflicts on the same address, or when either side binds every interface;
    // "localhost" means both loopback addresses.
    private static bool Overlaps(ListenerDefinition a, ListenerDefinition b)
    {
        if (a.IsWildcard || b.IsWildcard || a.Address == b.Address)
        {
            return true;
        }

        return (a.Address == "localhost" && IsLoopback(b.Address)) || (b.Address == "localhost" && IsLoopback(a.Address));
    }

    private static bool IsLoopback(string? address) => address is not null && IPAddress.TryParse(address, out var ip) && IPAddress.IsLoopback(ip);

    private static string Describe(ListenerDefinition listener) => listener.IsWildcard ? "*" : listener.Address!;
}

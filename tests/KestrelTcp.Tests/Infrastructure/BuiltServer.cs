using System.Reflection;
using KestrelTcp.Tests.Deployment;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>Runs the server as built (src/KestrelTcp/bin/&lt;Configuration&gt;/net10.0) as a child process.</summary>
public static class BuiltServer
{
    public static string Directory { get; } = Path.Combine(DeploymentFiles.Root, "src", "KestrelTcp", "bin",
        typeof(BuiltServer).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug", "net10.0");

    /// <summary>Starts <c>dotnet KestrelTcp.dll</c> with <paramref name="arguments"/>, in the binary's folder, with the test's environment plus <paramref name="environment"/>.</summary>
    public static ServerProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        // The test runner's own ASP.NET Core and KestrelTcp settings must not leak into the server,
        // nor the inline socket completions tests/test.runsettings gives the test host: the server
        // turns those on itself, as it must for a user.
        var env = System.Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Where(e => !((string)e.Key).StartsWith("KestrelTcp", StringComparison.OrdinalIgnoreCase)
                && !((string)e.Key).StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase)
                && (string)e.Key != KestrelTcp.Hosting.InlineScheduling.SocketsVariable)
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        env["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        var dll = Path.Combine(Directory, "KestrelTcp.dll");
        Assert.True(File.Exists(dll), $"{dll} is not built");
        return ServerProcess.Start(["dotnet", dll, .. arguments], Directory, env);
    }

    /// <summary>Command-line overrides moving every default port (and the HTTP port) to free loopback ports.</summary>
    public static (List<string> Arguments, int HttpPort, Dictionary<string, int> Ports) FreePortArguments(params string[] listeners)
    {
        var names = listeners.Length > 0 ? listeners : ["echo", "time", "greeting"];
        var ports = PublishedImage.FreePorts(names.Length + 1);
        var arguments = new List<string> { $"--KestrelTcp:Http:Port={ports[0]}", "--KestrelTcp:Http:Address=127.0.0.1" };
        var map = new Dictionary<string, int>();
        for (var i = 0; i < names.Length; i++)
        {
            arguments.Add($"--KestrelTcp:Listeners:{names[i]}:Port={ports[i + 1]}");
            arguments.Add($"--KestrelTcp:Listeners:{names[i]}:Address=127.0.0.1");
            map[names[i]] = ports[i + 1];
        }

        return (arguments, ports[0], map);
    }
}

using KestrelTcp.Configuration;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Hosting;

/// <summary>Process exit codes of the server.</summary>
public static class ExitCodes
{
    /// <summary>Ran and stopped cleanly.</summary>
    public const int Success = 0;

    /// <summary>The health-check mode found the server not ready.</summary>
    public const int Unhealthy = 1;

    /// <summary>Invalid configuration; one line per problem on stderr.</summary>
    public const int InvalidConfiguration = 2;

    /// <summary>A port was already in use.</summary>
    public const int AddressInUse = 3;
}

/// <summary>Runs the application and turns start-up failures into the documented exit codes.</summary>
public static class KestrelTcpApplication
{
    /// <summary>
    /// Builds the application (reading and validating the <c>KestrelTcp</c> configuration once), lets
    /// <paramref name="configure"/> map its endpoints, and runs it until SIGTERM or Ctrl+C; returns 0,
    /// 2 for invalid configuration (every problem on stderr, nothing bound), or 3 for a port in use.
    /// </summary>
    public static async Task<int> RunKestrelTcpAsync(this WebApplicationBuilder builder, Action<WebApplication>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        WebApplication app;
        KestrelTcpRuntime runtime;
        try
        {
            app = builder.Build();
            // Resolved before running: RunAsync disposes the services when it ends, failed or not.
            runtime = app.Services.GetRequiredService<KestrelTcpRuntime>();
        }
        catch (KestrelTcpConfigurationException ex)
        {
            return InvalidConfiguration(ex);
        }

        configure?.Invoke(app);
        try
        {
            await app.RunAsync();
            return ExitCodes.Success;
        }
        catch (IOException ex) when (ex.InnerException is AddressInUseException)
        {
            Serilog.Log.Error("{Failure}", DescribeBindFailure(runtime, ex.Message));
            return ExitCodes.AddressInUse;
        }
        catch (Exception ex) when (ex is not HostAbortedException)
        {
            Serilog.Log.Fatal(ex, "KestrelTcp: stopped by an unexpected error");
            throw;
        }
    }

    /// <summary>One line per problem, through the bootstrap logger (plain lines on stderr).</summary>
    private static int InvalidConfiguration(KestrelTcpConfigurationException ex)
    {
        foreach (var problem in ex.Problems)
        {
            Serilog.Log.Error("{Problem}", problem);
        }

        Serilog.Log.Error("KestrelTcp: invalid configuration ({Count} problem(s)); not started.", ex.Problems.Count);
        return ExitCodes.InvalidConfiguration;
    }

    /// <summary>Names the listener behind Kestrel's "Failed to bind to address http://…" message.</summary>
    internal static string DescribeBindFailure(KestrelTcpRuntime runtime, string kestrelMessage)
    {
        const string Prefix = "Failed to bind to address ";
        var start = kestrelMessage.IndexOf(Prefix, StringComparison.Ordinal);
        var address = start < 0 ? "" : kestrelMessage[(start + Prefix.Length)..].Split(": address already in use", 2)[0].TrimEnd('.', ':');
        var port = Uri.TryCreate(address, UriKind.Absolute, out var uri) ? uri.Port : -1;

        var listener = runtime.Listeners.FirstOrDefault(l =>
            (l.Definition.UnixSocketPath is { } path && address.Contains(path, StringComparison.Ordinal)) || l.Definition.Port == port);
        if (listener is not null)
        {
            var endpoint = listener.Definition.UnixSocketPath is { } socket
                ? $"unix:{socket}"
                : $"tcp://{FormatHost(uri)}:{port}";
            return $"KestrelTcp:Listeners:{listener.Name}: cannot listen on {endpoint}: address already in use (listener '{listener.Name}', handler {listener.HandlerName}); not started.";
        }

        if (runtime.Options.Http.Port == port)
        {
            return $"KestrelTcp:Http:Port: cannot listen on http://{FormatHost(uri)}:{port}: address already in use (HTTP management port); not started.";
        }

        return $"KestrelTcp: {kestrelMessage}; not started.";
    }

    private static string FormatHost(Uri? uri) => uri?.Host ?? "?";
}

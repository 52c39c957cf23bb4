using System.Globalization;
using KestrelTcp.Configuration;

namespace KestrelTcp.Hosting;

/// <summary>
/// <c>KestrelTcp --health-check [url]</c>: asks a running server's <c>/health/ready</c> and exits 0 when
/// it answers 200, 1 otherwise. A container's HEALTHCHECK runs the server binary itself, so the
/// image needs no curl or shell. Without a url the port comes from the same configuration the
/// server reads (appsettings.json and appsettings.{Environment}.json next to the binary, <c>KestrelTcp__Http__Port</c>, arguments).
/// </summary>
internal static class HealthCheckCommand
{
    /// <summary>The argument that selects this mode.</summary>
    public const string Argument = "--health-check";

    /// <summary>True when <paramref name="args"/> ask for the health check.</summary>
    public static bool IsRequested(string[] args) => args is [Argument, ..];

    /// <summary>Runs the check; returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var url = args.Length > 1 && Uri.TryCreate(args[1], UriKind.Absolute, out var given) ? given : DefaultUrl(args[1..]);
        // With Http:Tls the port speaks HTTPS. This asks its own server, on this machine, whether it is
        // ready: the certificate (issued for the service's public name, not 127.0.0.1) is not the question.
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await client.GetAsync(url);
            await Console.Out.WriteLineAsync($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            return response.IsSuccessStatusCode ? ExitCodes.Success : ExitCodes.Unhealthy;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"{url}: {ex.Message}");
            return ExitCodes.Unhealthy;
        }
    }

    private static Uri DefaultUrl(string[] args)
    {
        var environment = Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT")
            ?? Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT")
            ?? "Production";
        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddJsonFile($"appsettings.{environment}.json", optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine(args)
            .Build();
        var http = configuration.GetSection($"{KestrelTcpOptions.SectionName}:Http");
        var port = int.TryParse(http["Port"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) ? p : new HttpEndpointOptions().Port;
        var address = http["Address"] is { Length: > 0 } a && a != "*" && a != "localhost" ? a : "127.0.0.1";
        var host = address.Contains(':', StringComparison.Ordinal) ? $"[{address.Trim('[', ']')}]" : address;
        var scheme = http.GetSection("Tls").Exists() ? "https" : "http";
        return new Uri($"{scheme}://{host}:{port}/health/ready");
    }
}

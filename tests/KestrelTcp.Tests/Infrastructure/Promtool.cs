using System.Diagnostics;

namespace KestrelTcp.Tests.Infrastructure;

/// <summary>
/// Prometheus's own linter, <c>promtool check metrics</c> (Debian's <c>prometheus</c> package;
/// the test script installs it). Exit 0: clean; 3: parsed, with lint problems listed on stdout
/// or stderr; 1: the exposition did not parse.
/// </summary>
public static class Promtool
{
    public static async Task<(int ExitCode, IReadOnlyList<string> Problems)> CheckMetricsAsync(string exposition)
    {
        var start = new ProcessStartInfo("promtool", "check metrics")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("promtool did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        var lines = ((await output) + (await error)).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return (process.ExitCode, lines);
    }
}

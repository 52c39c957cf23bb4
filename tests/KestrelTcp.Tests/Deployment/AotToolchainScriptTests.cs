using System.Diagnostics;

namespace KestrelTcp.Tests.Deployment;

/// <summary>
/// <c>deploy/aot-toolchain.sh</c>, which the Dockerfile's build stage and test.sh run: a no-op where the toolchain
/// is present, a clear refusal for an architecture the server is not published for.
/// </summary>
public class AotToolchainScriptTests
{
    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(DeploymentFiles.PathOf("deploy/aot-toolchain.sh"));
        arguments.ToList().ForEach(start.ArgumentList.Add);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }

    private static string BuildArchitecture => PublishedImage.DockerArchitecture(System.Runtime.InteropServices.RuntimeInformation.OSArchitecture);

    [Fact]
    public async Task BothArchitectures_ToolchainPresent_NothingToDo()
    {
        var other = BuildArchitecture == "arm64" ? "amd64" : "arm64";
        foreach (var target in new[] { BuildArchitecture, other })
        {
            var (exitCode, output, error) = await RunAsync(target, BuildArchitecture);
            Assert.True(exitCode == 0, $"{target}: exit {exitCode}\n{error}");
            Assert.Equal("", output + error);
        }
    }

    [Fact]
    public async Task UnknownArchitecture_Exit2NamingIt()
    {
        var (exitCode, _, error) = await RunAsync("riscv64", BuildArchitecture);
        Assert.Equal(2, exitCode);
        Assert.Equal("aot-toolchain.sh: riscv64 is not an architecture this server is published for (amd64, arm64)", error.Trim());
    }
}

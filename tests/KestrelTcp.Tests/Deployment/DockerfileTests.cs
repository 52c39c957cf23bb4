using System.Text.RegularExpressions;
using KestrelTcp.Hosting;

namespace KestrelTcp.Tests.Deployment;

/// <summary>The Dockerfile read as text: its shape, and its agreement with appsettings.json. No engine needed.</summary>
public class DockerfileTests
{
    private static readonly TimeSpan DockerStopTimeout = TimeSpan.FromSeconds(10);

    private readonly DockerfileModel dockerfile = DeploymentFiles.Dockerfile();
    private readonly AppSettings settings = AppSettings.Load();

    [Fact]
    public void Stages_BuildAndRuntime_AotSdkOnBuildPlatformThenRuntimeDepsOfTheTargetFramework()
    {
        var framework = Regex.Match(DeploymentFiles.Read("Directory.Build.props"), @"<TargetFramework>net(\d+\.\d+)</TargetFramework>").Groups[1].Value;
        Assert.Equal(2, dockerfile.Stages.Count);

        // The -aot SDK images carry clang and llvm, which a Native AOT publish links with; the server is then
        // self-contained, so the runtime stage needs the native libraries only, not the .NET runtime.
        var build = dockerfile.Stages[0];
        Assert.Equal($"mcr.microsoft.com/dotnet/sdk:{framework}-noble-aot", build.Image);
        Assert.Equal("$BUILDPLATFORM", build.Platform);
        Assert.NotNull(build.Name);

        Assert.Equal($"mcr.microsoft.com/dotnet/runtime-deps:{framework}", dockerfile.Final.Image);
        Assert.Null(dockerfile.Final.Platform);
        var copy = Assert.Single(dockerfile.Final.All("COPY"));
        Assert.Equal(build.Name, copy.Flags["from"]);
    }

    [Fact]
    public void BuildStage_Toolchain_FirstStepForTheTargetFromTheBuildArchitecture()
    {
        var build = dockerfile.Stages[0];
        Assert.Contains(build.All("ARG"), a => a.Arguments == "BUILDARCH");
        var runs = build.All("RUN").ToList();
        Assert.Equal(["deploy/aot-toolchain.sh", "$TARGETARCH", "$BUILDARCH"], runs[0].Words);
        // Only the script is copied for it, so its layer (apt-get) is reused until the script itself changes.
        var copiedBefore = build.Instructions.TakeWhile(i => i != runs[0]).Where(i => i.Keyword == "COPY").SelectMany(i => i.Operands.SkipLast(1));
        Assert.Equal(["deploy/aot-toolchain.sh"], copiedBefore);
    }

    [Fact]
    public void BuildStage_Restore_OwnLayerFromProjectFilesAndDirectoryProps()
    {
        var build = dockerfile.Stages[0];
        var restoreAt = build.Instructions.FindIndex(i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet restore"));
        Assert.True(restoreAt > 0, "the build stage restores in its own RUN");

        var copiedBeforeRestore = build.Instructions.Take(restoreAt).Where(i => i.Keyword == "COPY")
            .SelectMany(i => i.Operands.SkipLast(1)).Where(source => source != "deploy/aot-toolchain.sh").ToList();
        Assert.All(copiedBeforeRestore, source => Assert.Matches(@"(\.csproj|Directory\.[A-Za-z]+\.props)$", source));
        foreach (var props in Directory.GetFiles(DeploymentFiles.Root, "Directory.*.props").Select(Path.GetFileName))
        {
            Assert.Contains(props, copiedBeforeRestore);
        }

        Assert.Contains("src/KestrelTcp/KestrelTcp.csproj", copiedBeforeRestore);
    }

    [Fact]
    public void BuildStage_Publish_ReleaseWithoutRestoreForTheTargetArchitecture()
    {
        var build = dockerfile.Stages[0];
        Assert.Contains(build.All("ARG"), a => a.Arguments == "TARGETARCH");
        var restore = Assert.Single(build.All("RUN"), r => r.Arguments.Contains("dotnet restore")).Words;
        var publish = Assert.Single(build.All("RUN"), r => r.Arguments.Contains("dotnet publish")).Words;

        Assert.Equal("$TARGETARCH", restore[restore.ToList().IndexOf("-a") + 1]);
        Assert.Equal("$TARGETARCH", publish[publish.ToList().IndexOf("-a") + 1]);
        Assert.Contains("--no-restore", publish);
        Assert.Equal("Release", publish[publish.ToList().IndexOf("-c") + 1]);
        var output = publish[publish.ToList().IndexOf("-o") + 1];
        Assert.Equal(output, Assert.Single(dockerfile.Final.All("COPY")).Operands[0]);
    }

    [Fact]
    public void Expose_Ports_EveryPortOfAppSettings()
    {
        var exposed = dockerfile.Final.All("EXPOSE").SelectMany(e => e.Words).Select(p => int.Parse(p.Split('/')[0])).Order();

        Assert.Equal(settings.PortSections.Keys.Order(), exposed);
    }

    [Fact]
    public void User_FinalStage_TheImagesNonRootAppUser()
    {
        var user = dockerfile.Final.Last("USER");

        Assert.NotNull(user);
        Assert.Equal("$APP_UID", user.Arguments);
        // USER must come after the last COPY/RUN that needs root, and nothing may switch back.
        Assert.Equal(dockerfile.Final.Instructions.FindLastIndex(i => i.Keyword == "USER"),
            dockerfile.Final.Instructions.FindIndex(i => i.Keyword == "USER"));
    }

    [Fact]
    public void Entrypoint_ExecForm_ServerIsPid1AndReceivesSigterm()
    {
        var entrypoint = dockerfile.Final.Last("ENTRYPOINT");

        Assert.NotNull(entrypoint);
        var exec = DockerfileModel.ExecForm(entrypoint.Arguments);
        Assert.NotNull(exec);
        Assert.Contains(exec[0], new[] { "./KestrelTcp", "/app/KestrelTcp", "dotnet" });
        Assert.Null(dockerfile.Final.Last("CMD"));
    }

    [Fact]
    public void Healthcheck_ExecForm_RunsTheServersHealthCheckMode()
    {
        var instruction = dockerfile.Final.Last("HEALTHCHECK");
        Assert.NotNull(instruction);

        var (options, command) = DockerfileModel.HealthCheck(instruction);

        Assert.NotNull(command);
        Assert.Contains(HealthCheckCommand.Argument, command);
        Assert.DoesNotContain(command, c => c.Contains("curl") || c.Contains("wget") || c.EndsWith("sh"));
        // The check's own HTTP timeout is 3 s; Docker must not cut it short.
        Assert.True(DockerfileModel.Duration(options["timeout"]) > TimeSpan.FromSeconds(3));
        Assert.True(DockerfileModel.Duration(options["interval"]) >= DockerfileModel.Duration(options["timeout"]));
    }

    [Fact]
    public void Env_ShutdownDelayPlusDrain_FinishesInsideDockerStopTimeout()
    {
        var env = dockerfile.Final.Environment.ToDictionary(e => e.Key, e => (string?)e.Value);

        var drain = settings.Shutdown("Delay", env) + settings.Shutdown("DrainTimeout", env);

        // After the drain timeout the server aborts what is left and waits up to 1 s for it to close.
        Assert.True(drain + TimeSpan.FromSeconds(1) < DockerStopTimeout,
            $"Delay + DrainTimeout = {drain} leaves no room inside docker stop's {DockerStopTimeout.TotalSeconds} s");
    }

    [Fact]
    public void Env_Keys_OnlyKestrelTcpSettingsThatExistOrRuntimeVariables()
    {
        foreach (var key in dockerfile.Final.Environment.Keys)
        {
            if (key.StartsWith("KestrelTcp__", StringComparison.Ordinal))
            {
                Assert.True(settings.HasKey(key.Replace("__", ":")), $"ENV {key} names no setting in appsettings.json");
            }
            else
            {
                Assert.Matches("^(DOTNET|ASPNETCORE)_", key);
            }
        }
    }

    [Theory]
    [InlineData("src/KestrelTcp/bin/Release/net10.0/KestrelTcp.dll")]
    [InlineData("src/KestrelTcp/obj/project.assets.json")]
    [InlineData("tests/KestrelTcp.Tests/bin/Debug/net10.0/KestrelTcp.Tests.dll")]
    [InlineData("tests/KestrelTcp.Tests/TestResults/run.trx")]
    [InlineData("TestResults/coverage.xml")]
    [InlineData(".git/HEAD")]
    public void DockerIgnore_BuildOutputGitAndTestResults_Excluded(string path)
    {
        Assert.True(DockerIgnore.Load().IsExcluded(path), $"{path} would be sent to the build context");
    }

    [Fact]
    public void DockerIgnore_WhatTheBuildStageCopies_Included()
    {
        var ignore = DockerIgnore.Load();
        var sources = dockerfile.Stages[0].All("COPY").SelectMany(c => c.Operands.SkipLast(1));

        foreach (var source in sources)
        {
            Assert.False(ignore.IsExcluded(source), $"COPY {source}: excluded by .dockerignore");
        }

        Assert.False(ignore.IsExcluded("src/KestrelTcp/Program.cs"));
    }
}

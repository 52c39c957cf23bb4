using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace KestrelTcp.Tests.Deployment;

/// <summary>
/// The container image without a container engine: replays the Dockerfile's build stage (its WORKDIR,
/// COPY — honouring .dockerignore — and RUN steps (<c>dotnet</c> and the toolchain script), with TARGETARCH set to this machine's or
/// another's) into a temporary directory, then lays out the runtime stage's files, ENV, ENTRYPOINT and HEALTHCHECK
/// so tests can run the published server as the image would (on this machine's architecture). Published once
/// per test class.
/// </summary>
public sealed class PublishedImage : IAsyncLifetime
{
    /// <summary>What the runtime-deps base image sets before the Dockerfile's own ENV (dotnet-docker src/runtime-deps).</summary>
    private static readonly Dictionary<string, string> BaseImageEnvironment = new()
    {
        ["APP_UID"] = "1654",
        ["ASPNETCORE_HTTP_PORTS"] = "8080",
        ["DOTNET_RUNNING_IN_CONTAINER"] = "true",
    };

    /// <summary>The build stage's one RUN that is not a dotnet command: the native toolchain of a Native AOT publish.</summary>
    private const string ToolchainScript = "deploy/aot-toolchain.sh";

    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(5);

    private readonly StringBuilder buildLog = new();

    /// <summary>The image for this machine's architecture, whose server the tests can run.</summary>
    public PublishedImage()
        : this(DockerArchitecture(RuntimeInformation.OSArchitecture))
    {
    }

    /// <summary>
    /// The image for <paramref name="targetArchitecture"/> (a Docker TARGETARCH: <c>amd64</c>, <c>arm64</c>), built as
    /// <c>docker buildx build --platform linux/{targetArchitecture}</c> would: the build stage still runs on this machine.
    /// </summary>
    internal PublishedImage(string targetArchitecture) => TargetArchitecture = targetArchitecture;

    /// <summary>The TARGETARCH the build stage ran with.</summary>
    public string TargetArchitecture { get; }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "kestreltcp-image-" + Guid.NewGuid().ToString("N")[..8]);

    public DockerfileModel Dockerfile { get; } = DeploymentFiles.Dockerfile();

    /// <summary>The runtime stage's WORKDIR, inside <see cref="Root"/>.</summary>
    public string WorkingDirectory { get; private set; } = "";

    /// <summary>The runtime stage's COPY destination: the published server.</summary>
    public string AppDirectory { get; private set; } = "";

    public IReadOnlyList<string> Entrypoint { get; private set; } = [];

    public IReadOnlyList<string> HealthCheck { get; private set; } = [];

    /// <summary>The base image's environment overlaid with the Dockerfile's ENV.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; private set; } = new Dictionary<string, string>();

    public IReadOnlyList<int> ExposedPorts { get; private set; } = [];

    public string BuildLog => buildLog.ToString();

    public async Task InitializeAsync()
    {
        var copy = Assert.Single(Dockerfile.Final.All("COPY"), c => c.Flags.ContainsKey("from"));
        var build = Dockerfile.Stage(copy.Flags["from"]);
        var buildRoot = Path.Combine(Root, "build");
        var runtimeRoot = Path.Combine(Root, "runtime");

        var variables = new Dictionary<string, string>
        {
            ["TARGETARCH"] = TargetArchitecture,
            ["TARGETOS"] = "linux",
            ["BUILDARCH"] = DockerArchitecture(RuntimeInformation.OSArchitecture),
            ["BUILDOS"] = "linux",
        };
        variables["TARGETPLATFORM"] = "linux/" + variables["TARGETARCH"];
        variables["BUILDPLATFORM"] = "linux/" + variables["BUILDARCH"];

        var workdir = "/";
        foreach (var instruction in build.Instructions)
        {
            switch (instruction.Keyword)
            {
                case "ARG":
                    var arg = instruction.Arguments.Split('=', 2);
                    Assert.True(arg.Length == 2 || variables.ContainsKey(arg[0]), $"ARG {arg[0]} has no value here");
                    variables.TryAdd(arg[0], arg.Length == 2 ? arg[1] : "");
                    break;
                case "ENV":
                    foreach (var (key, value) in new DockerStage { From = build.From, Instructions = { instruction } }.Environment)
                    {
                        variables[key] = value;
                    }

                    break;
                case "WORKDIR":
                    workdir = ContainerPath(workdir, instruction.Arguments);
                    Directory.CreateDirectory(Map(buildRoot, workdir));
                    break;
                case "COPY":
                    CopyFromContext(instruction, buildRoot, workdir);
                    break;
                case "RUN":
                    await RunAsync(instruction, buildRoot, workdir, variables);
                    break;
            }
        }

        var runtimeWorkdir = "/";
        var environment = new Dictionary<string, string>(BaseImageEnvironment);
        foreach (var instruction in Dockerfile.Final.Instructions)
        {
            if (instruction.Keyword == "WORKDIR")
            {
                runtimeWorkdir = ContainerPath(runtimeWorkdir, instruction.Arguments);
                Directory.CreateDirectory(Map(runtimeRoot, runtimeWorkdir));
            }
            else if (instruction == copy)
            {
                var destination = ContainerPath(runtimeWorkdir, instruction.Operands[1]);
                CopyDirectory(Map(buildRoot, instruction.Operands[0]), Map(runtimeRoot, destination), _ => true);
                AppDirectory = Map(runtimeRoot, destination);
            }
        }

        foreach (var (key, value) in Dockerfile.Final.Environment)
        {
            environment[key] = value;
        }

        Environment = environment;
        WorkingDirectory = Map(runtimeRoot, runtimeWorkdir);
        ExposedPorts = Dockerfile.Final.All("EXPOSE").SelectMany(e => e.Words).Select(p => int.Parse(p.Split('/')[0])).ToList();
        Entrypoint = MapCommand(DockerfileModel.ExecForm(Dockerfile.Final.Last("ENTRYPOINT")!.Arguments)!, runtimeRoot, runtimeWorkdir);
        HealthCheck = MapCommand(DockerfileModel.HealthCheck(Dockerfile.Final.Last("HEALTHCHECK")!).Command!, runtimeRoot, runtimeWorkdir);
    }

    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }

        return Task.CompletedTask;
    }

    /// <summary>The ENTRYPOINT with the image's environment plus <paramref name="overrides"/>, as <c>docker run -e</c> would.</summary>
    public ServerProcess Start(IReadOnlyDictionary<string, string> overrides, params string[] extraArguments) =>
        ServerProcess.Start(Entrypoint.Concat(extraArguments).ToList(), WorkingDirectory, ContainerEnvironment(overrides));

    /// <summary>Runs the HEALTHCHECK command as Docker would (inside the container, with its environment); returns the exit code and output.</summary>
    public async Task<(int ExitCode, string Output)> RunHealthCheckAsync(IReadOnlyDictionary<string, string> overrides)
    {
        using var process = ServerProcess.Start(HealthCheck, WorkingDirectory, ContainerEnvironment(overrides));
        var exitCode = await process.WaitForExitAsync(TimeSpan.FromSeconds(15));
        return (exitCode, process.Output);
    }

    /// <summary>
    /// Overrides that move every EXPOSEd port (found by its default in appsettings.json) to a free loopback
    /// port, bound to 127.0.0.1 only; returns them with the default → actual port map.
    /// </summary>
    public (Dictionary<string, string> Environment, Dictionary<int, int> Ports) FreePortOverrides(AppSettings settings)
    {
        var free = FreePorts(ExposedPorts.Count);
        var environment = new Dictionary<string, string>();
        var ports = new Dictionary<int, int>();
        foreach (var (exposed, port) in ExposedPorts.Zip(free))
        {
            Assert.True(settings.PortSections.TryGetValue(exposed, out var section), $"EXPOSE {exposed}: no such port in appsettings.json");
            var prefix = section.Replace(":", "__");
            environment[prefix + "__Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            environment[prefix + "__Address"] = "127.0.0.1";
            ports[exposed] = port;
        }

        return (environment, ports);
    }

    /// <summary>Distinct ports free on 127.0.0.1 right now (all held open together, then released).</summary>
    public static IReadOnlyList<int> FreePorts(int count)
    {
        var sockets = Enumerable.Range(0, count).Select(_ =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return socket;
        }).ToList();
        var ports = sockets.Select(s => ((IPEndPoint)s.LocalEndPoint!).Port).ToList();
        sockets.ForEach(s => s.Dispose());
        return ports;
    }

    private Dictionary<string, string> ContainerEnvironment(IReadOnlyDictionary<string, string> overrides)
    {
        // A container starts from the image's environment, not the test runner's.
        var environment = new Dictionary<string, string>
        {
            ["PATH"] = System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin",
            ["HOME"] = Path.Combine(Root, "home"),
            ["DOTNET_ROOT"] = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..")),
        };
        foreach (var (key, value) in Environment.Concat(overrides))
        {
            environment[key] = value;
        }

        return environment;
    }

    private void CopyFromContext(DockerInstruction copy, string fsRoot, string workdir)
    {
        Assert.False(copy.Flags.ContainsKey("from"), "the build stage copies only from the build context");
        var ignore = DockerIgnore.Load();
        var operands = copy.Operands;
        var destination = ContainerPath(workdir, operands[^1]);
        var intoDirectory = operands.Count > 2 || operands[^1].EndsWith('/') || operands[^1] == ".";

        foreach (var source in operands.SkipLast(1))
        {
            var matches = source.Contains('*', StringComparison.Ordinal)
                ? Directory.GetFiles(DeploymentFiles.PathOf(Path.GetDirectoryName(source) is { Length: > 0 } d ? d : "."), Path.GetFileName(source))
                : [DeploymentFiles.PathOf(source.TrimEnd('/'))];
            Assert.True(matches.Length > 0, $"COPY {source}: nothing in the context matches");
            foreach (var match in matches)
            {
                if (Directory.Exists(match))
                {
                    CopyDirectory(match, Map(fsRoot, destination), file => !ignore.IsExcluded(Path.GetRelativePath(DeploymentFiles.Root, file)));
                }
                else
                {
                    Assert.True(File.Exists(match), $"COPY {source}: not in the build context");
                    Assert.False(ignore.IsExcluded(Path.GetRelativePath(DeploymentFiles.Root, match)), $"COPY {source}: excluded by .dockerignore");
                    var target = intoDirectory ? Path.Combine(Map(fsRoot, destination), Path.GetFileName(match)) : Map(fsRoot, destination);
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    File.Copy(match, target, overwrite: true);
                }
            }
        }
    }

    private async Task RunAsync(DockerInstruction run, string fsRoot, string workdir, Dictionary<string, string> variables)
    {
        var words = DockerfileModel.SplitWords(DockerfileModel.Substitute(run.Arguments, variables))
            .Select(w => w.StartsWith('/') ? Map(fsRoot, w) : w)
            .ToList();
        // The toolchain script runs here as it runs in the image: it installs what this machine lacks (test.sh has
        // already run it, so it finds everything present) and fails the build if it cannot.
        Assert.True(words[0] is "dotnet" or ToolchainScript, $"RUN {run.Arguments}: only plain dotnet commands and {ToolchainScript} can be replayed without an engine");
        var start = new ProcessStartInfo(words[0] == "dotnet" ? "dotnet" : "sh")
        {
            WorkingDirectory = Map(fsRoot, workdir),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (words[0] == ToolchainScript)
        {
            start.ArgumentList.Add(Map(fsRoot, ContainerPath(workdir, ToolchainScript)));
        }

        words.Skip(1).ToList().ForEach(start.ArgumentList.Add);
        // The test runner's MSBuild variables must not leak into this build; no build servers left behind.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(key);
        }

        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["UseSharedCompilation"] = "false";
        start.Environment["DOTNET_NOLOGO"] = "1";

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(StepTimeout);
        await process.WaitForExitAsync(timeout.Token);
        buildLog.AppendLine("RUN " + run.Arguments).AppendLine(await stdout).AppendLine(await stderr);
        Assert.True(process.ExitCode == 0, $"RUN {run.Arguments} failed ({process.ExitCode}):\n{await stdout}\n{await stderr}");
    }

    private static List<string> MapCommand(IReadOnlyList<string> command, string fsRoot, string workdir) =>
        command.Select((word, i) =>
            word.StartsWith('/') ? Map(fsRoot, word)
            : i == 0 && word.StartsWith("./", StringComparison.Ordinal) ? Map(fsRoot, ContainerPath(workdir, word))
            : word).ToList();

    private static void CopyDirectory(string source, string destination, Func<string, bool> include)
    {
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories).Where(include))
        {
            var target = Path.Combine(destination, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    private static string ContainerPath(string workdir, string path) =>
        path.StartsWith('/') ? path : workdir.TrimEnd('/') + "/" + path;

    private static string Map(string fsRoot, string containerPath) =>
        Path.GetFullPath(Path.Combine(fsRoot, containerPath.TrimStart('/')));

    /// <summary>Docker's name (TARGETARCH, BUILDARCH) for an architecture.</summary>
    internal static string DockerArchitecture(Architecture architecture) => architecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        var other => throw new PlatformNotSupportedException($"no Docker TARGETARCH for {other}"),
    };
}

/// <summary>A child process with its output captured; killed on dispose if still running.</summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder stdout = new();
    private readonly StringBuilder stderr = new();

    private ServerProcess(Process process) => this.process = process;

    public int Id => process.Id;

    public string StandardOutput { get { lock (stdout) { return stdout.ToString(); } } }

    public string StandardError { get { lock (stderr) { return stderr.ToString(); } } }

    public string Output => StandardOutput + StandardError;

    public bool HasExited => process.HasExited;

    public static ServerProcess Start(IReadOnlyList<string> command, string workingDirectory, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        command.Skip(1).ToList().ForEach(start.ArgumentList.Add);
        start.Environment.Clear();
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start };
        var server = new ServerProcess(process);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (server.stdout) { server.stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (server.stderr) { server.stderr.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>Polls <c>/health/ready</c> until it answers 200; fails with the server's output if it exits or the deadline passes.</summary>
    public async Task WaitUntilReadyAsync(int httpPort, TimeSpan timeout)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(process.HasExited, $"the server exited with {(process.HasExited ? process.ExitCode : 0)}:\n{Output}");
            try
            {
                using var response = await client.GetAsync($"http://127.0.0.1:{httpPort}/health/ready");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.True(deadline.Elapsed < timeout, $"not ready within {timeout}:\n{Output}");
            await Task.Delay(50);
        }
    }

    /// <summary>Sends SIGTERM, as <c>docker stop</c> does to PID 1.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>Waits for the exit (and the end of its output); returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"still running after {timeout}:\n{Output}");
        }

        return process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
    }
}

using System.Runtime.InteropServices;

namespace KestrelTcp.Tests.Deployment;

/// <summary>
/// The image for the other architecture (arm64 on an x64 machine, amd64 on an arm64 one), as
/// <c>docker buildx build --platform linux/amd64,linux/arm64</c> builds it: the Dockerfile's build stage replayed on
/// this machine with the other TARGETARCH. Its server cannot run here, so the output is read instead: the files
/// the runtime stage copies, and what each was compiled for. With <see cref="PublishedServerTests"/> (this
/// machine's architecture) both architectures of the image are proven on every run, for one publish each.
/// </summary>
public class CrossArchitecturePublishTests(CrossArchitecturePublishTests.OtherArchitectureImage fixture)
    : IClassFixture<CrossArchitecturePublishTests.OtherArchitectureImage>
{
    private readonly PublishedImage image = fixture.Image;

    [Fact]
    public void Publish_OtherArchitecture_EntrypointIsAnApphostForIt()
    {
        var apphost = image.Entrypoint[0];
        Assert.True(File.Exists(apphost), $"ENTRYPOINT {apphost} is not in the published output:\n{image.BuildLog}");
        Assert.Equal(apphost, image.HealthCheck[0]);

        PublishedBinary.AssertApphostFor(apphost, image.TargetArchitecture);
    }

    [Fact]
    public void Publish_OtherArchitecture_EveryAssemblyReadyToRunForIt() =>
        PublishedBinary.AssertReadyToRunFor(image.AppDirectory, image.TargetArchitecture);

    [Fact]
    public void Publish_OtherArchitecture_DepsNameItsRuntimeIdentifier() =>
        PublishedBinary.AssertDepsTargetFor(image.AppDirectory, image.TargetArchitecture);

    [Fact]
    public void Publish_OtherArchitecture_AppSettingsBesideAndNoRuntime()
    {
        Assert.Equal(DeploymentFiles.Read("appsettings.json"), File.ReadAllText(Path.Combine(image.AppDirectory, "appsettings.json")));
        // Framework-dependent: the aspnet base image of the target's architecture brings the runtime.
        Assert.False(File.Exists(Path.Combine(image.AppDirectory, "System.Private.CoreLib.dll")));
        Assert.False(File.Exists(Path.Combine(image.AppDirectory, "libcoreclr.so")));
    }

    /// <summary>One publish for the class; a fixture of its own because xunit builds fixtures with no arguments.</summary>
    public sealed class OtherArchitectureImage : IAsyncLifetime
    {
        public PublishedImage Image { get; } = new(RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "amd64" : "arm64");

        public Task InitializeAsync() => Image.InitializeAsync();

        public Task DisposeAsync() => Image.DisposeAsync();
    }
}

using System.Runtime.InteropServices;

namespace KestrelTcp.Tests.Deployment;

/// <summary>
/// The image for the other architecture (arm64 on an x64 machine, amd64 on an arm64 one), as
/// <c>docker buildx build --platform linux/amd64,linux/arm64</c> builds it: the Dockerfile's build stage replayed on
/// this machine with the other TARGETARCH, cross-compiled (deploy/aot-toolchain.sh provides the target's linker).
/// Its server cannot run here, so the output is read instead: the files the runtime stage copies, and what they
/// were compiled for. With <see cref="PublishedServerTests"/> (this
/// machine's architecture) both architectures of the image are proven on every run, for one publish each.
/// </summary>
public class CrossArchitecturePublishTests(CrossArchitecturePublishTests.OtherArchitectureImage fixture)
    : IClassFixture<CrossArchitecturePublishTests.OtherArchitectureImage>
{
    private readonly PublishedImage image = fixture.Image;

    [Fact]
    public void Publish_OtherArchitecture_EntrypointAndHealthCheckAreItsExecutable()
    {
        var executable = image.Entrypoint[0];
        Assert.True(File.Exists(executable), $"ENTRYPOINT {executable} is not in the published output:\n{image.BuildLog}");
        Assert.Equal(executable, image.HealthCheck[0]);
    }

    [Fact]
    public void Publish_OtherArchitecture_OneNativeAotExecutableForItAndAppSettings()
    {
        PublishedBinary.AssertNativeAotFor(image.AppDirectory, image.TargetArchitecture);
        Assert.Equal(DeploymentFiles.Read("appsettings.json"), File.ReadAllText(Path.Combine(image.AppDirectory, "appsettings.json")));
    }

    /// <summary>One publish for the class; a fixture of its own because xunit builds fixtures with no arguments.</summary>
    public sealed class OtherArchitectureImage : IAsyncLifetime
    {
        public PublishedImage Image { get; } = new(RuntimeInformation.OSArchitecture == Architecture.Arm64 ? "amd64" : "arm64");

        public Task InitializeAsync() => Image.InitializeAsync();

        public Task DisposeAsync() => Image.DisposeAsync();
    }
}

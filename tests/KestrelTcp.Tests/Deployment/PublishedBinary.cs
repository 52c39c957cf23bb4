using System.Buffers.Binary;
using System.Reflection.PortableExecutable;
using System.Text.Json;

namespace KestrelTcp.Tests.Deployment;

/// <summary>
/// What a publish output was compiled for, read from the files themselves rather than from the build's word:
/// the apphost's ELF header, each assembly's PE header, the deps file's runtime target.
/// </summary>
internal static class PublishedBinary
{
    /// <summary>
    /// crossgen2 writes a ReadyToRun image's COFF Machine as the target's machine XOR a per-OS constant, so that no
    /// loader of another OS maps it as its own native code (ILCompiler.PEWriter.MachineOSOverride in dotnet/runtime,
    /// the runtime's IMAGE_FILE_MACHINE_NATIVE_OS_OVERRIDE). An IL-only assembly says I386 (0x014C) whatever it runs on.
    /// </summary>
    private const ushort LinuxMachineOverride = 0x7B79;

    /// <summary>The READYTORUN_HEADER's first field: "RTR" (src/coreclr/inc/readytorun.h).</summary>
    private const uint ReadyToRunSignature = 0x00525452;

    /// <summary>The ELF e_machine (System V gABI) and COFF Machine of a Docker TARGETARCH.</summary>
    public static (ushort Elf, Machine Coff) MachineOf(string dockerArchitecture) => dockerArchitecture switch
    {
        "amd64" => (0x3E, Machine.Amd64),   // EM_X86_64
        "arm64" => (0xB7, Machine.Arm64),   // EM_AARCH64
        _ => throw new NotSupportedException($"no machine numbers for TARGETARCH {dockerArchitecture}"),
    };

    /// <summary>The runtime identifier <c>-a</c> makes of a Docker TARGETARCH on Linux.</summary>
    public static string RuntimeIdentifierOf(string dockerArchitecture) => dockerArchitecture switch
    {
        "amd64" => "linux-x64",
        "arm64" => "linux-arm64",
        _ => throw new NotSupportedException($"no runtime identifier for TARGETARCH {dockerArchitecture}"),
    };

    /// <summary>The apphost is a 64-bit little-endian ELF executable for the architecture.</summary>
    public static void AssertApphostFor(string apphost, string dockerArchitecture)
    {
        var header = new byte[20];
        using (var file = File.OpenRead(apphost))
        {
            file.ReadExactly(header);
        }

        var name = Path.GetFileName(apphost);
        Assert.Equal($"{name}: ELF", $"{name}: {(header.AsSpan(0, 4).SequenceEqual("\u007FELF"u8) ? "ELF" : Convert.ToHexString(header, 0, 4))}");
        Assert.Equal($"{name}: EI_CLASS 2 (ELFCLASS64), EI_DATA 1 (little-endian)", $"{name}: EI_CLASS {header[4]} (ELFCLASS64), EI_DATA {header[5]} (little-endian)");
        var expected = MachineOf(dockerArchitecture).Elf;
        var machine = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(18));
        Assert.Equal($"{name}: e_machine 0x{expected:X2}", $"{name}: e_machine 0x{machine:X2}");
    }

    /// <summary>Every assembly in <paramref name="directory"/> is a ReadyToRun image for Linux on the architecture.</summary>
    public static void AssertReadyToRunFor(string directory, string dockerArchitecture)
    {
        var assemblies = Directory.GetFiles(directory, "*.dll").Order(StringComparer.Ordinal).ToList();
        Assert.Contains(Path.Combine(directory, "KestrelTcp.dll"), assemblies);
        var machine = (ushort)((ushort)MachineOf(dockerArchitecture).Coff ^ LinuxMachineOverride);
        foreach (var assembly in assemblies)
        {
            var name = Path.GetFileName(assembly);
            using var reader = new PEReader(File.OpenRead(assembly));
            var headers = reader.PEHeaders;
            var cor = headers.CorHeader;
            Assert.True(cor is not null, $"{name}: not a .NET assembly");

            // What the runtime checks before it uses an image's native code: ILLibrary and a managed native header.
            Assert.True((cor.Flags & CorFlags.ILLibrary) != 0, $"{name}: CorFlags {cor.Flags}, no ILLibrary: not ReadyToRun");
            Assert.True(cor.ManagedNativeHeaderDirectory.Size > 0, $"{name}: no ManagedNativeHeader: not ReadyToRun");
            var signature = reader.GetSectionData(cor.ManagedNativeHeaderDirectory.RelativeVirtualAddress).GetReader().ReadUInt32();
            Assert.Equal($"{name}: READYTORUN_HEADER 0x{ReadyToRunSignature:X8}", $"{name}: READYTORUN_HEADER 0x{signature:X8}");
            Assert.Equal($"{name}: COFF Machine 0x{machine:X4}", $"{name}: COFF Machine 0x{(ushort)headers.CoffHeader.Machine:X4}");
        }
    }

    /// <summary>The deps file names the runtime identifier (the runtimeconfig of a framework-dependent app names none).</summary>
    public static void AssertDepsTargetFor(string directory, string dockerArchitecture)
    {
        using var deps = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "KestrelTcp.deps.json")));
        var target = deps.RootElement.GetProperty("runtimeTarget").GetProperty("name").GetString();
        Assert.EndsWith($"/{RuntimeIdentifierOf(dockerArchitecture)}", target);
    }
}

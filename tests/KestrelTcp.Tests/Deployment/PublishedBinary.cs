using System.Buffers.Binary;

namespace KestrelTcp.Tests.Deployment;

/// <summary>
/// What a publish output was compiled for, read from the files themselves rather than from the build's word:
/// the executable's ELF header and section names.
/// </summary>
internal static class PublishedBinary
{
    /// <summary>The ELF e_machine (System V gABI) of a Docker TARGETARCH.</summary>
    public static ushort MachineOf(string dockerArchitecture) => dockerArchitecture switch
    {
        "amd64" => 0x3E,   // EM_X86_64
        "arm64" => 0xB7,   // EM_AARCH64
        _ => throw new NotSupportedException($"no machine number for TARGETARCH {dockerArchitecture}"),
    };

    /// <summary>The file is a 64-bit little-endian ELF executable for the architecture.</summary>
    public static void AssertElfFor(string apphost, string dockerArchitecture)
    {
        var header = new byte[20];
        using (var file = File.OpenRead(apphost))
        {
            file.ReadExactly(header);
        }

        var name = Path.GetFileName(apphost);
        Assert.Equal($"{name}: ELF", $"{name}: {(header.AsSpan(0, 4).SequenceEqual("\u007FELF"u8) ? "ELF" : Convert.ToHexString(header, 0, 4))}");
        Assert.Equal($"{name}: EI_CLASS 2 (ELFCLASS64), EI_DATA 1 (little-endian)", $"{name}: EI_CLASS {header[4]} (ELFCLASS64), EI_DATA {header[5]} (little-endian)");
        var expected = MachineOf(dockerArchitecture);
        var machine = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(18));
        Assert.Equal($"{name}: e_machine 0x{expected:X2}", $"{name}: e_machine 0x{machine:X2}");
    }

    /// <summary>
    /// The publish is one Native AOT executable for the architecture and appsettings.json: no assembly, no
    /// runtime, no host files. ILC's object writer names the sections of managed code and of the module table
    /// <c>__managedcode</c> and <c>__modules</c> (they stay in the section headers after stripping); an apphost has
    /// neither and needs <c>libstdc++</c>, the executable only the C library.
    /// </summary>
    public static void AssertNativeAotFor(string directory, string dockerArchitecture)
    {
        var executable = Path.Combine(directory, "KestrelTcp");
        Assert.Equal(["KestrelTcp", "appsettings.json"], Directory.GetFiles(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        AssertElfFor(executable, dockerArchitecture);

        var sections = ElfSectionNames(File.ReadAllBytes(executable));
        Assert.Contains("__managedcode", sections);
        Assert.Contains("__modules", sections);
        Assert.True(OperatingSystem.IsWindows() || File.GetUnixFileMode(executable).HasFlag(UnixFileMode.UserExecute), "KestrelTcp is not executable");
    }

    /// <summary>The section names of a 64-bit little-endian ELF file (System V gABI: the section header table and its string table).</summary>
    internal static List<string> ElfSectionNames(ReadOnlySpan<byte> elf)
    {
        var tableOffset = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(elf[0x28..]));
        var entrySize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3A..]);
        var count = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3C..]);
        var namesIndex = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3E..]);
        var namesOffset = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(elf[(tableOffset + (namesIndex * entrySize) + 0x18)..]));
        var names = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            var name = elf[(namesOffset + (int)BinaryPrimitives.ReadUInt32LittleEndian(elf[(tableOffset + (i * entrySize))..]))..];
            names.Add(System.Text.Encoding.ASCII.GetString(name[..name.IndexOf((byte)0)]));
        }

        return names;
    }
}

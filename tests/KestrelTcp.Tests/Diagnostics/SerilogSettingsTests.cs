using System.Text.Json;
using KestrelTcp.Diagnostics;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace KestrelTcp.Tests.Diagnostics;

/// <summary>
/// The <c>Serilog</c> section, read without Serilog.Settings.Configuration: the levels and sinks
/// it gives really apply, and every key it cannot honour is a start-up problem naming the key.
/// </summary>
public sealed class SerilogSettingsTests : IDisposable
{
    private static readonly TimeSpan ExitWithin = TimeSpan.FromSeconds(30);
    private readonly string _folder = Directory.CreateTempSubdirectory("kestreltcp-serilog-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static SerilogSettings Read(out List<string> problems, params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>("Serilog:" + s.Key, s.Value)))
            .Build();
        problems = [];
        return SerilogSettings.Read(configuration.GetSection("Serilog"), problems);
    }

    private static SerilogSettings Valid(params (string Key, string Value)[] settings)
    {
        var result = Read(out var problems, settings);
        Assert.Empty(problems);
        return result;
    }

    private static List<string> Problems(params (string Key, string Value)[] settings)
    {
        Read(out var problems, settings);
        return problems;
    }

    private static List<LogEvent> Capture(SerilogSettings settings, Action<Serilog.ILogger> log)
    {
        var sink = new ListSink();
        using (var logger = settings.Apply(new LoggerConfiguration().WriteTo.Sink(sink)).CreateLogger())
        {
            log(logger);
        }

        return sink.Events;
    }

    [Fact]
    public void MinimumLevel_AsAValue_AppliesToEverySource()
    {
        var events = Capture(Valid(("MinimumLevel", "Warning")), logger =>
        {
            logger.Information("dropped");
            logger.Warning("kept");
        });
        Assert.Equal(["kept"], events.Select(e => e.MessageTemplate.Text));
    }

    [Fact]
    public void MinimumLevel_DefaultAndOverrides_ApplyPerSourcePrefix()
    {
        var settings = Valid(("MinimumLevel:Default", "Debug"), ("MinimumLevel:Override:Noisy", "Error"), ("MinimumLevel:Override:Noisy.Detail", "Verbose"));
        var events = Capture(settings, logger =>
        {
            logger.Verbose("root verbose");
            logger.Debug("root debug");
            logger.ForContext(Constants.SourceContextPropertyName, "Noisy.Part").Warning("noisy warning");
            logger.ForContext(Constants.SourceContextPropertyName, "Noisy.Detail.X").Verbose("detail verbose");
        });
        Assert.Equal(["root debug", "detail verbose"], events.Select(e => e.MessageTemplate.Text));
    }

    [Fact]
    public void Properties_AreOnEveryEvent()
    {
        var events = Capture(Valid(("Properties:Application", "kestreltcp"), ("Properties:Site", "eu-1")), logger => logger.Information("x"));
        var e = Assert.Single(events);
        Assert.Equal("\"kestreltcp\"", e.Properties["Application"].ToString());
        Assert.Equal("\"eu-1\"", e.Properties["Site"].ToString());
    }

    [Fact]
    public void WriteTo_FileWithCompactJsonFormatter_WritesOneJsonEventPerLine()
    {
        var path = Path.Combine(_folder, "log.json");
        var settings = Valid(
            ("WriteTo:0:Name", "File"),
            ("WriteTo:0:Args:path", path),
            ("WriteTo:0:Args:formatter", "Serilog.Formatting.Compact.CompactJsonFormatter, Serilog.Formatting.Compact"));
        Assert.True(settings.HasSinks);
        using (var logger = settings.Apply(new LoggerConfiguration()).CreateLogger())
        {
            logger.Information("Hello {Name}", "file");
        }

        var line = Assert.Single(File.ReadAllLines(path));
        var json = JsonDocument.Parse(line).RootElement;
        Assert.Equal("Hello {Name}", json.GetProperty("@mt").GetString());
        Assert.Equal("file", json.GetProperty("Name").GetString());
    }

    [Fact]
    public void WriteTo_AsyncAroundFileWithTemplateAndLevel_WritesWhatPassesTheLevel()
    {
        var path = Path.Combine(_folder, "log.txt");
        var settings = Valid(
            ("WriteTo:0:Name", "Async"),
            ("WriteTo:0:Args:configure:0:Name", "File"),
            ("WriteTo:0:Args:configure:0:Args:path", path),
            ("WriteTo:0:Args:configure:0:Args:outputTemplate", "{Level:u3} {Message:lj}{NewLine}"),
            ("WriteTo:0:Args:configure:0:Args:restrictedToMinimumLevel", "Warning"),
            ("WriteTo:0:Args:configure:0:Args:fileSizeLimitBytes", "null"),
            ("WriteTo:0:Args:configure:0:Args:retainedFileCountLimit", "5"));
        Assert.Equal(["Async(File)"], settings.SinkDescriptions);
        using (var logger = settings.Apply(new LoggerConfiguration()).CreateLogger())
        {
            logger.Information("quiet");
            logger.Warning("Disk {Percent}% full", 91);
        }

        Assert.Equal(["WRN Disk 91% full"], File.ReadAllLines(path));
    }

    [Fact]
    public void WriteTo_ConsoleByNameOnly_IsASink()
    {
        var settings = Valid(("WriteTo:0", "Console"), ("Using:0", "Serilog.Sinks.Console"), ("Enrich:0", "FromLogContext"));
        Assert.Equal(["Console"], settings.SinkDescriptions);
    }

    [Fact]
    public void NoSection_NoSinksAndNoLevel()
    {
        var settings = Valid();
        Assert.False(settings.HasSinks);
        Assert.Null(settings.MinimumLevel);
    }

    [Theory]
    [InlineData("MinimumLevel", "Loud", "Serilog:MinimumLevel: 'Loud' is not a level (Verbose, Debug, Information, Warning, Error or Fatal)")]
    [InlineData("MinimumLevel:Override:Microsoft", "", "Serilog:MinimumLevel:Override:Microsoft: missing (a level: Verbose, Debug, Information, Warning, Error, Fatal)")]
    [InlineData("MinimumLevel:ControlledBy", "$switch", "Serilog:MinimumLevel:ControlledBy: not a setting this build reads (Default, Override)")]
    [InlineData("Filter:0:Name", "ByExcluding", "Serilog:Filter: not a setting this build reads (MinimumLevel, WriteTo, Enrich, Properties, Using)")]
    [InlineData("WriteTo:0:Name", "Seq", "Serilog:WriteTo:0:Name: 'Seq' is not a sink of this build (Console, File, Debug, Async)")]
    [InlineData("WriteTo:0", "Elasticsearch", "Serilog:WriteTo:0: 'Elasticsearch' is not a sink of this build (Console, File, Debug, Async)")]
    [InlineData("Enrich:0", "WithMachineName", "Serilog:Enrich:0: 'WithMachineName' is not an enricher of this build (FromLogContext, which is always on; add fixed values under Serilog:Properties)")]
    [InlineData("Using:0", "Serilog.Sinks.Seq", "Serilog:Using:0: 'Serilog.Sinks.Seq' is not part of this build (its sinks: Serilog, Serilog.Sinks.Console, Serilog.Sinks.File, Serilog.Sinks.Debug, Serilog.Sinks.Async, Serilog.Formatting.Compact)")]
    public void Problem_NamesTheKey(string key, string value, string problem) =>
        Assert.Equal([problem], Problems((key, value)));

    [Fact]
    public void Problem_FileWithoutPath_NamesTheArgument() =>
        Assert.Equal(["Serilog:WriteTo:0:Args:path: missing (the file to write; relative to the working directory)"], Problems(("WriteTo:0:Name", "File")));

    [Fact]
    public void Problem_MisspeltArgument_NamesItAndListsTheKnownOnes()
    {
        var problem = Assert.Single(Problems(("WriteTo:0:Name", "Console"), ("WriteTo:0:Args:outputTemplat", "{Message}")));
        Assert.StartsWith("Serilog:WriteTo:0:Args:outputTemplat: not an argument of this sink (", problem, StringComparison.Ordinal);
        Assert.Contains("outputTemplate", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("formatter", "My.Formatter, Mine", "Serilog:WriteTo:0:Args:formatter: 'My.Formatter, Mine' is not a formatter of this build")]
    [InlineData("theme", "Serilog.Sinks.SystemConsole.Themes.AnsiConsoleTheme::Neon, Serilog.Sinks.Console", "Serilog:WriteTo:0:Args:theme: 'Serilog.Sinks.SystemConsole.Themes.AnsiConsoleTheme::Neon, Serilog.Sinks.Console' is not a console theme")]
    [InlineData("restrictedToMinimumLevel", "Loud", "Serilog:WriteTo:0:Args:restrictedToMinimumLevel: 'Loud' is not a level")]
    [InlineData("standardErrorFromLevel", "7", "Serilog:WriteTo:0:Args:standardErrorFromLevel: '7' is not a level")]
    public void Problem_ConsoleArgument_NamesIt(string argument, string value, string start)
    {
        var problem = Assert.Single(Problems(("WriteTo:0:Name", "Console"), ("WriteTo:0:Args:" + argument, value)));
        Assert.StartsWith(start, problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("fileSizeLimitBytes", "-1", "Serilog:WriteTo:0:Args:fileSizeLimitBytes: '-1' is not a positive whole number of bytes")]
    [InlineData("rollingInterval", "Weekly", "Serilog:WriteTo:0:Args:rollingInterval: 'Weekly' is not a rolling interval (Infinite, Year, Month, Day, Hour or Minute)")]
    [InlineData("shared", "maybe", "Serilog:WriteTo:0:Args:shared: 'maybe' is not true or false")]
    [InlineData("flushToDiskInterval", "soon", "Serilog:WriteTo:0:Args:flushToDiskInterval: 'soon' is not a time span")]
    public void Problem_FileArgument_NamesIt(string argument, string value, string start)
    {
        var problem = Assert.Single(Problems(("WriteTo:0:Name", "File"), ("WriteTo:0:Args:path", "x.log"), ("WriteTo:0:Args:" + argument, value)));
        Assert.StartsWith(start, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Problem_InsideAsync_NamesTheNestedKey() =>
        Assert.Equal(
            ["Serilog:WriteTo:0:Args:configure:0:Name: 'Http' is not a sink of this build (Console, File, Debug, Async)"],
            Problems(("WriteTo:0:Name", "Async"), ("WriteTo:0:Args:configure:0:Name", "Http")));

    [Fact]
    public async Task Server_WriteToFile_CloseEventReachesTheFile()
    {
        var path = Path.Combine(_folder, "server.json");
        using (var server = await ChildServer.StartAsync(
            ("Serilog:WriteTo:0:Name", "File"),
            ("Serilog:WriteTo:0:Args:path", path),
            ("Serilog:WriteTo:0:Args:formatter", "Serilog.Formatting.Compact.CompactJsonFormatter, Serilog.Formatting.Compact")))
        {
            await using (var client = await server.ConnectAsync("echo"))
            {
                await client.SendAsync("ping");
                client.ShutdownSend();
                Assert.Equal("ping", await client.ReadToEndTextAsync());
            }

            server.Terminate();
            Assert.Equal(0, await server.WaitForExitAsync(ExitWithin));
            // The file replaces the console: the server's own events are not on stdout.
            Assert.DoesNotContain("closed", server.StandardOutput, StringComparison.Ordinal);
        }

        var close = ReadShared(path).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Single(e => e.TryGetProperty("Reason", out _));
        Assert.Equal("echo", close.GetProperty("Listener").GetString());
    }

    [Fact]
    public async Task Server_UnknownSink_Exit2NamingTheKey()
    {
        var (arguments, _, _) = BuiltServer.FreePortArguments();
        arguments.Add("--Serilog:WriteTo:0:Name=Seq");
        using var server = BuiltServer.Start(arguments);
        Assert.Equal(2, await server.WaitForExitAsync(ExitWithin));
        Assert.Contains("Serilog:WriteTo:0:Name: 'Seq' is not a sink of this build (Console, File, Debug, Async)", server.StandardError, StringComparison.Ordinal);
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(stream).ReadToEnd();
    }

    private sealed class ListSink : ILogEventSink
    {
        public List<LogEvent> Events { get; } = [];

        public void Emit(LogEvent logEvent) => Events.Add(logEvent);
    }
}

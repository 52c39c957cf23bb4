using System.Globalization;
using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace KestrelTcp.Tests.Deployment;

/// <summary>The repository's deployment files, and the defaults in its appsettings.json they must agree with.</summary>
internal static class DeploymentFiles
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    /// <summary>The folder holding KestrelTcp.sln.</summary>
    public static string Root => LazyRoot.Value;

    public static string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    public static string Read(string relative) => File.ReadAllText(PathOf(relative));

    public static DockerfileModel Dockerfile() => DockerfileModel.Parse(Read("Dockerfile"));

    /// <summary>Every YAML document in a file, as dictionaries, lists and strings.</summary>
    public static IReadOnlyList<Dictionary<string, object?>> YamlDocuments(string relative)
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(Read(relative)))
        {
            stream.Load(reader);
        }

        return stream.Documents.Select(d => (Dictionary<string, object?>)ToPlain(d.RootNode)!).ToList();
    }

    /// <summary>The one document of <paramref name="kind"/> among the resources kustomization.yaml lists.</summary>
    public static Dictionary<string, object?> KubernetesResource(string kind)
    {
        var documents = KubernetesResources().Where(d => Yaml.Str(d, "kind") == kind).ToList();
        Assert.True(documents.Count == 1, $"expected exactly one {kind} in deploy/kubernetes, found {documents.Count}");
        return documents[0];
    }

    public static IEnumerable<Dictionary<string, object?>> KubernetesResources() =>
        Yaml.List(YamlDocuments("deploy/kubernetes/kustomization.yaml")[0], "resources")
            .Cast<string>()
            .SelectMany(r => YamlDocuments("deploy/kubernetes/" + r));

    private static object? ToPlain(YamlNode node) => node switch
    {
        YamlMappingNode map => map.Children.ToDictionary(c => ((YamlScalarNode)c.Key).Value!, c => ToPlain(c.Value)),
        YamlSequenceNode list => list.Children.Select(ToPlain).ToList(),
        YamlScalarNode scalar => scalar.Value,
        _ => throw new NotSupportedException(node.NodeType.ToString()),
    };

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KestrelTcp.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No KestrelTcp.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>Navigation in YAML read by <see cref="DeploymentFiles.YamlDocuments"/>.</summary>
internal static class Yaml
{
    public static object? Get(object? node, params string[] path)
    {
        foreach (var key in path)
        {
            node = node is Dictionary<string, object?> map && map.TryGetValue(key, out var value) ? value : null;
        }

        return node;
    }

    public static Dictionary<string, object?> Map(object? node, params string[] path) =>
        Get(node, path) as Dictionary<string, object?> ?? throw new Xunit.Sdk.XunitException($"no mapping at {string.Join('.', path)}");

    public static List<object?> List(object? node, params string[] path) =>
        Get(node, path) as List<object?> ?? throw new Xunit.Sdk.XunitException($"no list at {string.Join('.', path)}");

    public static string? Str(object? node, params string[] path) => Get(node, path) as string;

    public static int Int(object? node, params string[] path) =>
        int.Parse(Str(node, path) ?? throw new Xunit.Sdk.XunitException($"no value at {string.Join('.', path)}"), CultureInfo.InvariantCulture);
}

/// <summary>The defaults of the root appsettings.json that the image and the manifests must agree with.</summary>
public sealed class AppSettings
{
    private AppSettings(JsonElement kestrelTcp) => Section = kestrelTcp;

    public JsonElement Section { get; }

    public static AppSettings Load()
    {
        using var document = JsonDocument.Parse(DeploymentFiles.Read("appsettings.json"));
        return new AppSettings(document.RootElement.GetProperty("KestrelTcp").Clone());
    }

    public int HttpPort => Section.GetProperty("Http").GetProperty("Port").GetInt32();

    /// <summary>Each enabled listener: name, handler, port.</summary>
    public IReadOnlyList<(string Name, string Handler, int Port)> Listeners =>
        Section.GetProperty(nameof(Listeners)).EnumerateObject()
            .Where(l => !l.Value.TryGetProperty("Enabled", out var enabled) || enabled.GetBoolean())
            .Select(l => (l.Name, l.Value.GetProperty("Handler").GetString()!, l.Value.GetProperty("Port").GetInt32()))
            .ToList();

    /// <summary>Every port the server listens on by default, keyed by the configuration section that sets it.</summary>
    public IReadOnlyDictionary<int, string> PortSections =>
        Listeners.ToDictionary(l => l.Port, l => $"KestrelTcp:Listeners:{l.Name}")
            .Append(new KeyValuePair<int, string>(HttpPort, "KestrelTcp:Http"))
            .ToDictionary();

    public TimeSpan ShutdownDelay => Shutdown("Delay");

    public TimeSpan DrainTimeout => Shutdown("DrainTimeout");

    /// <summary>Whether <paramref name="key"/> (<c>KestrelTcp:Shutdown:Delay</c>) names a setting present in appsettings.json.</summary>
    public bool HasKey(string key)
    {
        var parts = key.Split(':');
        Assert.Equal("KestrelTcp", parts[0]);
        var element = Section;
        foreach (var part in parts.Skip(1))
        {
            var match = element.ValueKind == JsonValueKind.Object
                ? element.EnumerateObject().FirstOrDefault(p => string.Equals(p.Name, part, StringComparison.OrdinalIgnoreCase))
                : default;
            if (match.Value.ValueKind == JsonValueKind.Undefined)
            {
                return false;
            }

            element = match.Value;
        }

        return true;
    }

    /// <summary>A TimeSpan from environment-style overrides (<c>KestrelTcp__Shutdown__Delay</c>), else the appsettings.json default.</summary>
    public TimeSpan Shutdown(string name, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var key = $"KestrelTcp__Shutdown__{name}";
        var text = environment?.FirstOrDefault(e => string.Equals(e.Key, key, StringComparison.OrdinalIgnoreCase)).Value;
        text ??= Section.GetProperty("Shutdown").TryGetProperty(name, out var value) ? value.GetString() : "00:00:00";
        return TimeSpan.Parse(text!, CultureInfo.InvariantCulture);
    }
}

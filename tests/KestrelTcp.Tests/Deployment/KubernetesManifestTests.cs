using System.Globalization;
using KestrelTcp.Diagnostics;
using KestrelTcp.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace KestrelTcp.Tests.Deployment;

/// <summary>deploy/kubernetes (as kustomization.yaml assembles it) and docker-compose.yml, checked against appsettings.json and the server's routes.</summary>
public class KubernetesManifestTests
{
    private static readonly Lazy<IReadOnlySet<string>> Routes = new(ManagementRoutes);

    private readonly AppSettings settings = AppSettings.Load();
    private readonly Dictionary<string, object?> deployment = DeploymentFiles.KubernetesResource("Deployment");

    private Dictionary<string, object?> PodSpec => Yaml.Map(deployment, "spec", "template", "spec");

    private Dictionary<string, object?> Container => (Dictionary<string, object?>)Assert.Single(Yaml.List(PodSpec, "containers"))!;

    private Dictionary<string, string?> ContainerEnv =>
        Yaml.List(Container, "env").ToDictionary(e => Yaml.Str(e, "name")!, e => Yaml.Str(e, "value"));

    [Fact]
    public void Kustomization_Resources_DeploymentServiceAndDisruptionBudget()
    {
        var kinds = DeploymentFiles.KubernetesResources().Select(r => Yaml.Str(r, "kind")).Order();

        Assert.Equal(new[] { "Deployment", "PodDisruptionBudget", "Service" }, kinds);
    }

    [Fact]
    public void Kustomization_Image_NamesTheDeploymentsImage()
    {
        var kustomization = DeploymentFiles.YamlDocuments("deploy/kubernetes/kustomization.yaml")[0];
        var image = (Dictionary<string, object?>)Assert.Single(Yaml.List(kustomization, "images"))!;

        Assert.Equal(Yaml.Str(Container, "image")!.Split(':')[0], Yaml.Str(image, "name"));
    }

    [Fact]
    public void Deployment_Replicas_AtLeastTwo()
    {
        Assert.True(Yaml.Int(deployment, "spec", "replicas") >= 2);
    }

    [Fact]
    public void Deployment_ContainerPorts_EveryPortOfAppSettings()
    {
        var ports = Yaml.List(Container, "ports").Select(p => Yaml.Int(p, "containerPort")).Order();

        Assert.Equal(settings.PortSections.Keys.Order(), ports);
        Assert.All(Yaml.List(Container, "ports"), p => Assert.Equal("TCP", Yaml.Str(p, "protocol")));
    }

    [Theory]
    [InlineData("startupProbe", "/health/live")]
    [InlineData("livenessProbe", "/health/live")]
    [InlineData("readinessProbe", "/health/ready")]
    public void Deployment_Probe_HttpGetOnTheManagementPort(string probe, string path)
    {
        var spec = Yaml.Map(Container, probe);

        // Never tcpSocket or exec: a TCP probe on a service port is a real connection.
        Assert.Equal(new[] { "httpGet" }, spec.Keys.Where(k => k is "httpGet" or "tcpSocket" or "exec" or "grpc"));
        Assert.Equal(path, Yaml.Str(spec, "httpGet", "path"));
        Assert.Contains(path, Routes.Value);
        Assert.Equal(settings.HttpPort, ContainerPort(Yaml.Str(spec, "httpGet", "port")!));
    }

    [Fact]
    public void Deployment_TerminationGracePeriod_LongerThanShutdownDelayPlusDrainTimeout()
    {
        var env = ContainerEnv;
        var drain = settings.Shutdown("Delay", env) + settings.Shutdown("DrainTimeout", env);
        var grace = TimeSpan.FromSeconds(Yaml.Int(PodSpec, "terminationGracePeriodSeconds"));

        Assert.True(grace > drain, $"terminationGracePeriodSeconds {grace.TotalSeconds} s must exceed Delay + DrainTimeout = {drain}");
        // Kubernetes removes a terminating pod from the Service while it drains; a delay covers the propagation.
        Assert.True(settings.Shutdown("Delay", env) > TimeSpan.Zero);
    }

    [Fact]
    public void Deployment_SecurityContext_NonRootReadOnlyRootFilesystemWithWritableTmp()
    {
        var pod = Yaml.Map(PodSpec, "securityContext");
        var container = Yaml.Map(Container, "securityContext");

        Assert.Equal("true", Yaml.Str(pod, "runAsNonRoot"));
        var uid = Yaml.Int(pod, "runAsUser");
        Assert.NotEqual(0, uid);
        Assert.Equal("true", Yaml.Str(container, "readOnlyRootFilesystem"));
        Assert.Equal("false", Yaml.Str(container, "allowPrivilegeEscalation"));
        Assert.Equal(new object?[] { "ALL" }, Yaml.List(container, "capabilities", "drop"));

        var tmp = Assert.Single(Yaml.List(Container, "volumeMounts"), m => Yaml.Str(m, "mountPath") == "/tmp");
        var volume = Assert.Single(Yaml.List(PodSpec, "volumes"), v => Yaml.Str(v, "name") == Yaml.Str(tmp, "name"));
        Assert.NotNull(Yaml.Get(volume, "emptyDir"));
    }

    [Fact]
    public void Deployment_Resources_RequestsAndLimitsForCpuAndMemory()
    {
        foreach (var kind in new[] { "requests", "limits" })
        {
            Assert.NotNull(Yaml.Str(Container, "resources", kind, "cpu"));
            Assert.NotNull(Yaml.Str(Container, "resources", kind, "memory"));
        }
    }

    [Fact]
    public void Deployment_Environment_OnlySettingsThatExist()
    {
        foreach (var (name, value) in ContainerEnv)
        {
            Assert.False(string.IsNullOrEmpty(value), $"env {name} has no value");
            if (name.StartsWith("KestrelTcp__", StringComparison.Ordinal))
            {
                Assert.True(settings.HasKey(name.Replace("__", ":")), $"env {name} names no setting in appsettings.json");
            }
            else
            {
                Assert.Matches("^(DOTNET|ASPNETCORE)_", name);
            }
        }

        // Which replica answered is the point of running many.
        Assert.Contains("{MachineName}", ContainerEnv["KestrelTcp__Listeners__greeting__Options__Banner"]);
    }

    [Fact]
    public void PodTemplate_PrometheusAnnotations_ScrapeMetricsOnTheManagementPort()
    {
        var annotations = Yaml.Map(deployment, "spec", "template", "metadata", "annotations");

        Assert.Equal("true", annotations["prometheus.io/scrape"]);
        Assert.Equal(settings.HttpPort.ToString(CultureInfo.InvariantCulture), annotations["prometheus.io/port"]);
        Assert.Equal("/metrics", annotations["prometheus.io/path"]);
        Assert.Contains("/metrics", Routes.Value);
    }

    [Fact]
    public void Service_Ports_EveryPortOfAppSettingsToTheMatchingContainerPort()
    {
        var service = DeploymentFiles.KubernetesResource("Service");
        var ports = Yaml.List(service, "spec", "ports");

        Assert.Equal(settings.PortSections.Keys.Order(), ports.Select(p => Yaml.Int(p, "port")).Order());
        Assert.All(ports, p => Assert.Equal(Yaml.Int(p, "port"), ContainerPort(Yaml.Str(p, "targetPort")!)));
        AssertSelects(Yaml.Map(service, "spec", "selector"));
    }

    [Fact]
    public void PodDisruptionBudget_Selector_CoversThePodsAndAllowsOneEviction()
    {
        var budget = DeploymentFiles.KubernetesResource("PodDisruptionBudget");

        AssertSelects(Yaml.Map(budget, "spec", "selector", "matchLabels"));
        var replicas = Yaml.Int(deployment, "spec", "replicas");
        if (Yaml.Str(budget, "spec", "minAvailable") is { } min)
        {
            Assert.InRange(int.Parse(min, CultureInfo.InvariantCulture), 1, replicas - 1);
        }
        else
        {
            Assert.InRange(Yaml.Int(budget, "spec", "maxUnavailable"), 1, replicas - 1);
        }
    }

    [Fact]
    public void DockerCompose_Ports_EveryPortOfAppSettingsAndPrometheusScrapesTheManagementPort()
    {
        var compose = DeploymentFiles.YamlDocuments("docker-compose.yml")[0];
        var published = Yaml.List(compose, "services", "kestreltcp", "ports").Cast<string>().Select(p => int.Parse(p.Split(':')[^1])).Order();
        var prometheus = DeploymentFiles.YamlDocuments("deploy/prometheus/prometheus.yml")[0];
        var job = (Dictionary<string, object?>)Assert.Single(Yaml.List(prometheus, "scrape_configs"))!;
        var target = (string)Assert.Single(Yaml.List(Assert.Single(Yaml.List(job, "static_configs")), "targets"))!;

        Assert.Equal(settings.PortSections.Keys.Order(), published);
        Assert.Equal($"kestreltcp:{settings.HttpPort}", target);
        Assert.Equal("/metrics", Yaml.Str(job, "metrics_path"));
    }

    private int ContainerPort(string nameOrNumber) =>
        int.TryParse(nameOrNumber, out var number)
            ? number
            : Yaml.Int(Assert.Single(Yaml.List(Container, "ports"), p => Yaml.Str(p, "name") == nameOrNumber), "containerPort");

    private void AssertSelects(Dictionary<string, object?> selector)
    {
        var labels = Yaml.Map(deployment, "spec", "template", "metadata", "labels");
        Assert.NotEmpty(selector);
        Assert.All(selector, s => Assert.Equal(s.Value, labels.GetValueOrDefault(s.Key)));
    }

    // The paths the server really maps, so that a probe can never point at a route that does not exist.
    private static IReadOnlySet<string> ManagementRoutes()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Services.AddKestrelTcp();
        var app = builder.Build();
        app.MapKestrelTcpManagement();
        return ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/'))
            .ToHashSet();
    }
}

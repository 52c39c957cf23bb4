using System.Collections.Concurrent;
using System.Net;
using System.Text;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace KestrelTcp.Tests.Diagnostics;

/// <summary>
/// The OTLP push: with <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> set, the same metrics go to a collector
/// (here a local receiver speaking OTLP over HTTP, and over gRPC); unset, no exporter is even loaded.
/// </summary>
public class OtlpTests
{
    [Theory]
    [InlineData("http/protobuf")]
    [InlineData("grpc")]
    public async Task Endpoint_Set_OurSeriesArriveAtTheReceiver(string protocol)
    {
        await using var receiver = await OtlpReceiver.StartAsync(grpc: protocol == "grpc");
        // The standard variables, in the environment of the real server process, as an operator sets them.
        using var server = await ChildServer.StartAsync(new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol,
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "200",
        });
        await using (var client = await server.ConnectAsync("time"))
        {
            await client.ReadToEndAsync();
        }

        // Protobuf keeps names as plain UTF-8: our instruments, and the listener's label value, appear in an export.
        await TestServer.WaitUntilAsync(() => Task.FromResult(receiver.Exports.Any(e =>
            e.Contains("kestreltcp.connections.accepted", StringComparison.Ordinal)
            && e.Contains("kestreltcp.connection.duration", StringComparison.Ordinal)
            && e.Contains("time", StringComparison.Ordinal))), because: "an OTLP export with our series");
        Assert.Equal(protocol == "grpc" ? "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" : "/v1/metrics", receiver.Paths.First());
        Assert.Contains(LoadedFiles(server.Pid), f => f.EndsWith("OpenTelemetry.Exporter.OpenTelemetryProtocol.dll", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Endpoint_Unset_NoOtlpExporterLoaded()
    {
        using var without = await ChildServer.StartAsync();
        Assert.DoesNotContain(LoadedFiles(without.Pid), f => f.EndsWith("OpenTelemetry.Exporter.OpenTelemetryProtocol.dll", StringComparison.Ordinal));
        Assert.Contains(LoadedFiles(without.Pid), f => f.EndsWith("OpenTelemetry.Exporter.Prometheus.AspNetCore.dll", StringComparison.Ordinal));
    }

    // The files a process has mapped: every managed assembly it loaded.
    private static IEnumerable<string> LoadedFiles(int pid) =>
        File.ReadLines($"/proc/{pid}/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(p => p.Length >= 6).Select(p => p[5]).Distinct();

    /// <summary>A collector stand-in: accepts OTLP metric exports (HTTP, or gRPC over cleartext HTTP/2) and keeps their bodies.</summary>
    internal sealed class OtlpReceiver : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private OtlpReceiver(WebApplication app) => _app = app;

        public ConcurrentQueue<string> Exports { get; } = new();

        public ConcurrentQueue<string> Paths { get; } = new();

        public string Endpoint { get; private set; } = "";

        public static async Task<OtlpReceiver> StartAsync(bool grpc)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = grpc ? HttpProtocols.Http2 : HttpProtocols.Http1));
            var app = builder.Build();
            var receiver = new OtlpReceiver(app);
            app.Run(async context =>
            {
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body);
                receiver.Paths.Enqueue(context.Request.Path);
                receiver.Exports.Enqueue(Encoding.UTF8.GetString(body.ToArray()));
                if (grpc)
                {
                    // An empty ExportMetricsServiceResponse in one gRPC message frame, then status OK.
                    context.Response.ContentType = "application/grpc";
                    await context.Response.Body.WriteAsync(new byte[5]);
                    context.Response.AppendTrailer("grpc-status", "0");
                }
                else
                {
                    context.Response.ContentType = "application/x-protobuf";
                }
            });
            await app.StartAsync();
            var address = app.Urls.Single();
            receiver.Endpoint = address;
            return receiver;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}

using System.Security.Cryptography;
using System.Text.Json;
using KestrelTcp.Hosting;
using KestrelTcp.Transport;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Dashboard;

/// <summary>
/// The dashboard on the management port: <c>GET /</c> (the page), <c>/dashboard.css</c>,
/// <c>/dashboard.js</c> and <c>/favicon.svg</c> (embedded in the assembly: nothing is loaded from
/// elsewhere), and <c>GET /dashboard/data</c>, the JSON the page polls every second. Every answer
/// carries <see cref="ContentSecurityPolicy"/>.
/// </summary>
internal static class DashboardEndpoints
{
    public const string DataPath = "/dashboard/data";

    /// <summary>
    /// Scripts, styles, fetches and images from the server itself only; no inline code at all (the
    /// page has none), no eval, no plugins, no framing, no form posts, no base rewriting.
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly Asset Page = Asset.Load("index.html", "text/html; charset=utf-8");
    private static readonly Asset Script = Asset.Load("dashboard.js", "text/javascript; charset=utf-8");
    private static readonly Asset Style = Asset.Load("dashboard.css", "text/css; charset=utf-8");
    private static readonly Asset Icon = Asset.Load("favicon.svg", "image/svg+xml");

    /// <summary>The dashboard's own requests after the page: its assets and its once-a-second poll, routine like a probe.</summary>
    public static bool IsRoutine(PathString path) =>
        path.StartsWithSegments("/dashboard") || path == "/dashboard.js" || path == "/dashboard.css" || path == "/favicon.svg";

    /// <summary>
    /// Maps the page, its assets and its data, and ties the history's sampler to the host's life:
    /// started once the host has started (every listener bound), stopped once it has stopped (after the drain).
    /// </summary>
    public static IEndpointRouteBuilder MapKestrelTcpDashboard(this IEndpointRouteBuilder endpoints)
    {
        // Created when the host has started, not here: mapping must not read the configuration (it may be
        // mapped only to list its routes), and the history begins when the listeners are bound.
        var services = endpoints.ServiceProvider;
        var dashboard = new Lazy<DashboardData>(() =>
        {
            var runtime = services.GetRequiredService<KestrelTcpRuntime>();
            var time = services.GetRequiredService<TimeProvider>();
            return new DashboardData(runtime, new DashboardSampler(runtime, time), time,
                services.GetRequiredService<TcpTransportFactory>(), services.GetRequiredService<IOptions<SocketTransportOptions>>());
        });
        var lifetime = services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.ApplicationStarted.Register(() => dashboard.Value.Sampler.Start());
        lifetime.ApplicationStopped.Register(() =>
        {
            if (dashboard.IsValueCreated)
            {
                dashboard.Value.Sampler.Dispose();
            }
        });

        endpoints.MapGet("/", Page.WriteAsync);
        endpoints.MapGet("/dashboard.js", Script.WriteAsync);
        endpoints.MapGet("/dashboard.css", Style.WriteAsync);
        endpoints.MapGet("/favicon.svg", Icon.WriteAsync);
        // A method group, not a lambda: the Request Delegate Generator of an AOT publish runs without the JSON
        // source generator's output, so there a lambda naming DashboardJsonContext.Default does not bind to the
        // RequestDelegate overload, and the interceptor it generates for MapGet(Delegate) fails to compile (CS9144).
        endpoints.MapGet(DataPath, WriteDataAsync);
        return endpoints;

        Task WriteDataAsync(HttpContext context)
        {
            SetSecurityHeaders(context.Response);
            context.Response.Headers.CacheControl = "no-store";
            context.Response.ContentType = "application/json; charset=utf-8";
            return JsonSerializer.SerializeAsync(context.Response.Body, dashboard.Value.Build(), DashboardJsonContext.Default.DashboardView, context.RequestAborted);
        }
    }

    private static void SetSecurityHeaders(HttpResponse response)
    {
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers["Referrer-Policy"] = "no-referrer";
    }

    /// <summary>An embedded file (<c>Dashboard/Assets/</c>), read once, answered with an ETag so that a reload costs a 304.</summary>
    private sealed class Asset(string contentType, byte[] content)
    {
        private readonly string _etag = $"\"{Convert.ToHexStringLower(SHA256.HashData(content))[..16]}\"";

        public static Asset Load(string name, string contentType)
        {
            using var stream = typeof(DashboardEndpoints).Assembly.GetManifestResourceStream($"KestrelTcp.Dashboard.{name}")
                ?? throw new InvalidOperationException($"The dashboard asset {name} is not embedded in the assembly.");
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return new Asset(contentType, copy.ToArray());
        }

        public Task WriteAsync(HttpContext context)
        {
            var response = context.Response;
            SetSecurityHeaders(response);
            response.Headers.CacheControl = "no-cache";
            response.Headers.ETag = _etag;
            if (context.Request.Headers.IfNoneMatch == _etag)
            {
                response.StatusCode = StatusCodes.Status304NotModified;
                return Task.CompletedTask;
            }

            response.ContentType = contentType;
            response.ContentLength = content.Length;
            return response.Body.WriteAsync(content, context.RequestAborted).AsTask();
        }
    }
}

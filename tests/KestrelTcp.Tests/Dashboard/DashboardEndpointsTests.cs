using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using KestrelTcp.Dashboard;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace KestrelTcp.Tests.Dashboard;

/// <summary>The dashboard's responses: types, the Content-Security-Policy, and nothing from another origin.</summary>
public partial class DashboardEndpointsTests
{
    public static TheoryData<string, string> Responses => new()
    {
        { "/", "text/html; charset=utf-8" },
        { "/dashboard.js", "text/javascript; charset=utf-8" },
        { "/dashboard.css", "text/css; charset=utf-8" },
        { "/favicon.svg", "image/svg+xml" },
        { DashboardEndpoints.DataPath, "application/json; charset=utf-8" },
    };

    [Theory]
    [MemberData(nameof(Responses))]
    public async Task Get_EveryDashboardResponse_CarriesTheContentSecurityPolicy(string path, string contentType)
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        using var response = await server.Http.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(contentType, response.Content.Headers.ContentType!.ToString());
        var policy = Assert.Single(response.Headers.GetValues("Content-Security-Policy"));
        Assert.Equal(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            policy);
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.NotEmpty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public void ContentSecurityPolicy_SelfOnly_NoEvalNoInline()
    {
        var directives = DashboardEndpoints.ContentSecurityPolicy.Split(';', StringSplitOptions.TrimEntries)
            .ToDictionary(d => d.Split(' ')[0], d => d.Split(' ')[1..]);

        Assert.Equal(["'none'"], directives["default-src"]);
        Assert.Equal(["'self'"], directives["script-src"]);
        Assert.Equal(["'self'"], directives["style-src"]);
        Assert.Equal(["'self'"], directives["connect-src"]);
        Assert.DoesNotContain("unsafe", DashboardEndpoints.ContentSecurityPolicy, StringComparison.Ordinal);
        Assert.DoesNotContain("http", DashboardEndpoints.ContentSecurityPolicy, StringComparison.Ordinal);
        Assert.DoesNotContain("*", DashboardEndpoints.ContentSecurityPolicy, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Assets_AsServed_ReferenceNoOtherOriginAndHaveNoInlineCode()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        var html = await server.Http.GetStringAsync("/");
        var script = await server.Http.GetStringAsync("/dashboard.js");
        var style = await server.Http.GetStringAsync("/dashboard.css");
        var icon = await server.Http.GetStringAsync("/favicon.svg");

        foreach (var (name, text) in new[] { ("/", html), ("/dashboard.js", script), ("/dashboard.css", style), ("/favicon.svg", icon) })
        {
            // The one absolute URL allowed is the SVG namespace, a name that is never fetched.
            var urls = AbsoluteUrl().Matches(text).Select(m => m.Value).Where(u => u != "http://www.w3.org/2000/svg");
            Assert.True(!urls.Any(), $"{name} names another origin: {string.Join(", ", urls)}");
            Assert.DoesNotMatch(ProtocolRelative(), text);
            Assert.DoesNotContain("@import", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("url(", text, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Contains("xmlns=\"http://www.w3.org/2000/svg\"", icon, StringComparison.Ordinal);

        // Local references only, each one served.
        var references = LocalReference().Matches(html).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(["/favicon.svg", "/dashboard.css", "/dashboard.js", "/metrics", "/connections", "/health", "/dashboard/data", "/connections", "/metrics"], references);
        foreach (var reference in references.Distinct())
        {
            using var response = await server.Http.GetAsync(reference);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // No inline code: every script has a src and no body, no style element or attribute, no event-handler attribute.
        Assert.Equal(["<script src=\"/dashboard.js\" defer></script>"], Regex.Matches(html, "<script[^>]*>[^<]*</script>").Select(m => m.Value));
        Assert.Equal(1, Regex.Count(html, "<script", RegexOptions.IgnoreCase));
        Assert.DoesNotContain("<style", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotMatch(InlineAttribute(), html);
        Assert.DoesNotContain("javascript:", html, StringComparison.OrdinalIgnoreCase);

        // And nothing in the script the policy would refuse.
        Assert.DoesNotMatch(EvalLike(), script);
        Assert.DoesNotContain("innerHTML", script, StringComparison.Ordinal);
        Assert.DoesNotContain("setAttribute('style'", script, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_Asset_ReloadWithItsETagAnswers304()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        using var first = await server.Http.GetAsync("/dashboard.js");
        var etag = first.Headers.ETag!;
        Assert.Equal("no-cache", first.Headers.CacheControl!.ToString());

        using var request = new HttpRequestMessage(HttpMethod.Get, "/dashboard.js");
        request.Headers.IfNoneMatch.Add(etag);
        using var second = await server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);
        Assert.Empty(await second.Content.ReadAsByteArrayAsync());

        using var data = await server.Http.GetAsync(DashboardEndpoints.DataPath);
        Assert.Equal("no-store", data.Headers.CacheControl!.ToString());
    }

    [Fact]
    public async Task Get_Page_LoggedButItsPollsOnlyAtDebug()
    {
        var logs = new LogCapture();
        await using var server = await TestServer.StartAsync([TestServer.Listener("echo", "Echo"), TestServer.VerboseLogs],
            services => services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(logs));
        foreach (var path in (string[])["/", "/dashboard.js", "/dashboard.css", "/favicon.svg", DashboardEndpoints.DataPath])
        {
            (await server.Http.GetAsync(path)).Dispose();
        }

        await TestServer.WaitUntilAsync(() => Task.FromResult(RequestLogs(logs).Count() == 5), because: "five requests logged");
        var levels = RequestLogs(logs).ToDictionary(e => (string)e["RequestPath"]!, e => e.Level);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Information, levels["/"]);
        Assert.All(levels.Where(l => l.Key != "/"), l => Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, l.Value));
    }

    private static IEnumerable<CapturedLog> RequestLogs(LogCapture logs) =>
        logs.Events.Where(e => e.Category == "Serilog.AspNetCore.RequestLoggingMiddleware");

    [GeneratedRegex(@"https?://[^\s""'()<>]+", RegexOptions.IgnoreCase)]
    private static partial Regex AbsoluteUrl();

    [GeneratedRegex(@"(src|href|action)\s*=\s*[""']?//", RegexOptions.IgnoreCase)]
    private static partial Regex ProtocolRelative();

    [GeneratedRegex(@"(?:src|href)=""([^""]+)""")]
    private static partial Regex LocalReference();

    [GeneratedRegex(@"\s(on[a-z]+|style)\s*=", RegexOptions.IgnoreCase)]
    private static partial Regex InlineAttribute();

    [GeneratedRegex(@"\beval\s*\(|new\s+Function\s*\(|set(Timeout|Interval)\s*\(\s*['""`]")]
    private static partial Regex EvalLike();
}

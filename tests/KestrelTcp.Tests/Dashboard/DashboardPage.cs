using System.Collections.Concurrent;
using System.Globalization;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Playwright;

namespace KestrelTcp.Tests.Dashboard;

/// <summary>
/// The dashboard open in a browser tab: what it loaded, what the browser refused, and lookups of
/// the rendered figures (each figure carries its exact value in <c>data-value</c>).
/// </summary>
public sealed class DashboardPage : IAsyncDisposable
{
    /// <summary>Run before the page's own script: keeps every refusal of the Content-Security-Policy.</summary>
    internal const string ViolationRecorder =
        "window.__violations = []; document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));";

    private readonly IBrowserContext _context;
    private readonly ConcurrentQueue<string> _requests = new();
    private readonly ConcurrentQueue<string> _console = new();

    internal DashboardPage(IBrowserContext context, IPage page, Uri origin)
    {
        _context = context;
        Page = page;
        Origin = origin;
        page.Request += (_, request) => _requests.Enqueue(request.Url);
        page.Console += (_, message) => _console.Enqueue($"{message.Type}: {message.Text}");
        page.PageError += (_, error) => _console.Enqueue($"pageerror: {error}");
    }

    public IPage Page { get; }

    public Uri Origin { get; }

    /// <summary>The answer to the page's own GET /.</summary>
    public IResponse? Response { get; internal set; }

    /// <summary>Every URL the page requested, itself included.</summary>
    public IReadOnlyCollection<string> Requests => _requests;

    /// <summary>Console messages and uncaught errors.</summary>
    public IReadOnlyCollection<string> Console => _console;

    public ILocator Panels => Page.Locator("article.listener");

    public ILocator Panel(string listener) => Page.Locator($"article.listener[data-listener=\"{listener}\"]");

    public ILocator Figure(string listener, string field) => Panel(listener).Locator($"[data-field=\"{field}\"]");

    public ILocator Reason(string listener, string kind, string reason) =>
        Panel(listener).Locator($"[data-reasons=\"{kind}\"] li[data-reason=\"{reason}\"]");

    public ILocator Rows => Page.Locator("#connections tbody tr");

    public static async Task<double> ValueAsync(ILocator figure) =>
        double.Parse(await figure.GetAttributeAsync("data-value") ?? throw new InvalidOperationException("no data-value"), CultureInfo.InvariantCulture);

    /// <summary>What the browser refused under the page's Content-Security-Policy so far.</summary>
    public Task<string[]> ViolationsAsync() => Page.EvaluateAsync<string[]>("() => window.__violations");

    /// <summary>How many times the page has drawn fresh figures.</summary>
    public async Task<int> RefreshesAsync() =>
        int.TryParse(await Page.Locator("body").GetAttributeAsync("data-refreshes"), out var count) ? count : 0;

    /// <summary>Waits for <paramref name="count"/> more refreshes than now: figures read after it are at least that fresh.</summary>
    public async Task WaitForRefreshesAsync(int count = 1)
    {
        var target = await RefreshesAsync() + count;
        await TestServer.WaitUntilAsync(async () => await RefreshesAsync() >= target, TimeSpan.FromSeconds(15), $"{count} refresh(es) of the page");
    }

    /// <summary>The data-value of every cell of one column of the connections table, top to bottom.</summary>
    public async Task<IReadOnlyList<string>> ColumnAsync(int index) =>
        await Page.Locator($"#connections tbody tr td:nth-child({index + 1})").EvaluateAllAsync<string[]>("cells => cells.map(c => c.dataset.value)");

    /// <summary>Saves a screenshot of the whole page under the test output's artifacts; returns its path.</summary>
    public async Task<string> ScreenshotAsync(string name)
    {
        var path = Path.Combine(Chromium.ArtifactsDirectory, name);
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    public async ValueTask DisposeAsync() => await _context.CloseAsync();
}

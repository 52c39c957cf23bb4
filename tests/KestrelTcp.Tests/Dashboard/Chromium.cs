using KestrelTcp.Tests.Infrastructure;
using Microsoft.Playwright;

namespace KestrelTcp.Tests.Dashboard;

/// <summary>
/// One headless Chromium for a test class, driven by Playwright. Browsers cannot be downloaded
/// here, so Playwright drives Debian's <c>chromium</c> package (test.sh installs it when missing)
/// through <c>ExecutablePath</c>; a missing browser fails the tests, it never skips them.
/// </summary>
public sealed class Chromium : IAsyncLifetime
{
    /// <summary>Where Debian's package puts it; <c>KESTRELTCP_CHROMIUM</c> points elsewhere.</summary>
    public static string ExecutablePath =>
        Environment.GetEnvironmentVariable("KESTRELTCP_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    /// <summary>Where the tests leave their screenshots: <c>artifacts/dashboard</c> in the test output folder.</summary>
    public static string ArtifactsDirectory { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts", "dashboard")).FullName;

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException(
                $"No Chromium at {ExecutablePath}: run ./test.sh, which installs Debian's chromium package, or apt-get install chromium.");
        }

        Assertions.SetDefaultExpectTimeout(15_000);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Timeout = 60_000,
            // Root in a container has no user namespace for Chromium's sandbox; /dev/shm is small there.
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
    }

    /// <summary>A fresh browser context (no cache, no storage) with the dashboard of <paramref name="server"/> open in it.</summary>
    public async Task<DashboardPage> OpenAsync(TestServer server, int width = 1280, int height = 800, ColorScheme colorScheme = ColorScheme.Light)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height },
            ColorScheme = colorScheme,
            BaseURL = server.Http.BaseAddress!.ToString(),
        });
        context.SetDefaultTimeout(15_000);
        await context.AddInitScriptAsync(DashboardPage.ViolationRecorder);
        var page = await context.NewPageAsync();
        var dashboard = new DashboardPage(context, page, server.Http.BaseAddress!);
        dashboard.Response = await page.GotoAsync("/");
        return dashboard;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }

        _playwright?.Dispose();
    }
}

using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using KestrelTcp.Dashboard;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace KestrelTcp.Tests.Dashboard;

/// <summary>
/// The dashboard in a real headless Chromium against the real server: what a person sees, read
/// from the rendered page (never from the page's data directly), while real connections come and go.
/// </summary>
public class DashboardBrowserTests(Chromium chromium) : IClassFixture<Chromium>
{
    [Fact]
    public async Task Page_ConnectionsComeAndGo_EachListenerShownAndItsCountsMove()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"), TestServer.Listener("time", "Time"));
        await using var page = await chromium.OpenAsync(server);

        await Expect(page.Panels).ToHaveCountAsync(2);
        foreach (var (name, handler) in new[] { ("echo", "Echo"), ("time", "Time") })
        {
            var panel = page.Panel(name);
            await Expect(panel.Locator(".name")).ToHaveTextAsync(name);
            await Expect(panel.Locator(".handler")).ToHaveTextAsync(handler);
            await Expect(panel.Locator(".endpoint")).ToHaveTextAsync($"tcp://127.0.0.1:{server.Port(name)}");
            await Expect(panel.Locator(".state")).ToHaveTextAsync("listening");
            await Expect(panel.Locator(".state")).ToHaveAttributeAsync("data-state", "listening");
            await Expect(page.Figure(name, "open")).ToHaveAttributeAsync("data-value", "0");
            await Expect(page.Figure(name, "limit")).ToHaveTextAsync("10k");
            await Expect(page.Figure(name, "limit")).ToHaveAttributeAsync("data-value", "10000");
        }

        var facts = page.Page.Locator(".facts");
        await Expect(page.Page.Locator("#server-state")).ToHaveTextAsync("ready");
        await Expect(page.Page.Locator("#server-machine")).ToHaveTextAsync(Environment.MachineName);
        await Expect(page.Page.Locator("#server-version")).ToHaveAttributeAsync("data-value",
            typeof(DashboardEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion);
        await Expect(page.Page.Locator("#server-transport")).ToHaveTextAsync(new Regex("^KestrelTcp"));
        await Expect(page.Page.Locator("#server-memory")).ToHaveTextAsync(new Regex(@"^\d+(\.\d)? [kMG]B \(managed \d+(\.\d)? [kMG]B\)$"));
        await Expect(page.Page.Locator("#server-uptime")).ToHaveTextAsync(new Regex(@"^\d+s$"));
        await Expect(page.Page.Locator("#server-http")).ToHaveTextAsync($"http://127.0.0.1:{server.Runtime.HttpPort}");
        await Expect(page.Page.Locator("#live")).ToHaveAttributeAsync("data-live", "live");
        await Expect(page.Page.Locator("#connections-empty")).ToBeVisibleAsync();

        var clients = new List<TcpTestClient>();
        for (var i = 1; i <= 3; i++)
        {
            var client = await server.ConnectAsync("echo");
            await client.SendAsync(new byte[1000 * i]);
            await client.ReadExactlyAsync(1000 * i);
            clients.Add(client);
        }

        for (var i = 0; i < 3; i++)
        {
            await using var time = await server.ConnectAsync("time");
            await time.ReadToEndAsync();
        }

        await Expect(page.Figure("echo", "open")).ToHaveAttributeAsync("data-value", "3");
        await Expect(page.Figure("echo", "open")).ToHaveTextAsync("3");
        await Expect(page.Figure("echo", "peak")).ToHaveAttributeAsync("data-value", "3");
        await Expect(page.Figure("echo", "accepted")).ToHaveAttributeAsync("data-value", "3");
        await Expect(page.Figure("echo", "bytesIn")).ToHaveAttributeAsync("data-value", "6000");
        await Expect(page.Figure("echo", "bytesIn")).ToHaveTextAsync("6.0 kB");
        await Expect(page.Figure("echo", "bytesOut")).ToHaveTextAsync("6.0 kB");
        await Expect(page.Figure("time", "accepted")).ToHaveAttributeAsync("data-value", "3");
        await Expect(page.Reason("time", "closed", "server")).ToHaveAttributeAsync("data-value", "3");
        await Expect(page.Reason("time", "closed", "server")).ToHaveTextAsync("server 3");
        await Expect(page.Rows).ToHaveCountAsync(3);
        await Expect(page.Page.Locator("#connections-empty")).ToBeHiddenAsync();
        await Expect(page.Page.Locator("#connections-count")).ToHaveTextAsync("(3)");

        await clients[0].DisposeAsync();
        await Expect(page.Figure("echo", "open")).ToHaveAttributeAsync("data-value", "2");
        await Expect(page.Figure("echo", "peak")).ToHaveAttributeAsync("data-value", "3");
        await Expect(page.Reason("echo", "closed", "client")).ToHaveAttributeAsync("data-value", "1");
        await Expect(page.Figure("echo", "closed")).ToHaveAttributeAsync("data-value", "1");
        await Expect(page.Rows).ToHaveCountAsync(2);

        // At a quiet moment, every figure on the page is the one /metrics gives.
        await page.WaitForRefreshesAsync(2);
        var metrics = await MetricsSnapshot.ScrapeAsync(server);
        foreach (var (name, handler) in new[] { ("echo", "Echo"), ("time", "Time") })
        {
            Assert.Equal(metrics.Active(name, handler), await DashboardPage.ValueAsync(page.Figure(name, "open")));
            Assert.Equal(metrics.Accepted(name, handler), await DashboardPage.ValueAsync(page.Figure(name, "accepted")));
            Assert.Equal(metrics.BytesReceived(name), await DashboardPage.ValueAsync(page.Figure(name, "bytesIn")));
            Assert.Equal(metrics.BytesSent(name), await DashboardPage.ValueAsync(page.Figure(name, "bytesOut")));
            Assert.Equal(metrics.ClosedTotal(name), await DashboardPage.ValueAsync(page.Figure(name, "closed")));
            Assert.Equal(metrics.Sum("kestreltcp_connections_rejected_total", name), await DashboardPage.ValueAsync(page.Figure(name, "rejected")));
            foreach (var reason in DashboardFigures.CloseReasons)
            {
                var chip = page.Reason(name, "closed", reason);
                Assert.Equal(metrics.Closed(name, reason), await chip.CountAsync() == 0 ? 0 : await DashboardPage.ValueAsync(chip));
            }
        }

        foreach (var client in clients.Skip(1))
        {
            await client.DisposeAsync();
        }

        await Expect(page.Figure("echo", "open")).ToHaveAttributeAsync("data-value", "0");
        await Expect(page.Rows).ToHaveCountAsync(0);
        Assert.Empty(await page.ViolationsAsync());
    }

    [Fact]
    public async Task Page_WhenItOpens_ChartsAlreadyHoldFiveMinutesKeptByTheServer()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:00")));
        await using (var client = await server.ConnectAsync("echo"))
        {
            // A sawtooth of 100 to 3050 bytes a second, five minutes long, before any page is open.
            for (var second = 0; second < DashboardSampler.Capacity; second++)
            {
                var size = 100 + (second % 60 * 50);
                await client.SendAsync(new byte[size]);
                await client.ReadExactlyAsync(size);
                clock.Advance(DashboardSampler.Interval);
            }

            await using var page = await chromium.OpenAsync(server);
            var panel = page.Panel("echo");
            var open = panel.Locator("polyline.line.open");
            var bytesIn = panel.Locator("polyline.line.in");
            var bytesOut = panel.Locator("polyline.line.out");
            await Expect(open).ToHaveAttributeAsync("data-points", "300");
            await Expect(bytesIn).ToHaveAttributeAsync("data-points", "300");
            await Expect(bytesOut).ToHaveAttributeAsync("data-points", "300");

            // Right-aligned on the full width, one point a second; one connection open all along: a flat line at the top.
            var openPoints = await PointsAsync(open);
            Assert.Equal(300, openPoints.Length);
            Assert.Equal(0, openPoints[0].X);
            Assert.Equal(300, openPoints[^1].X);
            Assert.All(openPoints, p => Assert.Equal(1, p.Y));
            await Expect(panel.Locator("[data-chart=open] .max")).ToHaveTextAsync("max 1");

            // The sawtooth is drawn: its peaks reach the top of a 5 kB/s scale, its troughs near the bottom.
            var inPoints = await PointsAsync(bytesIn);
            Assert.InRange(inPoints.Select(p => p.Y).Distinct().Count(), 50, 300);
            Assert.Equal(Math.Round(60 - 1 - (3050.0 / 5000 * 58), 1), inPoints.Min(p => p.Y));
            Assert.Equal(Math.Round(60 - 1 - (100.0 / 5000 * 58), 1), inPoints.Max(p => p.Y));
            await Expect(panel.Locator("[data-chart=bytes] .max")).ToHaveTextAsync("max 5.0 kB/s");
            await Expect(panel.Locator("[data-chart=bytes] .max")).ToHaveAttributeAsync("data-value", "5000");
            Assert.Equal(inPoints, await PointsAsync(bytesOut));

            // One more second on the server's clock: the chart moves along by one point.
            await client.SendAsync(new byte[4000]);
            await client.ReadExactlyAsync(4000);
            clock.Advance(DashboardSampler.Interval);
            await Expect(page.Figure("echo", "bytesInRate")).ToHaveTextAsync("4.0 kB/s");
            await Expect(page.Figure("echo", "bytesOutRate")).ToHaveAttributeAsync("data-value", "4000");
            Assert.Equal(Math.Round(60 - 1 - (4000.0 / 5000 * 58), 1), (await PointsAsync(bytesIn))[^1].Y);
            await Expect(bytesIn).ToHaveAttributeAsync("data-points", "300");
        }
    }

    [Fact]
    public async Task Page_ConnectionsTable_SortsByEachColumnBothWays()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, TestServer.Listener("echo", "Echo"), TestServer.Listener("greeting", "Greeting"));
        var clients = new List<TcpTestClient>();
        async Task Echo(int size)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            var client = await server.ConnectAsync("echo");
            await client.SendAsync(new byte[size]);
            await client.ReadExactlyAsync(size);
            clients.Add(client);
        }

        async Task Greet(string? line)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            var client = await server.ConnectAsync("greeting");
            await client.ReadLineAsync();
            if (line is not null)
            {
                await client.SendAsync(line + "\n");
                await client.ReadLineAsync();
            }

            clients.Add(client);
        }

        await Echo(500);
        await Greet(null);
        await Echo(20);
        await Greet("Ada");
        await Echo(7000);
        await server.OpenConnectionsAsync("echo", 3);
        await server.OpenConnectionsAsync("greeting", 2);
        clock.Advance(TimeSpan.FromSeconds(0.5));

        await using var page = await chromium.OpenAsync(server);
        await Expect(page.Rows).ToHaveCountAsync(5);
        var headers = page.Page.Locator("#connections thead th");
        await Expect(headers).ToHaveTextAsync(["id", "listener", "client", "connected for", "bytes in", "bytes out"]);
        Assert.Equal(["0.5", "2.5", "4.5", "1.5", "3.5"], await page.ColumnAsync(3)); // the server's order: per listener, newest first
        await Expect(page.Rows.Nth(0).Locator("td").Nth(4)).ToHaveTextAsync("7.0 kB");
        await Expect(page.Rows.Nth(0).Locator("td").Nth(3)).ToHaveTextAsync("0s");

        for (var column = 0; column < 6; column++)
        {
            var header = headers.Nth(column);
            var numeric = column >= 3;
            // The first click sorts numbers largest first and text A to Z; the second turns it round.
            foreach (var descending in numeric ? new[] { true, false } : [false, true])
            {
                await header.Locator("button").ClickAsync();
                await Expect(header).ToHaveAttributeAsync("aria-sort", descending ? "descending" : "ascending");
                await Expect(page.Page.Locator("#connections thead th:is([aria-sort=ascending], [aria-sort=descending])")).ToHaveCountAsync(1);
                var values = await page.ColumnAsync(column);
                Assert.Equal(5, values.Count);
                var expected = numeric
                    ? (descending ? values.OrderByDescending(Number) : values.OrderBy(Number)).ToList()
                    : (descending ? values.OrderDescending(StringComparer.Ordinal) : values.Order(StringComparer.Ordinal)).ToList();
                Assert.Equal(expected, values);

                // The order holds across the page's refreshes.
                await page.WaitForRefreshesAsync();
                Assert.Equal(values, await page.ColumnAsync(column));
            }
        }

        Assert.Equal(["7000", "500", "20", "4", "0"], await SortedAsync(page, headers.Nth(4), "descending", 4));
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Page_DuringTheDrain_EveryListenerDrainingWhileThePageStillRefreshes()
    {
        await using var server = await TestServer.StartAsync(
            [TestServer.Listener("hold", HoldHandler.Name), TestServer.Listener("echo", "Echo"), new() { ["KestrelTcp:Shutdown:DrainTimeout"] = "00:01:00" }],
            services => services.AddKestrelTcpHandler<HoldHandler>(HoldHandler.Name));
        var client = await server.ConnectAsync("hold");
        await server.OpenConnectionsAsync("hold");
        await using var page = await chromium.OpenAsync(server);
        await Expect(page.Figure("hold", "open")).ToHaveAttributeAsync("data-value", "1");

        var stopped = server.RequestStop();
        foreach (var name in (string[])["hold", "echo"])
        {
            await Expect(page.Panel(name).Locator(".state")).ToHaveTextAsync("draining");
            await Expect(page.Panel(name).Locator(".state")).ToHaveAttributeAsync("data-state", "draining");
            await Expect(page.Panel(name)).ToHaveAttributeAsync("data-state", "draining");
        }

        await Expect(page.Page.Locator("#server-state")).ToHaveTextAsync("shutting down");
        await page.WaitForRefreshesAsync(2);
        await Expect(page.Page.Locator("#live")).ToHaveAttributeAsync("data-live", "live");
        await Expect(page.Figure("hold", "open")).ToHaveAttributeAsync("data-value", "1");
        await page.ScreenshotAsync("dashboard-draining.png");
        Assert.False(stopped.IsCompleted);

        // The held client leaves: the drain ends, the server stops, and the page says it has lost it.
        await client.DisposeAsync();
        await stopped.WaitAsync(TimeSpan.FromSeconds(30));
        await Expect(page.Page.Locator("#live")).ToHaveAttributeAsync("data-live", "offline");
        await Expect(page.Panel("hold").Locator(".state")).ToHaveTextAsync("draining");
    }

    [Fact]
    public async Task Page_LightDarkAndNarrow_ReadableEverywhereAndScreenshotSaved()
    {
        var clock = new TestClock();
        await using var server = await TestServer.StartAsync(clock, DashboardTraffic.Listeners);
        await using var traffic = await DashboardTraffic.PlayAsync(server, clock);

        await using (var light = await chromium.OpenAsync(server))
        {
            await Expect(light.Panels).ToHaveCountAsync(3);
            await Expect(light.Rows).ToHaveCountAsync(traffic.OpenEcho + traffic.OpenGreeting);
            await Expect(light.Panel("echo").Locator("polyline.line.open")).ToHaveAttributeAsync("data-points", "300");
            Assert.Equal("rgb(245, 246, 248)", await BackgroundAsync(light));
            await AssertFitsAsync(light, 1280);
            var path = await light.ScreenshotAsync("dashboard.png");
            Assert.True(new FileInfo(path).Length > 10_000, path);
            if (Environment.GetEnvironmentVariable("KESTRELTCP_DOCS_SCREENSHOT") is { Length: > 0 } docs)
            {
                await light.Page.ScreenshotAsync(new PageScreenshotOptions { Path = docs });
            }
        }

        await using (var dark = await chromium.OpenAsync(server, colorScheme: ColorScheme.Dark))
        {
            await Expect(dark.Panel("echo").Locator("polyline.line.open")).ToHaveAttributeAsync("data-points", "300");
            Assert.Equal("rgb(13, 17, 23)", await BackgroundAsync(dark));
            await dark.ScreenshotAsync("dashboard-dark.png");
        }

        await using (var narrow = await chromium.OpenAsync(server, width: 390, height: 844))
        {
            await Expect(narrow.Panels).ToHaveCountAsync(3);
            await Expect(narrow.Rows).ToHaveCountAsync(traffic.OpenEcho + traffic.OpenGreeting);
            await AssertFitsAsync(narrow, 390);
            // The table scrolls inside its own box rather than widening the page.
            await Expect(narrow.Page.Locator(".table-wrap")).ToHaveCSSAsync("overflow-x", "auto");
            await narrow.ScreenshotAsync("dashboard-narrow.png");
        }
    }

    [Fact]
    public async Task Page_Loaded_EverythingFromTheServerItselfAndThePolicyEnforced()
    {
        await using var server = await TestServer.StartAsync(TestServer.Listener("echo", "Echo"));
        await using var page = await chromium.OpenAsync(server);
        await page.WaitForRefreshesAsync(2);

        Assert.Equal(DashboardEndpoints.ContentSecurityPolicy, (await page.Response!.AllHeadersAsync())["content-security-policy"]);
        var origin = page.Origin.GetLeftPart(UriPartial.Authority);
        Assert.All(page.Requests, url => Assert.StartsWith(origin + "/", url, StringComparison.Ordinal));
        Assert.Contains(origin + "/dashboard.js", page.Requests);
        Assert.Contains(origin + "/dashboard.css", page.Requests);
        Assert.Contains(origin + DashboardEndpoints.DataPath, page.Requests);
        Assert.Empty(await page.ViolationsAsync());
        Assert.DoesNotContain(page.Console, m => m.StartsWith("error", StringComparison.Ordinal) || m.StartsWith("pageerror", StringComparison.Ordinal));

        // The style really came from /dashboard.css (the policy let it in) and inline code is really refused.
        await Expect(page.Page.Locator(".top")).ToHaveCSSAsync("display", "flex");
        Assert.True(await page.Page.EvaluateAsync<bool>(
            "() => { const s = document.createElement('script'); s.textContent = 'window.__inline = true'; document.head.append(s); return window.__inline === undefined; }"));
        await TestServer.WaitUntilAsync(async () => (await page.ViolationsAsync()).Length > 0, because: "the inline script refused");
        Assert.StartsWith("script-src", Assert.Single(await page.ViolationsAsync()), StringComparison.Ordinal);
    }

    private static double Number(string value) => double.Parse(value, CultureInfo.InvariantCulture);

    private static async Task<IReadOnlyList<string>> SortedAsync(DashboardPage page, ILocator header, string order, int column)
    {
        while (await header.GetAttributeAsync("aria-sort") != order)
        {
            await header.Locator("button").ClickAsync();
        }

        return await page.ColumnAsync(column);
    }

    private static async Task<(double X, double Y)[]> PointsAsync(ILocator polyline)
    {
        var points = await polyline.GetAttributeAsync("points") ?? "";
        return [.. points.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split(',')).Select(p => (Number(p[0]), Number(p[1])))];
    }

    private static Task<string> BackgroundAsync(DashboardPage page) =>
        page.Page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor");

    /// <summary>No horizontal scrolling of the page, and every listener's panel inside the window.</summary>
    private static async Task AssertFitsAsync(DashboardPage page, int width)
    {
        Assert.InRange(await page.Page.EvaluateAsync<int>("() => document.documentElement.scrollWidth"), 1, width);
        foreach (var panel in await page.Panels.AllAsync())
        {
            var box = await panel.BoundingBoxAsync();
            Assert.NotNull(box);
            Assert.InRange(box.X + box.Width, 1, width);
        }
    }
}

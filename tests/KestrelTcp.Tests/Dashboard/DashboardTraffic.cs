using KestrelTcp.Dashboard;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Dashboard;

/// <summary>
/// Five minutes of varied traffic played on a <see cref="TestClock"/> in a moment: echo clients that
/// come and go in a wave and stream more or less, a daytime query every few seconds, held greeting
/// sessions. For pages with full charts and a real-looking table (and the docs' screenshot).
/// </summary>
internal sealed class DashboardTraffic : IAsyncDisposable
{
    private readonly List<TcpTestClient> _echo = [];
    private readonly List<TcpTestClient> _greeting = [];

    public static Dictionary<string, string?>[] Listeners =>
    [
        TestServer.Listener("echo", "Echo", ("IdleTimeout", "00:00:00")),
        TestServer.Listener("time", "Time"),
        TestServer.Listener("greeting", "Greeting", ("IdleTimeout", "00:00:00")),
    ];

    public static async Task<DashboardTraffic> PlayAsync(TestServer server, TestClock clock, int seconds = DashboardSampler.Capacity)
    {
        var traffic = new DashboardTraffic();
        for (var second = 0; second < seconds; second++)
        {
            var wanted = (int)Math.Round(6 + (5 * Math.Sin(2 * Math.PI * second / 150)));
            while (traffic._echo.Count < wanted)
            {
                traffic._echo.Add(await server.ConnectAsync("echo"));
            }

            while (traffic._echo.Count > wanted)
            {
                await traffic._echo[0].DisposeAsync();
                traffic._echo.RemoveAt(0);
            }

            for (var i = 0; i < traffic._echo.Count; i++)
            {
                var size = 1200 * (1 + ((second + (7 * i)) % 23));
                await traffic._echo[i].SendAsync(new byte[size]);
                await traffic._echo[i].ReadExactlyAsync(size);
            }

            if (second % 3 == 0)
            {
                await using var time = await server.ConnectAsync("time");
                await time.ReadToEndAsync();
            }

            if (second % 40 == 0 && traffic._greeting.Count < 4)
            {
                var greeting = await server.ConnectAsync("greeting");
                await greeting.ReadLineAsync();
                traffic._greeting.Add(greeting);
            }

            if (second % 10 == 5)
            {
                foreach (var greeting in traffic._greeting)
                {
                    await greeting.SendAsync("Ada\n");
                    await greeting.ReadLineAsync();
                }
            }

            clock.Advance(DashboardSampler.Interval);
        }

        var echo = server.Runtime.Find("echo")!;
        await TestServer.WaitUntilAsync(() => Task.FromResult(echo.OpenCount == traffic._echo.Count && server.Runtime.Find("time")!.OpenCount == 0),
            because: "the traffic's closes recorded");
        return traffic;
    }

    public int OpenEcho => _echo.Count;

    public int OpenGreeting => _greeting.Count;

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _echo.Concat(_greeting))
        {
            await client.DisposeAsync();
        }
    }
}

using System.Text.Json;
using KestrelTcp.Dashboard;
using KestrelTcp.Tests.Infrastructure;

namespace KestrelTcp.Tests.Dashboard;

/// <summary>Reads /dashboard/data and compares its figures with a scrape of /metrics.</summary>
internal static class DashboardFigures
{
    public static readonly string[] RejectReasons =
        ["max_connections", "max_connections_per_client", "shutting_down", "access_denied", "rate_limited", "proxy_protocol", "tls_handshake"];

    public static readonly string[] CloseReasons = ["client", "server", "idle_timeout", "line_too_long", "shutdown", "error"];

    public static Task<JsonElement> DataAsync(this TestServer server) => server.JsonAsync(DashboardEndpoints.DataPath);

    public static JsonElement Listener(JsonElement data, string name) =>
        Assert.Single(data.GetProperty("listeners").EnumerateArray(), l => l.GetProperty("name").GetString() == name);

    public static long[] Longs(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetInt64())];

    public static double[] Doubles(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetDouble())];

    /// <summary>Every figure of <paramref name="listener"/> that /metrics also has, equal to its sample there.</summary>
    public static void AssertMatchesMetrics(JsonElement listener, MetricsSnapshot metrics)
    {
        var name = listener.GetProperty("name").GetString()!;
        var handler = listener.GetProperty("handler").GetString()!;
        Assert.Equal(metrics.Active(name, handler), listener.GetProperty("activeConnections").GetInt64());
        Assert.Equal(metrics.Accepted(name, handler), listener.GetProperty("acceptedTotal").GetInt64());
        Assert.Equal(metrics.BytesReceived(name), listener.GetProperty("bytesReceivedTotal").GetInt64());
        Assert.Equal(metrics.BytesSent(name), listener.GetProperty("bytesSentTotal").GetInt64());
        Assert.Equal(RejectReasons, listener.GetProperty("rejectedTotal").EnumerateObject().Select(p => p.Name));
        Assert.Equal(CloseReasons, listener.GetProperty("closedTotal").EnumerateObject().Select(p => p.Name));
        foreach (var reason in RejectReasons)
        {
            Assert.Equal(metrics.Rejected(name, reason), listener.GetProperty("rejectedTotal").GetProperty(reason).GetInt64());
        }

        foreach (var reason in CloseReasons)
        {
            Assert.Equal(metrics.Closed(name, reason), listener.GetProperty("closedTotal").GetProperty(reason).GetInt64());
        }
    }
}

using KestrelTcp.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KestrelTcp.Diagnostics;

/// <summary>Ready once every enabled listener is bound and accepting; not ready from the moment shutdown begins.</summary>
internal sealed class ReadinessHealthCheck(KestrelTcpRuntime runtime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (runtime.IsReady)
        {
            return Task.FromResult(HealthCheckResult.Healthy());
        }

        var waiting = runtime.Listeners.Where(l => l.State != ListenerState.Listening).Select(l => $"{l.Name}: {l.State}");
        return Task.FromResult(HealthCheckResult.Unhealthy($"Server {runtime.State}; {string.Join(", ", waiting)}"));
    }
}

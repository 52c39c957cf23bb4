using System.Diagnostics.Metrics;
using KestrelTcp.Configuration;
using KestrelTcp.Connections;
using KestrelTcp.Diagnostics;
using KestrelTcp.Handlers;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace KestrelTcp.Tests.Connections;

/// <summary>The tracking middleware alone, over in-memory pipes.</summary>
public class ConnectionTrackingMiddlewareTests
{
    [Fact]
    public async Task OnConnectionAsync_AdmittedJustAsTheDrainBegan_AskedToFinishAtOnce()
    {
        // The drain asks every connection in the open set to finish; one admitted by the limits just
        // before the listener turned to draining, and listed just after, must be asked all the same.
        var listener = new ListenerRuntime(new ListenerDefinition { Name = "echo", HandlerName = "Echo" }, new EchoHandler(TimeProvider.System), TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance)
        {
            State = ListenerState.Draining,
        };
        using var meters = new Meters();
        var metrics = new KestrelTcpMetrics(meters, new Lazy<KestrelTcpRuntime>(() => throw new InvalidOperationException("not scraped here")));
        var connection = new PipeConnection();
        connection.Context.Features.Set<IConnectionTransferFeature>(new CountingDuplexPipe(connection.Context.Transport, TimeProvider.System));
        var middleware = new ConnectionTrackingMiddleware(listener.Handler.OnConnectedAsync, listener, metrics, NullLogger.Instance, TimeProvider.System);

        // Echo, woken by the close request with nothing to read, drains for its quiet period and returns.
        await middleware.OnConnectionAsync(connection.Context).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(1, listener.Stats.Closed(CloseReason.Shutdown));
        Assert.Equal(0, listener.OpenCount);
    }

    private sealed class Meters : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options);
            _meters.Add(meter);
            return meter;
        }

        public void Dispose() => _meters.ForEach(m => m.Dispose());
    }
}

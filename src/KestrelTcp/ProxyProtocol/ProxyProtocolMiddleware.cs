using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Connections;

namespace KestrelTcp.ProxyProtocol;

/// <summary>
/// The first middleware of a listener with the PROXY protocol: only a trusted peer gets to send a
/// header, the header must arrive whole and valid within the timeout, and then it becomes the
/// connection's client. The bytes after the header stay in the pipe for what comes next (TLS, the
/// handler). A refusal ends the connection with nothing written and without reading further.
/// </summary>
internal sealed class ProxyProtocolMiddleware(ConnectionDelegate next, ProxyProtocolOptions options, TimeProvider time, ILogger logger, Action onRefused)
{
    public Task OnConnectionAsync(ConnectionContext connection)
    {
        if (options.Mode == ProxyProtocolMode.Off)
        {
            return next(connection);
        }

        var peer = connection.RemoteEndPoint;
        if (peer is not IPEndPoint address || !options.TrustedProxies.Contains(address.Address))
        {
            // Refused on arrival: an untrusted peer's bytes are never read.
            ProxyProtocolLog.PeerUntrusted(logger, peer);
            onRefused();
            return Task.CompletedTask;
        }

        return RunAsync(connection, peer);
    }

    private async Task RunAsync(ConnectionContext connection, EndPoint peer)
    {
        var header = await ReadHeaderAsync(connection.Transport.Input, peer);
        if (header is null)
        {
            onRefused();
            return;
        }

        var peerLocal = connection.LocalEndPoint;
        if (header.IsLocal)
        {
            ProxyProtocolLog.HeaderLocal(logger, header.Version, peer);
        }
        else
        {
            connection.RemoteEndPoint = header.Source;
            connection.LocalEndPoint = header.Destination;
            ProxyProtocolLog.HeaderAccepted(logger, header.Version, peer, header.Source, header.Destination);
        }

        connection.Features.Set<IProxyProtocolFeature>(new ProxyProtocolFeature(header, peer, peerLocal));
        await next(connection);
    }

    // The header, or null (logged) when the connection is to be refused.
    private async Task<ProxyHeader?> ReadHeaderAsync(System.IO.Pipelines.PipeReader input, EndPoint peer)
    {
        using var timeout = new CancellationTokenSource(options.HeaderTimeout, time);
        long received = 0;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(timeout.Token);
                var buffer = result.Buffer;
                received = buffer.Length;
                var consumed = buffer.Start;
                var examined = buffer.End;
                try
                {
                    var reader = new SequenceReader<byte>(buffer);
                    var status = ProxyProtocolParser.TryParse(ref reader, options.Mode, out var header, out var error);
                    if (status == ProxyParseStatus.Complete)
                    {
                        // Examined only up to the header: what follows is ready for the next reader at once.
                        consumed = examined = reader.Position;
                        return header;
                    }

                    if (status == ProxyParseStatus.Invalid)
                    {
                        ProxyProtocolLog.HeaderRefused(logger, peer, error);
                        return null;
                    }
                }
                finally
                {
                    input.AdvanceTo(consumed, examined);
                }

                if (result.IsCanceled)
                {
                    ProxyProtocolLog.HeaderReadCanceled(logger, peer);
                    return null;
                }

                if (result.IsCompleted)
                {
                    ProxyProtocolLog.HeaderIncomplete(logger, peer, received);
                    return null;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            ProxyProtocolLog.HeaderTimedOut(logger, peer, options.HeaderTimeout, received);
            return null;
        }
        catch (Exception ex) when (ex is ConnectionResetException or ConnectionAbortedException or IOException)
        {
            // The client or its proxy went away mid-header: ordinary network life.
            ProxyProtocolLog.HeaderReadFailed(logger, ex, peer);
            return null;
        }
    }
}

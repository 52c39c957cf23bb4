using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using KestrelTcp.Transport.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace KestrelTcp.Transport.Tests;

/// <summary>
/// Kestrel's own HTTP/1.1 server, a heavy user of the pipe contract (examined positions, cancelled
/// reads, flush backpressure, aborts), on an endpoint of KestrelTcp's transport, and on Kestrel's
/// own as the reference.
/// </summary>
public class Http1OverTransportTests
{
    public static TheoryData<TransportKind> Kinds => [TransportKind.Kestrel, TransportKind.KestrelTcp, TransportKind.KestrelTcpThreadPool];

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task PipelinedRequests_WrittenAtOnceOnOneConnection_AnsweredInOrder(TransportKind kind)
    {
        await using var server = await HttpServer.StartAsync(kind);
        await using var client = await TestClient.ConnectAsync(server.Host.EndPoint);
        var http = new RawHttpClient(client);

        const int Count = 50;
        await client.SendAsync(string.Concat(Enumerable.Range(0, Count).Select(i => RawHttpClient.Get($"/hello/{i}"))));

        for (var i = 0; i < Count; i++)
        {
            var response = await http.ReadResponseAsync();
            Assert.Equal(200, response.Status);
            Assert.Equal($"hello {i}", response.Text);
        }

        // And the connection is still good for one more, sent byte by byte.
        foreach (var b in Encoding.ASCII.GetBytes(RawHttpClient.Get("/hello/last")))
        {
            await client.SendAsync(new[] { b });
        }

        Assert.Equal("hello last", (await http.ReadResponseAsync()).Text);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task LargeBodies_SeveralMegabytesEachWay_ByteExact(TransportKind kind)
    {
        const int Size = 6 * 1024 * 1024;
        await using var server = await HttpServer.StartAsync(kind);
        using var http = server.CreateHttpClient();

        // Streamed back as it arrives, with a length, then chunked.
        using (var response = await WithLogs(server.Host, () => http.PostAsync("/echo", new PatternContent(Size, knownLength: true)).Within()))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await AssertPatternBodyAsync(response, Size);
        }

        using (var response = await http.PostAsync("/echo", new PatternContent(Size, knownLength: false)).Within())
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await AssertPatternBodyAsync(response, Size);
        }

        // Checked on the server, and a large response alone.
        using (var response = await http.PostAsync("/check", new PatternContent(Size, knownLength: true)).Within())
        {
            Assert.Equal($"ok {Size}", await response.Content.ReadAsStringAsync());
        }

        using (var response = await http.GetAsync($"/big/{Size}", HttpCompletionOption.ResponseHeadersRead).Within())
        {
            await AssertPatternBodyAsync(response, Size);
        }
    }

    /// <summary>
    /// A client that stops reading a large response holds only its own response in its flush: the
    /// server answers other connections meanwhile, and the held one ends when the client closes.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task LargeResponse_ClientStopsReading_ServerServesOthersAndEndsItWhenTheClientCloses(TransportKind kind)
    {
        const int Size = 256 * 1024 * 1024;
        await using var server = await HttpServer.StartAsync(kind);
        var stalled = await TestClient.ConnectAsync(server.Host.EndPoint, socket => socket.ReceiveBufferSize = 16 * 1024);
        await stalled.SendAsync(RawHttpClient.Get($"/big/{Size}"));
        await stalled.ReceiveExactlyAsync(100_000);

        var written = await Waits.SettledAsync(() => server.BigBytesWritten);
        Assert.InRange(written, 100_000, 16L * 1024 * 1024);
        Assert.False(server.BigEnded.IsCompleted, "the response is held, not ended");

        using var http = server.CreateHttpClient();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal($"hello {i}", await http.GetStringAsync($"/hello/{i}").Within());
        }

        await stalled.DisposeAsync();
        Assert.Equal("aborted", await server.BigEnded.Within());

        Assert.Equal("hello after", await http.GetStringAsync("/hello/after").Within());
    }

    public static TheoryData<TransportKind, bool> KindsAndReset => new()
    {
        { TransportKind.Kestrel, false },
        { TransportKind.Kestrel, true },
        { TransportKind.KestrelTcp, false },
        { TransportKind.KestrelTcp, true },
        { TransportKind.KestrelTcpThreadPool, false },
        { TransportKind.KestrelTcpThreadPool, true },
    };

    /// <summary>A client that goes away (reset or FIN) halfway through its request body: the request ends as aborted, the server serves on.</summary>
    [Theory]
    [MemberData(nameof(KindsAndReset))]
    public async Task RequestBody_ClientGoesAwayMidBody_RequestAbortedServerServesOn(TransportKind kind, bool reset)
    {
        await using var server = await HttpServer.StartAsync(kind);
        await using (var client = await TestClient.ConnectAsync(server.Host.EndPoint))
        {
            await client.SendAsync($"POST /check HTTP/1.1\r\nHost: test\r\nContent-Length: {1024 * 1024}\r\n\r\n");
            await client.SendAsync(Pattern.Bytes(0, 100_000));
            await Waits.UntilAsync(() => server.CheckBytesRead >= 100_000, "the server read the first part of the body");
            if (reset)
            {
                client.Reset();
            }
            else
            {
                client.ShutdownSend();
            }

            Assert.Equal("aborted", await server.CheckEnded.Within());
        }

        using var http = server.CreateHttpClient();
        Assert.Equal("hello again", await http.GetStringAsync("/hello/again").Within());
        using var response = await http.PostAsync("/check", new PatternContent(300_000, knownLength: true)).Within();
        Assert.Equal("ok 300000", await response.Content.ReadAsStringAsync());
    }

    private static async Task<T> WithLogs<T>(TransportHost host, Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception ex)
        {
            throw new InvalidOperationException($"failed; the server logged:{Environment.NewLine}{host.Logs}", ex);
        }
    }

    private static async Task AssertPatternBodyAsync(HttpResponseMessage response, long size)
    {
        await using var body = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[64 * 1024];
        var position = 0L;
        using var cts = new CancellationTokenSource(Waits.Timeout);
        while (true)
        {
            var read = await body.ReadAsync(buffer, cts.Token);
            if (read == 0)
            {
                break;
            }

            Pattern.Verify(buffer.AsSpan(0, read), position);
            position += read;
        }

        Assert.Equal(size, position);
    }

    /// <summary>A request body of <see cref="Pattern"/> bytes, with a Content-Length or chunked.</summary>
    private sealed class PatternContent(long size, bool knownLength) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var buffer = new byte[64 * 1024];
            for (var position = 0L; position < size; position += buffer.Length)
            {
                var length = (int)Math.Min(buffer.Length, size - position);
                Pattern.Fill(buffer.AsSpan(0, length), position);
                await stream.WriteAsync(buffer.AsMemory(0, length));
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = size;
            return knownLength;
        }
    }

    /// <summary>The HTTP application: a few endpoints that stream, check and echo bodies, and report how their last request ended.</summary>
    private sealed class HttpServer : IAsyncDisposable
    {
        private long _bigWritten;
        private long _checkRead;

        private HttpServer()
        {
        }

        public TransportHost Host { get; private set; } = null!;

        public long BigBytesWritten => Volatile.Read(ref _bigWritten);

        public long CheckBytesRead => Volatile.Read(ref _checkRead);

        /// <summary>How the last /big response ended: "done" or "aborted".</summary>
        public TaskCompletionSource<string> BigEndedSource { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<string> BigEnded => BigEndedSource.Task;

        /// <summary>How the last /check request ended: "ok", "bad" or "aborted".</summary>
        public TaskCompletionSource<string> CheckEndedSource { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<string> CheckEnded => CheckEndedSource.Task;

        public static async Task<HttpServer> StartAsync(TransportKind kind)
        {
            var server = new HttpServer();
            server.Host = await TransportHost.StartAsync(kind, new TransportHostSettings
            {
                ConfigureListen = listen => listen.Protocols = HttpProtocols.Http1,
                ConfigureApp = server.Map,
            });
            return server;
        }

        public HttpClient CreateHttpClient() => new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(1) })
        {
            BaseAddress = new Uri($"http://{Host.EndPoint}"),
            Timeout = Waits.Timeout,
            DefaultRequestVersion = HttpVersion.Version11,
        };

        public ValueTask DisposeAsync() => Host.DisposeAsync();

        private void Map(WebApplication app)
        {
            app.MapGet("/hello/{name}", (RequestDelegate)(async context =>
            {
                var body = Encoding.ASCII.GetBytes($"hello {context.Request.RouteValues["name"]}");
                context.Response.ContentLength = body.Length;
                await context.Response.Body.WriteAsync(body);
            }));

            app.MapGet("/big/{size:long}", (RequestDelegate)(async context =>
            {
                var size = long.Parse((string)context.Request.RouteValues["size"]!);
                context.Response.ContentLength = size;
                var writer = context.Response.BodyWriter;
                try
                {
                    for (var position = 0L; position < size;)
                    {
                        var length = (int)Math.Min(64 * 1024, size - position);
                        Pattern.Fill(writer.GetSpan(length)[..length], position);
                        writer.Advance(length);
                        var flush = await writer.FlushAsync(context.RequestAborted);
                        position += length;
                        Volatile.Write(ref _bigWritten, position);
                        if (flush.IsCompleted)
                        {
                            break;
                        }
                    }

                    BigEndedSource.TrySetResult(Volatile.Read(ref _bigWritten) == size ? "done" : "aborted");
                }
                catch (Exception ex) when (ex is OperationCanceledException or IOException)
                {
                    BigEndedSource.TrySetResult("aborted");
                }
            }));

            app.MapPost("/echo", (RequestDelegate)(async context =>
            {
                context.Response.ContentLength = context.Request.ContentLength;
                var reader = context.Request.BodyReader;
                var writer = context.Response.BodyWriter;
                while (true)
                {
                    var result = await reader.ReadAsync();
                    foreach (var segment in result.Buffer)
                    {
                        writer.Write(segment.Span);
                    }

                    reader.AdvanceTo(result.Buffer.End);
                    await writer.FlushAsync();
                    if (result.IsCompleted)
                    {
                        return;
                    }
                }
            }));

            app.MapPost("/check", (RequestDelegate)(async context =>
            {
                var reader = context.Request.BodyReader;
                var position = 0L;
                string outcome;
                try
                {
                    while (true)
                    {
                        var result = await reader.ReadAsync();
                        foreach (var segment in result.Buffer)
                        {
                            Pattern.Verify(segment.Span, position);
                            position += segment.Length;
                        }

                        Volatile.Write(ref _checkRead, position);
                        reader.AdvanceTo(result.Buffer.End);
                        if (result.IsCompleted)
                        {
                            break;
                        }
                    }

                    outcome = "ok";
                }
                catch (Exception ex) when (ex is OperationCanceledException or IOException or Microsoft.AspNetCore.Http.BadHttpRequestException)
                {
                    outcome = "aborted";
                }

                CheckEndedSource.TrySetResult(outcome);
                if (outcome == "ok")
                {
                    var body = Encoding.ASCII.GetBytes($"ok {position}");
                    context.Response.ContentLength = body.Length;
                    context.Response.ContentType = new MediaTypeHeaderValue("text/plain").ToString();
                    await context.Response.Body.WriteAsync(body);
                }
            }));
        }
    }
}

using System.Text;
using KestrelTcp.Hosting;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace KestrelTcp.Tests.Hosting;

/// <summary>Answers each read with the name of the thread the handler ran on.</summary>
public sealed class ThreadNameHandler : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        while (true)
        {
            var result = await connection.Transport.Input.ReadAsync();
            connection.Transport.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return;
            }

            await connection.Transport.Output.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"{Thread.CurrentThread.Name}\n"));
        }
    }
}

public class InlineSchedulingTests
{
    [Fact]
    public void TestProcess_RunsWithInlineSocketCompletions_AsTheServerDoes()
    {
        // Set for the test host by tests/test.runsettings, as the server's entry point sets it for itself.
        Assert.Equal("1", Environment.GetEnvironmentVariable(InlineScheduling.SocketsVariable));
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("true", true)]
    [InlineData("false", false)]
    public async Task Handler_RunsOnSocketEventThread_UnlessTurnedOff(string? setting, bool inline)
    {
        await using var server = await TestServer.StartAsync(
            [TestServer.Listener("names", "Names"), new() { ["KestrelTcp:Transport:InlineScheduling"] = setting }],
            services => services.AddKestrelTcpHandler<ThreadNameHandler>("Names"));
        Assert.Equal(inline, server.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.UnsafePreferInlineScheduling);

        await using var client = await server.ConnectAsync("names");
        var onSocketThread = 0;
        for (var i = 0; i < 10; i++)
        {
            await client.SendAsync("x");
            // The runtime's socket event threads, or the transport's own epoll threads (EpollEngine).
            var thread = await client.ReadLineAsync();
            onSocketThread += thread == ".NET Sockets\n" || thread?.StartsWith("KestrelTcp epoll", StringComparison.Ordinal) == true ? 1 : 0;
        }

        // Inline, a read is handled on the socket event thread that saw the data, unless the handler
        // happened to be still finishing its last await on another thread when the data came.
        if (inline)
        {
            Assert.InRange(onSocketThread, 5, 10);
        }
        else
        {
            Assert.Equal(0, onSocketThread);
        }
    }

    [Theory]
    [InlineData(true, null, "1", true)]
    [InlineData(true, "1", null, true)]
    [InlineData(true, "0", null, false)]
    [InlineData(false, null, null, false)]
    [InlineData(false, "1", null, false)]
    public void SocketsVariable_SetOnlyWhenUnset_KestrelHalfFollowsIt(bool configured, string? before, string? toSet, bool kestrelInline)
    {
        Assert.Equal(toSet, InlineScheduling.SocketsVariableToSet(configured, before));
        Assert.Equal(kestrelInline, InlineScheduling.IsActive(configured, toSet ?? before));
    }

    [Theory]
    [InlineData(null, "True")]
    [InlineData("false", "False")]
    public async Task Server_AsAUserStartsIt_TurnsInlineSchedulingOnItself(string? setting, string expected)
    {
        // No DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS in the child's environment (BuiltServer drops it):
        // the server must set it before Kestrel's transport is built, or Kestrel's half stays off.
        using var server = setting is null
            ? await ChildServer.StartAsync()
            : await ChildServer.StartAsync(("KestrelTcp:Transport:InlineScheduling", setting));
        await TestServer.WaitUntilAsync(() => Task.FromResult(server.Output.Contains("inline scheduling", StringComparison.Ordinal)));
        Assert.Contains($"inline scheduling {expected},", server.Output, StringComparison.Ordinal);

        // The runtime's half: with inline completions the runtime runs one socket event thread per
        // processor, otherwise one per 30 (see SocketAsyncEngine.GetEngineCount), so on a machine
        // with more than one processor the thread count tells which mode the server's sockets run in.
        if (Environment.ProcessorCount > 1)
        {
            await using var client = await server.ConnectAsync("echo");
            await client.SendAsync("x");
            Assert.Equal("x", Encoding.ASCII.GetString(await client.ReadExactlyAsync(1)));
            var socketThreads = Directory.GetDirectories($"/proc/{server.Pid}/task")
                .Count(task => File.ReadAllText(Path.Combine(task, "comm")).Trim() == ".NET Sockets");
            Assert.Equal(expected == "True" ? Environment.ProcessorCount : 1, socketThreads);
        }
    }
}

using System.Text;
using KestrelTcp.Connections;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Time.Testing;

namespace KestrelTcp.Tests.Handlers;

public class GreetingHandlerTests
{
    private static readonly DateTimeOffset Moment = new(2014, 1, 29, 19, 14, 15, TimeSpan.Zero);

    private static GreetingHandler Handler(int maxLineLength = 8192, params (string, string?)[] options) =>
        new(Listeners.Greeting(maxLineLength, options), new FakeTimeProvider(Moment));

    private static async Task<string> ConverseAsync(GreetingHandler handler, params byte[][] sends)
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(handler);
        var reading = connection.ReadAllAsync();
        foreach (var send in sends)
        {
            await connection.SendAsync(send);
        }

        connection.CompleteSending();
        var text = Encoding.UTF8.GetString(await reading);
        await run;
        return text;
    }

    /// <summary>Sends <paramref name="input"/> without ending the input: only the server can close.</summary>
    private static async Task<(string Text, CloseReason Reason)> UntilServerClosesAsync(GreetingHandler handler, byte[] input)
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(handler);
        await connection.SendAsync(input);
        var text = Encoding.UTF8.GetString(await connection.ReadAllAsync());
        await run;
        return (text, connection.CloseReason);
    }

    private static byte[] B(string text) => Encoding.UTF8.GetBytes(text);

    private const string Banner = "Welcome! You have connected to 192.0.2.1 on port 7001\r\n";

    [Fact]
    public async Task OnConnectedAsync_LinesSplitAcrossReads_OneReplyPerLine()
    {
        var text = await ConverseAsync(Handler(), B("Al"), B("ice\r"), B("\nBob\n"), B("\n"), B("Car"), B("ol"));
        Assert.Equal(Banner + "Hello, Alice!\r\nHello, Bob!\r\nHello, !\r\nHello, Carol!\r\n", text);
    }

    [Theory]
    [InlineData("quit")]
    [InlineData("EXIT")]
    [InlineData("Bye")]
    public async Task OnConnectedAsync_ExitCommand_FarewellAndCloseServerSide(string command)
    {
        var (text, reason) = await UntilServerClosesAsync(Handler(), B($"hi\r\n{command}\r\nnot answered\r\n"));
        Assert.Equal(Banner + "Hello, hi!\r\nGoodbye!\r\n", text);
        Assert.Equal(CloseReason.Server, reason);
    }

    [Fact]
    public async Task OnConnectedAsync_ControlCharactersAndInvalidUtf8_ReplacedNotEchoed()
    {
        var text = await ConverseAsync(Handler(), [0x1b, (byte)'[', (byte)'2', (byte)'J', (byte)'\t', 0xff, (byte)'x', 0x07, 0xc3, 0xa9, (byte)'\n']);
        Assert.Equal(Banner + "Hello, \uFFFD[2J\t\uFFFDx\uFFFD\u00e9!\r\n", text);
    }

    [Fact]
    public async Task OnConnectedAsync_LineExactlyAtLimit_Answered()
    {
        var text = await ConverseAsync(Handler(maxLineLength: 10), B("0123456789\r\n"));
        Assert.Equal(Banner + "Hello, 0123456789!\r\n", text);
    }

    [Fact]
    public async Task OnConnectedAsync_LineOneByteOverLimit_ErrAndClose()
    {
        var (text, reason) = await UntilServerClosesAsync(Handler(maxLineLength: 10), B("ok\n01234567890\nnever\n"));
        Assert.Equal(Banner + "Hello, ok!\r\nERR line too long\r\n", text);
        Assert.Equal(CloseReason.LineTooLong, reason);
    }

    [Fact]
    public async Task OnConnectedAsync_HugeLineWithoutNewline_ErrBeforeItEnds()
    {
        // The client keeps sending: the answer comes as soon as the limit is passed, without an EOF.
        var (text, _) = await UntilServerClosesAsync(Handler(maxLineLength: 100), new byte[1000]);
        Assert.EndsWith("ERR line too long\r\n", text);
    }

    [Fact]
    public async Task OnConnectedAsync_ShutdownRequested_SaysSoAndCloses()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(Handler());
        Assert.Equal(Banner, await connection.ReadTextAsync(Banner.Length));
        connection.RequestClose();
        Assert.Equal("Server shutting down\r\n", Encoding.UTF8.GetString(await connection.ReadAllAsync()));
        await run;
    }

    [Fact]
    public async Task OnConnectedAsync_IdleCancel_ClosesWithoutShutdownMessage()
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(Handler());
        Assert.Equal(Banner, await connection.ReadTextAsync(Banner.Length));
        connection.SetCloseReason(CloseReason.IdleTimeout);
        connection.RequestClose();
        Assert.Empty(await connection.ReadAllAsync());
        await run;
    }

    [Fact]
    public async Task OnConnectedAsync_EveryPlaceholder_Rendered()
    {
        var handler = Handler(8192,
            ("Banner", "{Listener}|{ConnectionId}|{RemoteAddress}|{RemotePort}|{LocalAddress}|{LocalPort}|{MachineName}|{Time}|{{x}}\n"),
            ("Reply", "[{Line}] from {RemoteAddress}\n"),
            ("Farewell", "bye {RemotePort}\n"),
            ("ExitCommands:0", "leave"));
        var text = await ConverseAsync(handler, B("a b\nquit\nLEAVE\n"));
        Assert.Equal(
            $"greeting|test-1|192.0.2.10|50123|192.0.2.1|7001|{Environment.MachineName}|2014-01-29T19:14:15Z|{{x}}\n" +
            "[a b] from 192.0.2.10\n[quit] from 192.0.2.10\nbye 50123\n", text);
    }

    [Fact]
    public async Task OnConnectedAsync_ManyPipelinedLines_AllAnsweredInOrder()
    {
        var input = string.Concat(Enumerable.Range(0, 20000).Select(i => $"{i}\n"));
        var text = await ConverseAsync(Handler(), B(input));
        var expected = Banner + string.Concat(Enumerable.Range(0, 20000).Select(i => $"Hello, {i}!\r\n"));
        Assert.Equal(expected, text);
    }

    [Theory]
    [InlineData("Banner", "Hi {Nope}", "KestrelTcp:Listeners:greeting:Options:Banner: unknown placeholder {Nope} (known: {Listener} {ConnectionId} {RemoteAddress} {RemotePort} {LocalAddress} {LocalPort} {MachineName} {Time} {TlsProtocol} {ServerName} {ClientCertificate})")]
    [InlineData("Banner", "Hi {Line}", "KestrelTcp:Listeners:greeting:Options:Banner: unknown placeholder {Line} (known: {Listener} {ConnectionId} {RemoteAddress} {RemotePort} {LocalAddress} {LocalPort} {MachineName} {Time} {TlsProtocol} {ServerName} {ClientCertificate})")]
    [InlineData("Reply", "Hi {Line", "KestrelTcp:Listeners:greeting:Options:Reply: unclosed '{' at position 3 (write '{{' for a literal brace)")]
    [InlineData("Farewell", "bye }", "KestrelTcp:Listeners:greeting:Options:Farewell: unmatched '}' at position 4 (write '}}' for a literal brace)")]
    public void Parse_BadTemplate_ReportsKeyAndProblem(string key, string template, string expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"KestrelTcp:Listeners:greeting:Options:{key}"] = template,
        }).Build();
        var problems = new List<string>();
        GreetingOptions.Parse(configuration.GetSection("KestrelTcp:Listeners:greeting:Options"), problems);
        Assert.Equal([expected], problems);
    }
}

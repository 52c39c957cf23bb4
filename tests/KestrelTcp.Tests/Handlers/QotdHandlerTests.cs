using System.Text;
using KestrelTcp.Handlers;
using KestrelTcp.Tests.Infrastructure;
using KestrelTcp.Tests.Tls;

namespace KestrelTcp.Tests.Handlers;

public sealed class QotdHandlerTests : IDisposable
{
    private const string Key = "KestrelTcp:Listeners:qotd:Options";
    private readonly TempDirectory _files = new();

    public void Dispose() => _files.Dispose();

    private static async Task<string> ConnectAsync(QotdHandler handler)
    {
        var connection = new PipeConnection();
        var run = connection.RunAsync(handler);
        var text = Encoding.ASCII.GetString(await connection.ReadAllAsync());
        await run;
        return text;
    }

    private static (QotdOptions Options, List<string> Problems) Parse(params (string Key, string? Value)[] options) =>
        Parse([], options);

    private static (QotdOptions Options, List<string> Problems) Parse(string[] directories, params (string Key, string? Value)[] options)
    {
        var problems = new List<string>();
        var parsed = QotdOptions.Parse(ServiceListeners.Section("qotd", options), problems, directories);
        return (parsed, problems);
    }

    private static string[] Texts(QotdOptions options) => [.. options.Quotes.Select(q => Encoding.ASCII.GetString(q))];

    [Fact]
    public async Task OnConnectedAsync_OneQuote_WrittenWithCrLfThenClosed()
    {
        var handler = new QotdHandler(ServiceListeners.Qotd(("Quotes:0", "Simplicity is prerequisite for reliability.")));
        Assert.Equal("Simplicity is prerequisite for reliability.\r\n", await ConnectAsync(handler));
    }

    [Fact]
    public async Task OnConnectedAsync_Sequential_TheQuotesInTurnStartingWithTheFirst()
    {
        var handler = new QotdHandler(ServiceListeners.Qotd(("Order", "Sequential"), ("Quotes:0", "one"), ("Quotes:1", "two"), ("Quotes:2", "three")));
        var served = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            served.Add(await ConnectAsync(handler));
        }

        Assert.Equal(["one\r\n", "two\r\n", "three\r\n", "one\r\n", "two\r\n", "three\r\n", "one\r\n"], served);
    }

    [Fact]
    public async Task OnConnectedAsync_SequentialFromManyThreads_EachQuoteEquallyOften()
    {
        var handler = new QotdHandler(ServiceListeners.Qotd(("Order", "sequential"), ("Quotes:0", "a"), ("Quotes:1", "b"), ("Quotes:2", "c")));
        var served = await Task.WhenAll(Enumerable.Range(0, 300).Select(_ => Task.Run(() => ConnectAsync(handler))));
        Assert.Equal([("a\r\n", 100), ("b\r\n", 100), ("c\r\n", 100)], served.GroupBy(s => s).Select(g => (g.Key, g.Count())).OrderBy(g => g.Key));
    }

    [Fact]
    public async Task OnConnectedAsync_Random_EveryQuoteFromTheListAndBothSeen()
    {
        var handler = new QotdHandler(ServiceListeners.Qotd(("Quotes:0", "heads"), ("Quotes:1", "tails")));
        var served = new HashSet<string>();
        for (var i = 0; i < 200; i++)
        {
            served.Add(await ConnectAsync(handler));
        }

        Assert.Equal(["heads\r\n", "tails\r\n"], served.Order());
    }

    [Fact]
    public async Task OnConnectedAsync_NoQuotesConfigured_ABuiltInQuote()
    {
        var handler = new QotdHandler(ServiceListeners.Qotd());
        var quote = await ConnectAsync(handler);
        Assert.Contains(quote, QotdOptions.BuiltInQuotes.Select(q => q.Replace("\n", "\r\n") + "\r\n"));
    }

    [Fact]
    public void Parse_Neither_TheBuiltInQuotesInOrderEachValid()
    {
        var (options, problems) = Parse();
        Assert.Empty(problems);
        Assert.Equal(QotdOrder.Random, options.Order);
        Assert.Equal(QotdOptions.BuiltInQuotes.Count, options.Quotes.Count);
        Assert.True(options.Quotes.Count >= 5);
        Assert.All(Texts(options), q =>
        {
            Assert.EndsWith("\r\n", q);
            Assert.InRange(q.Length - 2, 1, 512);
            Assert.All(q, c => Assert.True(c is (>= ' ' and <= '~') or '\r' or '\n', $"U+{(int)c:X4}"));
            Assert.DoesNotContain(q.Replace("\r\n", ""), c => c is '\r' or '\n'); // every line ending is CR LF
        });
    }

    [Theory]
    [InlineData("a\nb", "a\r\nb\r\n")]
    [InlineData("a\r\nb", "a\r\nb\r\n")]
    [InlineData("a\rb", "a\r\nb\r\n")]
    [InlineData("a\n\nb\n\n", "a\r\n\r\nb\r\n")]
    [InlineData("trailing\r\n", "trailing\r\n")]
    public void Parse_QuoteLineEndings_NormalisedToCrLfNoneAtTheEnd(string configured, string sent)
    {
        var (options, problems) = Parse(("Quotes:0", configured));
        Assert.Empty(problems);
        Assert.Equal([sent], Texts(options));
    }

    [Fact]
    public void Parse_SingleValue_AListOfOne()
    {
        var (options, problems) = Parse(("Quotes", "only one"));
        Assert.Empty(problems);
        Assert.Equal(["only one\r\n"], Texts(options));
    }

    [Fact]
    public void Parse_Exactly512Characters_Accepted()
    {
        var (options, problems) = Parse(("Quotes:0", new string('x', 512)));
        Assert.Empty(problems);
        Assert.Equal(514, Assert.Single(options.Quotes).Length);
    }

    [Fact]
    public void Parse_513Characters_RefusedNamingTheKey()
    {
        var (_, problems) = Parse(("Quotes:0", "fine"), ("Quotes:1", new string('x', 513)));
        Assert.Equal([$"{Key}:Quotes:1: 513 characters (a quote is at most 512 characters, RFC 865)"], problems);
    }

    [Fact]
    public void Parse_LineEndingsCountAsSent_511WithAnLfIs513()
    {
        // 255 + CR LF + 256: the LF became CR LF, as the quote is sent.
        var (_, problems) = Parse(("Quotes:0", new string('x', 255) + "\n" + new string('y', 256)));
        Assert.Equal([$"{Key}:Quotes:0: 513 characters (a quote is at most 512 characters, RFC 865)"], problems);
    }

    [Theory]
    [InlineData("tab\there", "U+0009 at position 4")]
    [InlineData("caf\u00e9", "U+00E9 at position 4")]
    [InlineData("nul\0", "U+0000 at position 4")]
    [InlineData("del\u007f", "U+007F at position 4")]
    [InlineData("form\ffeed", "U+000C at position 5")]
    [InlineData("smile \U0001F600", "U+1F600 at position 7")]
    public void Parse_NotPrintableAscii_RefusedNamingTheCharacter(string quote, string where)
    {
        var (_, problems) = Parse(("Quotes:0", quote));
        Assert.Equal([$"{Key}:Quotes:0: character {where} is not allowed (a quote is printable ASCII, CR and LF, RFC 865)"], problems);
    }

    [Fact]
    public void Parse_EmptyQuote_Refused()
    {
        var (_, problems) = Parse(("Quotes:0", "ok"), ("Quotes:1", ""));
        Assert.Equal([$"{Key}:Quotes:1: empty (a quote needs at least one character)"], problems);
    }

    [Fact]
    public void Parse_QuotesAndQuotesFile_Refused()
    {
        var path = _files.Write("quotes.txt", "a\n%\nb\n");
        var (_, problems) = Parse(("Quotes:0", "a"), ("QuotesFile", path));
        Assert.Equal([$"{Key}:QuotesFile: set together with {Key}:Quotes; give one or the other"], problems);
    }

    [Fact]
    public void Parse_UnknownOrder_Refused()
    {
        var (_, problems) = Parse(("Order", "shuffle"));
        Assert.Equal([$"{Key}:Order: 'shuffle' is not an order (Random, Sequential)"], problems);
        Assert.Equal([$"{Key}:Order: '1' is not an order (Random, Sequential)"], Parse(("Order", "1")).Problems);
    }

    [Theory]
    [InlineData("first\nquote\n%\nsecond\n%\nthird\n")]
    [InlineData("first\r\nquote\r\n%\r\nsecond\r\n%\r\nthird\r\n")]
    [InlineData("first\nquote\n%\nsecond\n%\nthird\n%\n")]
    [InlineData("%\nfirst\nquote\n%\n%\n\nsecond\n\n%\nthird")]
    public void Parse_FortuneFile_QuotesBetweenPercentLines(string file)
    {
        var path = _files.Write("fortunes", file);
        var (options, problems) = Parse(("QuotesFile", path), ("Order", "Sequential"));
        Assert.Empty(problems);
        Assert.Equal(QotdOrder.Sequential, options.Order);
        Assert.Equal(["first\r\nquote\r\n", "second\r\n", "third\r\n"], Texts(options));
    }

    [Fact]
    public void SplitFortunes_LinesWithMoreThanAPercent_AreText()
    {
        var quotes = QotdOptions.SplitFortunes("100% sure\n %\n%%\n%\nnext\n");
        Assert.Equal([("100% sure\n %\n%%", 1), ("next", 5)], quotes);
    }

    [Fact]
    public void Parse_FortuneFileQuoteTooLong_NamesTheFileTheQuoteAndItsLine()
    {
        var path = _files.Write("long.txt", "short\n%\nalso short\n%\n\n" + new string('x', 300) + "\n" + new string('y', 300) + "\n%\nlast\n");
        var (_, problems) = Parse(("QuotesFile", path));
        Assert.Equal([$"{Key}:QuotesFile: {path}: quote 3 (line 6): 602 characters (a quote is at most 512 characters, RFC 865)"], problems);
    }

    [Fact]
    public void Parse_FortuneFileBadCharacter_NamesItsLineAndColumn()
    {
        var path = _files.Write("bad.txt", Encoding.UTF8.GetBytes("fine\n%\nfirst line\nsecond \u00e9 line\n"));
        var (_, problems) = Parse(("QuotesFile", path));
        Assert.Equal([$"{Key}:QuotesFile: {path}: quote 2 (line 3): character U+00E9 on line 4, column 8 is not allowed (a quote is printable ASCII, CR and LF, RFC 865)"], problems);
    }

    [Theory]
    [InlineData("")]
    [InlineData("%\n%\n")]
    [InlineData("\n\n%\n\n")]
    public void Parse_FortuneFileWithoutQuotes_Refused(string file)
    {
        var path = _files.Write("empty.txt", file);
        var (_, problems) = Parse(("QuotesFile", path));
        Assert.Equal([$"{Key}:QuotesFile: '{path}' holds no quotes (a fortune file: quotes separated by lines holding only %)"], problems);
    }

    [Fact]
    public void Parse_RelativeQuotesFile_LookedForInEachDirectoryInOrder()
    {
        var first = _files.Full("cwd");
        var second = _files.Full("base");
        Directory.CreateDirectory(first);
        _files.Write("base/quotes/fortunes", "from the second directory\n");
        var (options, problems) = Parse([first, second], ("QuotesFile", "quotes/fortunes"));
        Assert.Empty(problems);
        Assert.Equal(["from the second directory\r\n"], Texts(options));

        _files.Write("cwd/quotes/fortunes", "from the first directory\n");
        Assert.Equal(["from the first directory\r\n"], Texts(Parse([first, second], ("QuotesFile", "quotes/fortunes")).Options));
    }

    [Fact]
    public void Parse_QuotesFileMissing_NamesWhereItWasLookedFor()
    {
        var (_, problems) = Parse([_files.Full("a"), _files.Full("b")], ("QuotesFile", "missing.txt"));
        Assert.Equal([$"{Key}:QuotesFile: 'missing.txt' not found (looked for {_files.Full("a/missing.txt")}, {_files.Full("b/missing.txt")})"], problems);
    }

    [Fact]
    public void Parse_DefaultDirectories_TheCurrentDirectoryThenTheBinarys()
    {
        var problems = new List<string>();
        QotdOptions.Parse(ServiceListeners.Section("qotd", ("QuotesFile", "no-such-quotes-file.txt")), problems);
        var expected = new[] { Path.GetFullPath("no-such-quotes-file.txt"), Path.GetFullPath("no-such-quotes-file.txt", AppContext.BaseDirectory) }.Distinct();
        Assert.Equal([$"{Key}:QuotesFile: 'no-such-quotes-file.txt' not found (looked for {string.Join(", ", expected)})"], problems);
    }
}

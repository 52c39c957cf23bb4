using System.Net;
using KestrelTcp.ProxyProtocol;
using Microsoft.Extensions.Configuration;

namespace KestrelTcp.Tests.ProxyProtocol;

public class ProxyProtocolOptionsTests
{
    private const string Key = "KestrelTcp:Listeners:echo:ProxyProtocol";

    private static (ProxyProtocolOptions Options, List<string> Problems) Read(params (string Key, string? Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create($"{Key}:{s.Key}", s.Value)))
            .AddInMemoryCollection([KeyValuePair.Create<string, string?>("KestrelTcp:Listeners:echo:Handler", "Echo")])
            .Build();
        var problems = new List<string>();
        var options = ProxyProtocolOptions.Read(configuration.GetSection(Key), problems);
        return (options, problems);
    }

    private static string[] Networks(ProxyProtocolOptions options) => [.. options.TrustedProxies.Networks.Select(n => n.ToString())];

    [Fact]
    public void Defaults_MatchTheContract()
    {
        var off = ProxyProtocolOptions.Off;
        Assert.Equal((ProxyProtocolMode.Off, true, TimeSpan.FromSeconds(3)), (off.Mode, off.TrustedProxies.IsEmpty, off.HeaderTimeout));
        Assert.Equal(off, new ProxyProtocolOptions());
    }

    [Fact]
    public void Read_NoSection_Off()
    {
        var (options, problems) = Read();
        Assert.Same(ProxyProtocolOptions.Off, options);
        Assert.Empty(problems);
    }

    [Fact]
    public void Read_ValueInsteadOfASection_Problem()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([KeyValuePair.Create<string, string?>(Key, "V2")]).Build();
        var problems = new List<string>();
        var options = ProxyProtocolOptions.Read(configuration.GetSection(Key), problems);
        Assert.Equal([$"{Key}: 'V2' is a value, not a section (give Mode, TrustedProxies and HeaderTimeout under it)"], problems);
        Assert.Same(ProxyProtocolOptions.Off, options);
    }

    [Fact]
    public void Read_TheContractExample_AllRead()
    {
        var (options, problems) = Read(("Mode", "V2"), ("TrustedProxies:0", "10.0.0.0/8"), ("TrustedProxies:1", "127.0.0.1"), ("HeaderTimeout", "00:00:03"));
        Assert.Empty(problems);
        Assert.Equal(ProxyProtocolMode.V2, options.Mode);
        Assert.Equal(["10.0.0.0/8", "127.0.0.1/32"], Networks(options));
        Assert.Equal(TimeSpan.FromSeconds(3), options.HeaderTimeout);
        Assert.True(options.TrustedProxies.Contains(IPAddress.Parse("::ffff:10.1.2.3")));
    }

    [Theory]
    [InlineData("Off", ProxyProtocolMode.Off)]
    [InlineData("v1", ProxyProtocolMode.V1)]
    [InlineData("V2", ProxyProtocolMode.V2)]
    [InlineData("ANY", ProxyProtocolMode.Any)]
    [InlineData("aNy", ProxyProtocolMode.Any)]
    public void Read_ModeName_CaseInsensitive(string text, ProxyProtocolMode expected)
    {
        var (options, problems) = Read(("Mode", text), ("TrustedProxies", "192.0.2.0/24, 2001:db8::/32"), ("HeaderTimeout", "00:00:05"));
        Assert.Empty(problems);
        Assert.Equal(expected, options.Mode);
        Assert.Equal(["192.0.2.0/24", "2001:db8::/32"], Networks(options));
        Assert.Equal(TimeSpan.FromSeconds(5), options.HeaderTimeout);
    }

    [Theory]
    [InlineData("V3")]
    [InlineData("2")]
    [InlineData("0")]
    [InlineData("V1,V2")]
    [InlineData(" V2")]
    [InlineData("true")]
    public void Read_UnknownMode_Problem(string text)
    {
        var (options, problems) = Read(("Mode", text), ("TrustedProxies", "10.0.0.0/8"));
        Assert.Equal([$"{Key}:Mode: '{text}' is not a PROXY protocol mode (Off, V1, V2 or Any)"], problems);
        Assert.Equal(ProxyProtocolMode.Off, options.Mode);
    }

    [Theory]
    [InlineData("V1")]
    [InlineData("V2")]
    [InlineData("Any")]
    public void Read_ModeOnWithoutTrustedProxies_Problem(string mode)
    {
        var (_, problems) = Read(("Mode", mode.ToLowerInvariant()));
        Assert.Equal([$"{Key}:TrustedProxies: required when Mode is {mode} (the addresses or CIDR blocks of the proxies that may send a header)"], problems);
    }

    [Fact]
    public void Read_ModeOnWithEmptyTrustedProxies_Problem()
    {
        var (_, problems) = Read(("Mode", "V2"), ("TrustedProxies", ""));
        Assert.Equal([$"{Key}:TrustedProxies: required when Mode is V2 (the addresses or CIDR blocks of the proxies that may send a header)"], problems);
    }

    [Fact]
    public void Read_BadTrustedProxyEntries_EachAProblemAndNotAlsoRequired()
    {
        var (_, problems) = Read(("Mode", "V2"), ("TrustedProxies:0", "10.0.0.0/33"), ("TrustedProxies:1", "proxy.internal"));
        Assert.Equal(
        [
            $"{Key}:TrustedProxies:0: '10.0.0.0/33' is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)",
            $"{Key}:TrustedProxies:1: 'proxy.internal' is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)",
        ], problems);
    }

    [Fact]
    public void Read_ZeroHeaderTimeoutWithModeOn_Problem()
    {
        var (_, problems) = Read(("Mode", "Any"), ("TrustedProxies", "10.0.0.0/8"), ("HeaderTimeout", "00:00:00"));
        Assert.Equal([$"{Key}:HeaderTimeout: 00:00:00 is not more than zero, as it must be when Mode is Any (the time a trusted proxy has to send the whole header)"], problems);
    }

    [Fact]
    public void Read_ZeroHeaderTimeoutWithModeOff_Accepted()
    {
        var (options, problems) = Read(("Mode", "Off"), ("HeaderTimeout", "00:00:00"));
        Assert.Empty(problems);
        Assert.Equal(TimeSpan.Zero, options.HeaderTimeout);
    }

    [Theory]
    [InlineData("3s", "'3s' is not a time span (expected [d.]hh:mm:ss[.fff], e.g. 00:05:00)")]
    [InlineData("-00:00:01", "-00:00:01 is negative")]
    public void Read_UnreadableHeaderTimeout_Problem(string text, string why)
    {
        var (options, problems) = Read(("Mode", "V1"), ("TrustedProxies", "10.0.0.0/8"), ("HeaderTimeout", text));
        Assert.Equal([$"{Key}:HeaderTimeout: {why}"], problems);
        Assert.Equal(TimeSpan.FromSeconds(3), options.HeaderTimeout);
    }

    [Fact]
    public void Read_ModeOffWithTrustedProxies_ReadAndNoProblem()
    {
        var (options, problems) = Read(("TrustedProxies", "10.0.0.0/8"));
        Assert.Empty(problems);
        Assert.Equal(ProxyProtocolMode.Off, options.Mode);
        Assert.Equal(["10.0.0.0/8"], Networks(options));
    }

    [Fact]
    public void Read_SeveralProblems_AllAtOnce()
    {
        var (_, problems) = Read(("Mode", "V2"), ("TrustedProxies:0", "10.0.0.300"), ("HeaderTimeout", "soon"));
        Assert.Equal(
        [
            $"{Key}:TrustedProxies:0: '10.0.0.300' is not an IP address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)",
            $"{Key}:HeaderTimeout: 'soon' is not a time span (expected [d.]hh:mm:ss[.fff], e.g. 00:05:00)",
        ], problems);
    }
}

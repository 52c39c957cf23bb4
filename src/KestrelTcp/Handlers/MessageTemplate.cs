using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Security.Authentication;
using System.Text;
using System.Text.Unicode;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace KestrelTcp.Handlers;

/// <summary>
/// A message with placeholders such as <c>{RemoteAddress}</c>, parsed once at start-up and written
/// straight into a connection's output without building strings. <c>{{</c> and <c>}}</c> are
/// literal braces. <c>{Line}</c> is the received line with invalid UTF-8 and control characters
/// (other than tab) replaced by U+FFFD, never echoed raw. <c>{TlsProtocol}</c>, <c>{ServerName}</c> and
/// <c>{ClientCertificate}</c> come from Kestrel's TLS features and are empty on a connection without TLS.
/// </summary>
internal sealed class MessageTemplate
{
    /// <summary>The placeholders every template may use.</summary>
    public static IReadOnlyList<string> ConnectionPlaceholders { get; } =
        ["Listener", "ConnectionId", "RemoteAddress", "RemotePort", "LocalAddress", "LocalPort", "MachineName", "Time",
            "TlsProtocol", "ServerName", "ClientCertificate"];

    private static readonly SearchValues<byte> PrintableAscii = SearchValues.Create(
        [(byte)'\t', .. Enumerable.Range(0x20, 0x7F - 0x20).Select(b => (byte)b)]);

    private static readonly SearchValues<char> ControlCharacters = SearchValues.Create(
        [.. Enumerable.Range(0, 0xA0).Select(c => (char)c).Where(c => char.IsControl(c) && c != '\t')]);

    private static readonly byte[] MachineName = Encoding.UTF8.GetBytes(Environment.MachineName);

    private readonly Part[] _parts;

    private MessageTemplate(Part[] parts, string text)
    {
        _parts = parts;
        Text = text;
    }

    private enum Kind
    {
        Literal,
        Listener,
        ConnectionId,
        RemoteAddress,
        RemotePort,
        LocalAddress,
        LocalPort,
        MachineName,
        Time,
        TlsProtocol,
        ServerName,
        ClientCertificate,
        Line,
    }

    /// <summary>The template as configured.</summary>
    public string Text { get; }

    /// <summary>
    /// Parses <paramref name="text"/>; each problem is reported against <paramref name="key"/>.
    /// <c>{Line}</c> is allowed only when <paramref name="allowLine"/> is true.
    /// </summary>
    public static MessageTemplate Parse(string text, bool allowLine, string key, ICollection<string> problems)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(problems);
        var parts = new List<Part>();
        var literal = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if ((c == '{' || c == '}') && i + 1 < text.Length && text[i + 1] == c)
            {
                literal.Append(c);
                i++;
                continue;
            }

            if (c == '}')
            {
                problems.Add($"{key}: unmatched '}}' at position {i} (write '}}}}' for a literal brace)");
                continue;
            }

            if (c != '{')
            {
                literal.Append(c);
                continue;
            }

            var end = text.IndexOf('}', i + 1);
            if (end < 0)
            {
                problems.Add($"{key}: unclosed '{{' at position {i} (write '{{{{' for a literal brace)");
                break;
            }

            var name = text[(i + 1)..end];
            if (!Enum.TryParse<Kind>(name, ignoreCase: true, out var kind) || kind == Kind.Literal || !name.All(char.IsAsciiLetter)
                || (kind == Kind.Line && !allowLine))
            {
                var known = string.Join(" ", ConnectionPlaceholders.Concat(allowLine ? ["Line"] : []).Select(p => "{" + p + "}"));
                problems.Add($"{key}: unknown placeholder {{{name}}} (known: {known})");
            }
            else
            {
                Flush(literal, parts);
                parts.Add(new Part(kind, null));
            }

            i = end;
        }

        Flush(literal, parts);
        return new MessageTemplate([.. parts], text);
    }

    /// <summary>Writes the message for <paramref name="connection"/> to <paramref name="output"/>.</summary>
    public void Write(PipeWriter output, ConnectionContext connection, string listener, TimeProvider time, in ReadOnlySequence<byte> line = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(connection);
        foreach (var part in _parts)
        {
            switch (part.Kind)
            {
                case Kind.Literal:
                    output.Write(part.Literal);
                    break;
                case Kind.Listener:
                    Encoding.UTF8.GetBytes(listener, output);
                    break;
                case Kind.ConnectionId:
                    Encoding.UTF8.GetBytes(connection.ConnectionId, output);
                    break;
                case Kind.RemoteAddress:
                    WriteAddress(output, connection.RemoteEndPoint);
                    break;
                case Kind.RemotePort:
                    WritePort(output, connection.RemoteEndPoint);
                    break;
                case Kind.LocalAddress:
                    WriteAddress(output, connection.LocalEndPoint);
                    break;
                case Kind.LocalPort:
                    WritePort(output, connection.LocalEndPoint);
                    break;
                case Kind.MachineName:
                    output.Write(MachineName);
                    break;
                case Kind.Time:
                    WriteFormattable(output, time.GetUtcNow().UtcDateTime, "yyyy-MM-dd'T'HH:mm:ss'Z'");
                    break;
                case Kind.TlsProtocol:
                    WriteTlsProtocol(output, connection.Features.Get<ITlsHandshakeFeature>());
                    break;
                case Kind.ServerName:
                    // The client's to choose (SNI): sanitized like a received line.
                    WriteSanitized(output, connection.Features.Get<ITlsHandshakeFeature>()?.HostName);
                    break;
                case Kind.ClientCertificate:
                    WriteSanitized(output, connection.Features.Get<ITlsConnectionFeature>()?.ClientCertificate?.Subject);
                    break;
                case Kind.Line:
                    WriteSanitized(output, line);
                    break;
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="line"/> as text: printable ASCII and tab as they are; otherwise decoded
    /// with invalid UTF-8 replaced and control characters turned into U+FFFD.
    /// </summary>
    public static void WriteSanitized(PipeWriter output, in ReadOnlySequence<byte> line)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (line.IsEmpty)
        {
            return;
        }

        byte[]? rentedBytes = null;
        ReadOnlySpan<byte> bytes;
        if (line.IsSingleSegment)
        {
            bytes = line.FirstSpan;
        }
        else
        {
            rentedBytes = ArrayPool<byte>.Shared.Rent((int)line.Length);
            line.CopyTo(rentedBytes);
            bytes = rentedBytes.AsSpan(0, (int)line.Length);
        }

        if (bytes.IndexOfAnyExcept(PrintableAscii) < 0)
        {
            output.Write(bytes);
        }
        else
        {
            var chars = ArrayPool<char>.Shared.Rent(bytes.Length);
            Utf8.ToUtf16(bytes, chars, out _, out var charCount, replaceInvalidSequences: true);
            var text = chars.AsSpan(0, charCount);
            for (var i = 0; i < text.Length; i++)
            {
                if (char.IsControl(text[i]) && text[i] != '\t')
                {
                    text[i] = '\uFFFD';
                }
            }

            Encoding.UTF8.GetBytes(text, output);
            ArrayPool<char>.Shared.Return(chars);
        }

        if (rentedBytes is not null)
        {
            ArrayPool<byte>.Shared.Return(rentedBytes);
        }
    }

    private static void WriteTlsProtocol(PipeWriter output, ITlsHandshakeFeature? tls)
    {
        if (tls is null)
        {
            return;
        }

        switch (tls.Protocol)
        {
            case SslProtocols.Tls13:
                output.Write("Tls13"u8);
                break;
            case SslProtocols.Tls12:
                output.Write("Tls12"u8);
                break;
            case SslProtocols.None:
                break;
            default:
                // Only when the OS still negotiates a deprecated version: rare enough to format.
                Encoding.UTF8.GetBytes(tls.Protocol.ToString(), output);
                break;
        }
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8, control characters (other than tab) replaced by U+FFFD.</summary>
    private static void WriteSanitized(PipeWriter output, string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        if (text.AsSpan().IndexOfAny(ControlCharacters) < 0)
        {
            Encoding.UTF8.GetBytes(text, output);
            return;
        }

        var chars = ArrayPool<char>.Shared.Rent(text.Length);
        var copy = chars.AsSpan(0, text.Length);
        text.CopyTo(copy);
        for (var i = 0; i < copy.Length; i++)
        {
            if (char.IsControl(copy[i]) && copy[i] != '\t')
            {
                copy[i] = '\uFFFD';
            }
        }

        Encoding.UTF8.GetBytes(copy, output);
        ArrayPool<char>.Shared.Return(chars);
    }

    private static void WriteAddress(PipeWriter output, EndPoint? endPoint)
    {
        switch (endPoint)
        {
            case IPEndPoint ip:
                WriteFormattable(output, ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address, null);
                break;
            case null:
                break;
            default:
                Encoding.UTF8.GetBytes(endPoint.ToString() ?? "", output);
                break;
        }
    }

    private static void WritePort(PipeWriter output, EndPoint? endPoint)
    {
        if (endPoint is IPEndPoint ip)
        {
            WriteFormattable(output, ip.Port, null);
        }
    }

    private static void WriteFormattable<T>(PipeWriter output, T value, string? format) where T : IUtf8SpanFormattable
    {
        var span = output.GetSpan(64);
        if (!value.TryFormat(span, out var written, format, CultureInfo.InvariantCulture))
        {
            throw new InvalidOperationException("Formatted value exceeds 64 bytes.");
        }

        output.Advance(written);
    }

    private static void Flush(StringBuilder literal, List<Part> parts)
    {
        if (literal.Length > 0)
        {
            parts.Add(new Part(Kind.Literal, Encoding.UTF8.GetBytes(literal.ToString())));
            literal.Clear();
        }
    }

    private readonly record struct Part(Kind Kind, byte[]? Literal);
}

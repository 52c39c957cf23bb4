using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Encodings.Web;
using System.Text.Json;
using KestrelTcp.Configuration;
using KestrelTcp.ProxyProtocol;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace KestrelTcp.Handlers;

/// <summary>
/// What the server sees of a connection, for testing proxies, load balancers and meshes: on connect,
/// one JSON object and <c>\n</c>, then the connection closes; what the client sends is ignored.
/// <para>
/// The object: <c>listener</c>, <c>handler</c>, <c>connectionId</c>, <c>machineName</c>, <c>time</c>
/// (ISO 8601 UTC with milliseconds, from the injected <see cref="TimeProvider"/>), <c>client</c> and
/// <c>server</c> (the connection's remote and local endpoints as every handler sees them, after a PROXY
/// header), <c>peer</c> (the TCP peer: the proxy when a PROXY header was accepted, else the client),
/// <c>proxy</c> (null, or <c>version</c>, <c>command</c> <c>PROXY</c>|<c>LOCAL</c>, <c>source</c>,
/// <c>destination</c> and the <c>tlvs</c> present: <c>alpn</c>, <c>authority</c>, <c>uniqueId</c> in
/// lowercase hex, <c>netns</c>, <c>ssl</c>) and <c>tls</c> (null, or <c>protocol</c>, <c>cipherSuite</c>,
/// <c>serverName</c>, <c>applicationProtocol</c> and <c>clientCertificate</c>).
/// </para>
/// <para>
/// An endpoint is <c>{ "address", "port" }</c>, IPv4-mapped IPv6 addresses written as plain IPv4. On a
/// Unix domain socket listener an endpoint with a path is <c>{ "path" }</c>; an unnamed one (the usual
/// client socket) and a missing one are <c>null</c>. The <c>command</c> is <c>LOCAL</c> whenever the
/// header carries no client, so the connection keeps the socket's addresses (v2 <c>LOCAL</c>, v1
/// <c>PROXY UNKNOWN</c>, a v2 <c>PROXY</c> of the <c>UNSPEC</c> or <c>AF_UNIX</c> family); <c>source</c>
/// and <c>destination</c> are then null.
/// </para>
/// <para>
/// The object is written with a <see cref="Utf8JsonWriter"/> straight into the connection's output;
/// values are copied as UTF-8 from what the connection holds, formatted into stack buffers.
/// </para>
/// </summary>
public sealed class InfoHandler(ListenerDefinition listener, TimeProvider timeProvider) : ConnectionHandler
{
    // Not for an HTML page: what a client sent (SNI names, PROXY TLVs) is escaped as JSON requires
    // (quotes, backslashes, control characters) and otherwise written as it is, readable.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly JsonEncodedText MachineName = JsonEncodedText.Encode(Environment.MachineName, WriterOptions.Encoder);

    // One writer per thread, given each connection's output in turn: the object is written without an await.
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    private readonly JsonEncodedText _listener = JsonEncodedText.Encode(listener.Name, WriterOptions.Encoder);
    private readonly JsonEncodedText _handler = JsonEncodedText.Encode(listener.HandlerName, WriterOptions.Encoder);

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var output = connection.Transport.Output;
        Write(connection, output);
        await output.FlushAsync();
    }

    /// <summary>Writes the object and its <c>\n</c> for <paramref name="connection"/> to <paramref name="output"/> (not flushed).</summary>
    internal void Write(ConnectionContext connection, IBufferWriter<byte> output)
    {
        var writer = t_writer ??= new Utf8JsonWriter(output, WriterOptions);
        writer.Reset(output);
        try
        {
            WriteObject(writer, connection);
            writer.Flush();
        }
        finally
        {
            // Nothing of the connection stays reachable from the thread's writer.
            writer.Reset(Stream.Null);
        }

        output.Write("\n"u8);
    }

    private void WriteObject(Utf8JsonWriter writer, ConnectionContext connection)
    {
        var features = connection.Features;
        var proxy = features.Get<IProxyProtocolFeature>();
        writer.WriteStartObject();
        writer.WriteString("listener"u8, _listener);
        writer.WriteString("handler"u8, _handler);
        writer.WriteString("connectionId"u8, connection.ConnectionId);
        writer.WriteString("machineName"u8, MachineName);
        WriteTime(writer, "time"u8, timeProvider.GetUtcNow().UtcDateTime, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'");
        WriteEndPoint(writer, "client"u8, connection.RemoteEndPoint);
        WriteEndPoint(writer, "server"u8, connection.LocalEndPoint);
        WriteEndPoint(writer, "peer"u8, proxy is null ? connection.RemoteEndPoint : proxy.Peer);
        WriteProxy(writer, proxy?.Header);
        WriteTls(writer, features);
        writer.WriteEndObject();
    }

    private static void WriteProxy(Utf8JsonWriter writer, ProxyHeader? header)
    {
        if (header is null)
        {
            writer.WriteNull("proxy"u8);
            return;
        }

        writer.WriteStartObject("proxy"u8);
        writer.WriteNumber("version"u8, header.Version);
        writer.WriteString("command"u8, header.IsLocal ? "LOCAL"u8 : "PROXY"u8);
        WriteEndPoint(writer, "source"u8, header.Source);
        WriteEndPoint(writer, "destination"u8, header.Destination);
        writer.WriteStartObject("tlvs"u8);
        WriteIfPresent(writer, "alpn"u8, header.ApplicationProtocol);
        WriteIfPresent(writer, "authority"u8, header.Authority);
        if (header.UniqueId is { } uniqueId)
        {
            WriteHex(writer, "uniqueId"u8, uniqueId);
        }

        WriteIfPresent(writer, "netns"u8, header.NetworkNamespace);
        if (header.Ssl is { } ssl)
        {
            writer.WriteStartObject("ssl"u8);
            writer.WriteNumber("client"u8, ssl.Client);
            writer.WriteBoolean("verified"u8, ssl.Verified);
            WriteIfPresent(writer, "version"u8, ssl.Version);
            WriteIfPresent(writer, "commonName"u8, ssl.CommonName);
            WriteIfPresent(writer, "cipher"u8, ssl.Cipher);
            WriteIfPresent(writer, "signatureAlgorithm"u8, ssl.SignatureAlgorithm);
            WriteIfPresent(writer, "keyAlgorithm"u8, ssl.KeyAlgorithm);
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteTls(Utf8JsonWriter writer, IFeatureCollection features)
    {
        var handshake = features.Get<ITlsHandshakeFeature>();
        var tls = features.Get<ITlsConnectionFeature>();
        if (handshake is null && tls is null)
        {
            writer.WriteNull("tls"u8);
            return;
        }

        writer.WriteStartObject("tls"u8);
        if (handshake is { Protocol: not SslProtocols.None })
        {
            // Enum names are cached by the runtime: "Tls13", "Tls12".
            writer.WriteString("protocol"u8, handshake.Protocol.ToString());
        }
        else
        {
            writer.WriteNull("protocol"u8);
        }

        if (handshake?.NegotiatedCipherSuite is { } cipherSuite)
        {
            writer.WriteString("cipherSuite"u8, cipherSuite.ToString());
        }
        else
        {
            writer.WriteNull("cipherSuite"u8);
        }

        WriteOrNull(writer, "serverName"u8, handshake?.HostName);
        if (features.Get<ITlsApplicationProtocolFeature>()?.ApplicationProtocol is { IsEmpty: false } alpn)
        {
            writer.WriteString("applicationProtocol"u8, alpn.Span);
        }
        else
        {
            writer.WriteNull("applicationProtocol"u8);
        }

        if (tls?.ClientCertificate is { } certificate)
        {
            writer.WriteStartObject("clientCertificate"u8);
            writer.WriteString("subject"u8, certificate.Subject);
            writer.WriteString("issuer"u8, certificate.Issuer);
            writer.WriteString("thumbprint"u8, certificate.Thumbprint);
            WriteTime(writer, "notAfter"u8, certificate.NotAfter.ToUniversalTime(), "yyyy-MM-dd'T'HH:mm:ss'Z'");
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNull("clientCertificate"u8);
        }

        writer.WriteEndObject();
    }

    private static void WriteEndPoint(Utf8JsonWriter writer, ReadOnlySpan<byte> name, EndPoint? endPoint)
    {
        switch (endPoint)
        {
            case IPEndPoint ip:
                var address = ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address;
                Span<byte> text = stackalloc byte[64]; // an IPv6 address with a scope id is at most 45 + 11
                address.TryFormat(text, out var length);
                writer.WriteStartObject(name);
                writer.WriteString("address"u8, text[..length]);
                writer.WriteNumber("port"u8, ip.Port);
                writer.WriteEndObject();
                break;
            case UnixDomainSocketEndPoint unix when unix.ToString() is { Length: > 0 } path:
                writer.WriteStartObject(name);
                writer.WriteString("path"u8, path);
                writer.WriteEndObject();
                break;
            default:
                writer.WriteNull(name);
                break;
        }
    }

    private static void WriteTime(Utf8JsonWriter writer, ReadOnlySpan<byte> name, DateTime utc, string format)
    {
        Span<byte> text = stackalloc byte[32];
        utc.TryFormat(text, out var length, format, CultureInfo.InvariantCulture);
        writer.WriteString(name, text[..length]);
    }

    private static void WriteHex(Utf8JsonWriter writer, ReadOnlySpan<byte> name, byte[] bytes)
    {
        // PROXY v2 caps the unique id at 128 bytes; anything longer is formatted on the heap.
        if (bytes.Length > 128)
        {
            writer.WriteString(name, Convert.ToHexStringLower(bytes));
            return;
        }

        Span<char> hex = stackalloc char[256];
        Convert.TryToHexStringLower(bytes, hex, out var length);
        writer.WriteString(name, hex[..length]);
    }

    private static void WriteIfPresent(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }

    private static void WriteOrNull(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, value);
        }
    }
}

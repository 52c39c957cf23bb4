namespace KestrelTcp.ProxyProtocol;

/// <summary>
/// The v2 <c>PP2_TYPE_SSL</c> TLV: what the proxy knew of the TLS connection between the client and
/// itself. The strings come from the TLV's sub-TLVs and are null when the proxy did not send them.
/// </summary>
public sealed class ProxySslInfo
{
    /// <summary>
    /// The <c>client</c> bit field: 0x01 (<c>PP2_CLIENT_SSL</c>) the client connected over TLS, 0x02
    /// (<c>PP2_CLIENT_CERT_CONN</c>) it sent a certificate on this connection, 0x04
    /// (<c>PP2_CLIENT_CERT_SESS</c>) it sent one at least once in this TLS session.
    /// </summary>
    public byte Client { get; init; }

    /// <summary>
    /// True when the TLV's <c>verify</c> field is zero: the spec's "the client presented a certificate
    /// and it was successfully verified". HAProxy also sends zero when there was no certificate to
    /// verify, so look at <see cref="Client"/> (0x02, 0x04) before trusting a client certificate.
    /// </summary>
    public bool Verified { get; init; }

    /// <summary>The TLS version (<c>PP2_SUBTYPE_SSL_VERSION</c>, e.g. <c>TLSv1.3</c>).</summary>
    public string? Version { get; init; }

    /// <summary>The Common Name of the client certificate's subject (<c>PP2_SUBTYPE_SSL_CN</c>).</summary>
    public string? CommonName { get; init; }

    /// <summary>The cipher (<c>PP2_SUBTYPE_SSL_CIPHER</c>, e.g. <c>ECDHE-RSA-AES128-GCM-SHA256</c>).</summary>
    public string? Cipher { get; init; }

    /// <summary>The algorithm that signed the proxy's certificate (<c>PP2_SUBTYPE_SSL_SIG_ALG</c>, e.g. <c>RSA-SHA256</c>).</summary>
    public string? SignatureAlgorithm { get; init; }

    /// <summary>The algorithm of the proxy certificate's key (<c>PP2_SUBTYPE_SSL_KEY_ALG</c>, e.g. <c>RSA2048</c>).</summary>
    public string? KeyAlgorithm { get; init; }
}

namespace KestrelTcp.Transport;

/// <summary>How KestrelTcp's socket transport binds and serves connections.</summary>
public sealed record TcpTransportOptions
{
    /// <summary>The listen backlog (<c>listen(N)</c>). Default 512, as Kestrel's socket transport.</summary>
    public int Backlog { get; init; } = 512;

    /// <summary>Disables Nagle's algorithm on accepted sockets. Default true, as Kestrel's socket transport: replies go out at once.</summary>
    public bool NoDelay { get; init; } = true;

    /// <summary>
    /// Received bytes a connection may hold that the handler has not examined before it stops
    /// receiving, as Kestrel's <c>MaxReadBufferSize</c> (whose pipe counts the same bytes). A read
    /// that has examined everything still gets new bytes, as over a pipe: a handler bounds what it
    /// examines without consuming. Default 128 KiB: two reads of a bulk stream, a few hundred KiB at
    /// most for a hostile client.
    /// </summary>
    public long MaxReadBufferSize { get; init; } = 128 * 1024;

    /// <summary>
    /// Run a handler's continuation on the socket event thread that completed its read, instead of
    /// the thread pool. Default false; only safe when no handler blocks a thread, and it only pays
    /// with the runtime's inline socket completions (<c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c>).
    /// </summary>
    public bool InlineCompletions { get; init; }

    /// <summary>
    /// Wait for received bytes through the transport's own epoll sets (Linux; elsewhere this is
    /// ignored) instead of a zero-byte <c>ReceiveAsync</c>: the runtime then keeps no socket engine
    /// state for an idle connection, ~620 bytes less per held connection. Default true; false is the
    /// portable path, kept for comparison and tested as well.
    /// </summary>
    public bool EpollReadiness { get; init; } = true;

    /// <summary>The size of a pooled buffer block. Default 64 KiB, the C reference's read size: one read takes what one block holds.</summary>
    public int BlockSize { get; init; } = 64 * 1024;

    /// <summary>Free blocks kept for reuse by one transport (4 MiB at 64 KiB); a block is out only while its bytes are in flight.</summary>
    public int RetainedBlocks { get; init; } = 64;

    /// <summary>Where the transport reads time (the last-receive timestamps). Default the system clock.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

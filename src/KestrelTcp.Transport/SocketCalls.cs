using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace KestrelTcp.Transport;

/// <summary>
/// The non-blocking receive and send of a connection whose readiness comes from an
/// <see cref="EpollEngine"/>, as the system calls themselves. <c>Socket.Receive</c>/<c>Send</c> on a
/// socket switched to <c>Blocking = false</c> would do the same calls, but that switch makes the
/// runtime create its asynchronous context for the socket (~260 bytes kept for the connection's
/// life, with its locks); the descriptor is made non-blocking here instead (<see cref="SetNonBlocking"/>),
/// and the <see cref="Socket"/> still owns it (options, shutdown, close, and <c>SendAsync</c> when a
/// send finds the socket full). Errors come back as the runtime's <see cref="SocketError"/> values.
/// <para>
/// The <see cref="Socket"/> a handler can get from <c>IConnectionSocketFeature</c> therefore still says
/// <c>Blocking = true</c> over a non-blocking descriptor: its synchronous <c>Receive</c>/<c>Send</c> would
/// report a would-block as <see cref="SocketError.TimedOut"/>. Handlers use the connection's pipes.
/// </para>
/// </summary>
internal static unsafe partial class SocketCalls
{
    private const int FionBio = 0x5421;
    private const int MsgNoSignal = 0x4000;
    private const int SockCloExec = 0x80000;

    /// <summary>Makes the descriptor non-blocking, leaving the <see cref="Socket"/>'s own mode as it is.</summary>
    public static void SetNonBlocking(Socket socket)
    {
        using var descriptor = new Descriptor(socket);
        var on = 1;
        if (Ioctl(descriptor.Value, FionBio, &on) != 0)
        {
            throw new SocketException((int)Map(Marshal.GetLastPInvokeError()));
        }
    }

    /// <summary>As <c>Socket.Receive(span, SocketFlags.None, out error)</c> on a non-blocking socket.</summary>
    public static int Receive(Socket socket, Span<byte> buffer, out SocketError error)
    {
        fixed (byte* bytes = buffer)
        {
            return Transfer(socket, bytes, buffer.Length, send: false, out error);
        }
    }

    /// <summary>As <c>Socket.Send(span, SocketFlags.None, out error)</c> on a non-blocking socket (never raising SIGPIPE).</summary>
    public static int Send(Socket socket, ReadOnlySpan<byte> buffer, out SocketError error)
    {
        fixed (byte* bytes = buffer)
        {
            return Transfer(socket, bytes, buffer.Length, send: true, out error);
        }
    }

    /// <summary>One recv or send, retried on EINTR, with the descriptor kept open meanwhile: the byte count, or 0 and the error.</summary>
    private static int Transfer(Socket socket, byte* bytes, int length, bool send, out SocketError error)
    {
        try
        {
            using var descriptor = new Descriptor(socket);
            while (true)
            {
                var done = send ? SendBytes(descriptor.Value, bytes, length, MsgNoSignal) : Recv(descriptor.Value, bytes, length, 0);
                if (done >= 0)
                {
                    error = SocketError.Success;
                    return (int)done;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != EIntr)
                {
                    error = Map(errno);
                    return 0;
                }
            }
        }
        catch (ObjectDisposedException)
        {
            error = SocketError.OperationAborted;
            return 0;
        }
    }

    /// <summary>
    /// One <c>accept4</c> on a listening socket whose descriptor is non-blocking (<see cref="SetNonBlocking"/>),
    /// retried on EINTR: the accepted socket (blocking, close-on-exec, as the runtime's accept makes it),
    /// or null and the error. <paramref name="transient"/> says the error belongs to that one connection
    /// (gone before it was taken, or a network error accept(2) passes on): take the next.
    /// <paramref name="peer"/> is the client's address as accept returned it, given only when the socket
    /// can no longer tell (a client that reset the connection before it was taken: getpeername fails).
    /// </summary>
    public static Socket? Accept(Socket listener, out SocketError error, out bool transient, out IPEndPoint? peer)
    {
        transient = false;
        peer = null;
        int fd;
        var address = stackalloc byte[128]; // sockaddr_storage
        var length = 128;
        try
        {
            using var descriptor = new Descriptor(listener);
            while ((fd = Accept4(descriptor.Value, address, &length, SockCloExec)) < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != EIntr)
                {
                    // ECONNABORTED, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH, ENETDOWN, ECONNRESET.
                    transient = errno is 103 or 71 or 92 or 112 or 64 or 113 or 95 or 101 or 100 or 104;
                    error = Map(errno);
                    return null;
                }

                length = 128;
            }
        }
        catch (ObjectDisposedException)
        {
            error = SocketError.OperationAborted;
            return null;
        }

        var handle = new SafeSocketHandle(fd, ownsHandle: true);
        try
        {
            // Reads the family, type, protocol and addresses from the descriptor (a few getsockopt calls):
            // cheaper than the wake-up of the runtime's socket engine it replaces.
            error = SocketError.Success;
            var socket = new Socket(handle);
            if (socket.RemoteEndPoint is null)
            {
                peer = Parse(new ReadOnlySpan<byte>(address, Math.Min(length, 128)));
            }

            return socket;
        }
        catch (SocketException ex)
        {
            handle.Dispose();
            error = ex.SocketErrorCode;
            transient = true;
            return null;
        }
    }

    /// <summary>A Linux sockaddr_in or sockaddr_in6 (family in host order, port in network order); null for any other.</summary>
    internal static IPEndPoint? Parse(ReadOnlySpan<byte> address)
    {
        if (address.Length < 2)
        {
            return null;
        }

        var family = BinaryPrimitives.ReadUInt16LittleEndian(address);
        if (family == 2 && address.Length >= 8)
        {
            return new IPEndPoint(new IPAddress(address.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(address[2..]));
        }

        if (family == 10 && address.Length >= 28)
        {
            var scope = BinaryPrimitives.ReadUInt32LittleEndian(address[24..]);
            return new IPEndPoint(new IPAddress(address.Slice(8, 16), scope), BinaryPrimitives.ReadUInt16BigEndian(address[2..]));
        }

        return null;
    }

    /// <summary>The errno of a system call interrupted by a signal: retried.</summary>
    internal const int EIntr = 4;

    /// <summary>Linux errno values (the same on x86-64 and arm64) as the runtime maps them.</summary>
    internal static SocketError Map(int errno) => errno switch
    {
        11 => SocketError.WouldBlock,            // EAGAIN
        104 => SocketError.ConnectionReset,      // ECONNRESET
        32 or 108 => SocketError.Shutdown,       // EPIPE, ESHUTDOWN
        107 => SocketError.NotConnected,         // ENOTCONN
        103 => SocketError.ConnectionAborted,    // ECONNABORTED
        110 => SocketError.TimedOut,             // ETIMEDOUT
        113 => SocketError.HostUnreachable,      // EHOSTUNREACH
        101 => SocketError.NetworkUnreachable,   // ENETUNREACH
        100 => SocketError.NetworkDown,          // ENETDOWN
        102 => SocketError.NetworkReset,         // ENETRESET
        9 => SocketError.OperationAborted,       // EBADF: closed under us
        12 or 105 => SocketError.NoBufferSpaceAvailable, // ENOMEM, ENOBUFS
        22 => SocketError.InvalidArgument,       // EINVAL
        28 => SocketError.NoBufferSpaceAvailable, // ENOSPC (epoll watches)
        24 or 23 => SocketError.TooManyOpenSockets, // EMFILE, ENFILE
        _ => SocketError.SocketError,
    };

    /// <summary>
    /// A socket's descriptor number, with a reference on its handle until disposed, so that the socket
    /// cannot be closed (and the number reused by another) while a system call uses it. Throws
    /// <see cref="ObjectDisposedException"/> when the socket is already closed.
    /// </summary>
    internal readonly ref struct Descriptor
    {
        private readonly SafeHandle _handle;

        public Descriptor(Socket socket)
        {
            _handle = socket.SafeHandle;
            var added = false;
            _handle.DangerousAddRef(ref added);
            Value = (int)_handle.DangerousGetHandle();
        }

        public int Value { get; }

        public void Dispose() => _handle.DangerousRelease();
    }

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint Recv(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint SendBytes(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    private static partial int Accept4(int fd, void* address, int* length, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nint request, int* argument);
}

using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace KestrelTcp.Transport;

/// <summary>
/// Receive readiness for the transport's connections on Linux, from epoll sets of its own: each
/// connection's socket is registered once, edge-triggered, for input, and a thread per set hands
/// each event to the connection's reader (<see cref="TcpInput.OnReadiness"/>). It replaces the
/// zero-byte <c>ReceiveAsync</c> the reader otherwise waits with, which makes the runtime keep, for
/// every idle connection, its socket engine's context, a pending receive operation and the event
/// args: ~620 bytes of live heap per held connection (docs/benchmarks.md, round 6), against one
/// slot here (a reference and a generation). Sends are unchanged: they go straight to the socket,
/// and only one that finds the socket's buffer full waits through the runtime (<c>SendAsync</c>).
/// <para>
/// The sets are process-wide, as the runtime's own socket engines are: one per processor with inline
/// completions (the event thread runs the handler), one otherwise (the reader's receive runs on the
/// event thread, the handler's continuation on the thread pool). Their threads live as long as the process.
/// Listening sockets wait on the second kind, in slots like a connection's (one-shot, <see cref="Rearm"/>),
/// whose thread runs no handler.
/// </para>
/// </summary>
internal sealed partial class EpollEngine
{
    private const int MaxEvents = 512;
    private const int EpollCtlAdd = 1;
    private const int EpollCtlMod = 3;
    private const uint EpollIn = 0x001;
    private const uint EpollPri = 0x002;
    private const uint EpollErr = 0x008;
    private const uint EpollHup = 0x010;
    private const uint EpollRdHup = 0x2000;
    private const uint EpollOneShot = 1u << 30;
    private const uint EpollEdgeTriggered = 1u << 31;

    // Bytes, urgent data (a receive stops short at the urgent mark), the client's FIN; edge-triggered.
    private const uint Interest = EpollIn | EpollPri | EpollRdHup | EpollEdgeTriggered;

    // x86-64's struct epoll_event is packed (12 bytes, data at offset 4); elsewhere it is naturally aligned (16, at 8).
    private static readonly bool s_packed = RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86;

    private static readonly Lock s_create = new();
    private static EpollEngine[]? s_inline;
    private static EpollEngine[]? s_pooled;
    private static int s_next;

    private readonly int _epoll;
    private readonly Lock _lock = new();
    private readonly Stack<int> _free = new();
    private Slot[] _slots = new Slot[1024];
    private int _used;

    private EpollEngine(int epoll, string name)
    {
        _epoll = epoll;
        var thread = new Thread(Run) { IsBackground = true, Name = name };
        thread.UnsafeStart();
    }

    /// <summary>
    /// Whether readiness comes from epoll here, rather than from a zero-byte receive: Linux on the
    /// architectures whose epoll_event layout and FIONBIO this knows (x64, x86, arm64, arm).
    /// </summary>
    public static bool IsSupported => OperatingSystem.IsLinux()
        && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64 or Architecture.X86 or Architecture.Arm;

    /// <summary>The set the next connection registers with: round robin over the process's sets.</summary>
    public static EpollEngine Next(bool inline)
    {
        var engines = (inline ? Volatile.Read(ref s_inline) : Volatile.Read(ref s_pooled)) ?? Create(inline);
        return engines.Length == 1 ? engines[0] : engines[(int)((uint)Interlocked.Increment(ref s_next) % (uint)engines.Length)];
    }

    /// <summary>
    /// Registers <paramref name="socket"/> for input readiness (edge-triggered: an event for each
    /// arrival, and one at once if bytes are already there), reported to <paramref name="input"/>.
    /// </summary>
    public SocketError Register(TcpInput input, Socket socket, out int slot) => Add(input, socket, Interest, out slot);

    /// <summary>
    /// Registers a listening socket, one-shot: one report to <paramref name="listener"/>
    /// (<see cref="TcpConnectionListener.OnReadable"/>) per <see cref="Rearm"/> (and one for the registration).
    /// </summary>
    public SocketError Register(TcpConnectionListener listener, Socket socket, out int slot) => Add(listener, socket, EpollIn | EpollOneShot, out slot);

    /// <summary>Asks for the next report of a one-shot registration; a connection already waiting reports at once.</summary>
    public SocketError Rearm(TcpConnectionListener listener, int slot, Socket socket)
    {
        int generation;
        lock (_lock)
        {
            // Read together: a slot released (and perhaps taken again) since is not the listener's to arm; one
            // released after this keeps its old generation here, so its report no longer matches anything.
            ref var entry = ref _slots[slot];
            if (!ReferenceEquals(entry.Target, listener))
            {
                return SocketError.OperationAborted;
            }

            generation = entry.Generation;
        }

        try
        {
            using var descriptor = new SocketCalls.Descriptor(socket);
            var data = ((ulong)(uint)generation << 32) | (uint)slot;
            var ok = (s_packed ? CtlPacked(EpollCtlMod, descriptor.Value, EpollIn | EpollOneShot, data) : CtlAligned(EpollCtlMod, descriptor.Value, EpollIn | EpollOneShot, data)) == 0;
            return ok ? SocketError.Success : SocketCalls.Map(Marshal.GetLastPInvokeError());
        }
        catch (ObjectDisposedException)
        {
            return SocketError.OperationAborted;
        }
    }

    private SocketError Add(object target, Socket socket, uint events, out int slot)
    {
        slot = Allocate(target, out var generation);
        try
        {
            // The descriptor is kept from being closed (and its number reused) while it is added.
            using var descriptor = new SocketCalls.Descriptor(socket);
            var data = ((ulong)(uint)generation << 32) | (uint)slot;
            var result = s_packed ? CtlPacked(EpollCtlAdd, descriptor.Value, events, data) : CtlAligned(EpollCtlAdd, descriptor.Value, events, data);
            if (result == 0)
            {
                return SocketError.Success;
            }

            // Out of epoll watches (ENOSPC: fs.epoll.max_user_watches) or memory: the read fails with it.
            var error = SocketCalls.Map(Marshal.GetLastPInvokeError());
            Release(slot);
            slot = -1;
            return error;
        }
        catch (Exception ex)
        {
            // The slot must not keep the connection alive; a socket closed meanwhile is the close, anything else is thrown.
            Release(slot);
            slot = -1;
            if (ex is ObjectDisposedException)
            {
                return SocketError.OperationAborted;
            }

            throw;
        }
    }

    /// <summary>
    /// Frees a slot once its socket is closed (closing the descriptor took it out of the epoll set);
    /// an event still in flight for it no longer matches the slot's generation.
    /// </summary>
    public void Release(int slot)
    {
        lock (_lock)
        {
            ref var entry = ref _slots[slot];
            Volatile.Write(ref entry.Generation, entry.Generation + 1);
            Volatile.Write(ref entry.Target, null);
            _free.Push(slot);
        }
    }

    private static EpollEngine[] Create(bool inline)
    {
        lock (s_create)
        {
            var existing = inline ? s_inline : s_pooled;
            if (existing is not null)
            {
                return existing;
            }

            var count = inline ? Math.Clamp(Environment.ProcessorCount, 1, 16) : 1;
            // Every epoll descriptor first: a failure part-way closes them, and no thread was started yet.
            var descriptors = new int[count];
            for (var i = 0; i < count; i++)
            {
                descriptors[i] = EpollCreate1(0x80000 /* EPOLL_CLOEXEC */);
                if (descriptors[i] < 0)
                {
                    var error = SocketCalls.Map(Marshal.GetLastPInvokeError());
                    for (var j = 0; j < i; j++)
                    {
                        _ = CloseDescriptor(descriptors[j]);
                    }

                    throw new SocketException((int)error);
                }
            }

            var engines = new EpollEngine[count];
            for (var i = 0; i < count; i++)
            {
                engines[i] = new EpollEngine(descriptors[i], $"KestrelTcp epoll {(inline ? "inline" : "pooled")} {i}");
            }

            if (inline)
            {
                Volatile.Write(ref s_inline, engines);
            }
            else
            {
                Volatile.Write(ref s_pooled, engines);
            }

            return engines;
        }
    }

    private int Allocate(object target, out int generation)
    {
        lock (_lock)
        {
            if (!_free.TryPop(out var slot))
            {
                if (_used == _slots.Length)
                {
                    var grown = new Slot[_slots.Length * 2];
                    Array.Copy(_slots, grown, _slots.Length);
                    // Published before the descriptor is added: the event thread reads the table after epoll_wait returns.
                    Volatile.Write(ref _slots, grown);
                }

                slot = _used++;
            }

            ref var entry = ref _slots[slot];
            generation = entry.Generation;
            Volatile.Write(ref entry.Target, target);
            return slot;
        }
    }

    private unsafe void Run()
    {
        var stride = s_packed ? 12 : 16;
        var dataOffset = s_packed ? 4 : 8;
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * stride));
        while (true)
        {
            var count = EpollWait(_epoll, events, MaxEvents, -1);
            if (count < 0)
            {
                if (Marshal.GetLastPInvokeError() == SocketCalls.EIntr)
                {
                    continue;
                }

                Environment.FailFast($"KestrelTcp: epoll_wait failed with errno {Marshal.GetLastPInvokeError()}.");
            }

            var slots = Volatile.Read(ref _slots);
            for (var i = 0; i < count; i++)
            {
                var data = *(ulong*)(events + (i * stride) + dataOffset);
                var flags = *(uint*)(events + (i * stride));
                var index = (int)(uint)data;
                if ((uint)index >= (uint)slots.Length)
                {
                    continue;
                }

                ref var entry = ref slots[index];
                var target = Volatile.Read(ref entry.Target);
                if (target is not null && Volatile.Read(ref entry.Generation) == (int)(data >> 32))
                {
                    try
                    {
                        if (target is TcpInput input)
                        {
                            input.OnReadiness((flags & (EpollRdHup | EpollHup | EpollErr)) != 0, (flags & EpollPri) != 0);
                        }
                        else
                        {
                            ((TcpConnectionListener)target).OnReadable();
                        }
                    }
                    catch (Exception ex)
                    {
                        // As the runtime's socket engine: nothing may escape the event loop, which serves every socket in its set.
                        Environment.FailFast("KestrelTcp: exception thrown from the epoll event loop.", ex);
                    }
                }
            }
        }
    }

    private unsafe int CtlPacked(int op, int fd, uint events, ulong data)
    {
        var ev = new PackedEvent { Events = events, Data = data };
        return EpollCtl(_epoll, op, fd, &ev);
    }

    private unsafe int CtlAligned(int op, int fd, uint events, ulong data)
    {
        var ev = new AlignedEvent { Events = events, Data = data };
        return EpollCtl(_epoll, op, fd, &ev);
    }

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseDescriptor(int fd);

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static unsafe partial int EpollCtl(int epoll, int op, int fd, void* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static unsafe partial int EpollWait(int epoll, byte* events, int maxEvents, int timeout);

    private struct Slot
    {
        public object? Target; // a TcpInput, or a TcpConnectionListener
        public int Generation;
    }

    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    private struct PackedEvent
    {
        public uint Events;
        public ulong Data;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct AlignedEvent
    {
        public uint Events;
        public ulong Data;
    }
}

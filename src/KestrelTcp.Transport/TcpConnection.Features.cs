using System.Buffers;
using System.Collections;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace KestrelTcp.Transport;

/// <summary>
/// The connection's feature collection: this object answers the transport's own features, and keeps
/// what others set (Kestrel's heartbeat, completion, close request and metrics context, the
/// application's features) in six fields (Kestrel sets four features, five when its metrics are listened to, the tracking one) before it needs a list, so that a held connection pays
/// for no dictionary.
/// </summary>
internal sealed partial class TcpConnection : IFeatureCollection,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature,
    IConnectionEndPointFeature, IConnectionSocketFeature, IMemoryPoolFeature
{
    private static readonly Type[] OwnFeatures =
    [
        typeof(IConnectionIdFeature), typeof(IConnectionTransportFeature), typeof(IConnectionItemsFeature),
        typeof(IConnectionLifetimeFeature), typeof(IConnectionEndPointFeature), typeof(IConnectionSocketFeature),
        typeof(IConnectionTransferFeature), typeof(IMemoryPoolFeature),
    ];

    private int _revision;
    private Slot _slot0;
    private Slot _slot1;
    private Slot _slot2;
    private Slot _slot3;
    private Slot _slot4;
    private Slot _slot5;
    private KeyValuePair<Type, object>[]? _others;

    /// <summary>Kestrel's HTTP and TLS layers rent from this; see <see cref="SharedMemoryPool"/>.</summary>
    MemoryPool<byte> IMemoryPoolFeature.MemoryPool => SharedMemoryPool.Instance;

    bool IFeatureCollection.IsReadOnly => false;

    int IFeatureCollection.Revision => _revision;

    object? IFeatureCollection.this[Type key]
    {
        get => Get(key);
        set => Set(key, value);
    }

    TFeature? IFeatureCollection.Get<TFeature>() where TFeature : default => (TFeature?)Get(typeof(TFeature));

    void IFeatureCollection.Set<TFeature>(TFeature? instance) where TFeature : default => Set(typeof(TFeature), instance);

    private object? Get(Type type)
    {
        if (_slot0.Type == type)
        {
            return _slot0.Value;
        }

        if (_slot1.Type == type)
        {
            return _slot1.Value;
        }

        if (_slot2.Type == type)
        {
            return _slot2.Value;
        }

        if (_slot3.Type == type)
        {
            return _slot3.Value;
        }

        if (_slot4.Type == type)
        {
            return _slot4.Value;
        }

        if (_slot5.Type == type)
        {
            return _slot5.Value;
        }

        if (_others is { } others)
        {
            foreach (var entry in others)
            {
                if (entry.Key == type)
                {
                    return entry.Value;
                }
            }
        }

        return Array.IndexOf(OwnFeatures, type) >= 0 ? this : null;
    }

    private void Set(Type type, object? value)
    {
        _revision++;
        if (TrySet(ref _slot0, type, value) || TrySet(ref _slot1, type, value) || TrySet(ref _slot2, type, value) || TrySet(ref _slot3, type, value)
            || TrySet(ref _slot4, type, value)
            || TrySet(ref _slot5, type, value))
        {
            return;
        }

        var others = _others ?? [];
        for (var i = 0; i < others.Length; i++)
        {
            if (others[i].Key == type)
            {
                if (value is null)
                {
                    _others = [.. others[..i], .. others[(i + 1)..]];
                }
                else
                {
                    others[i] = new(type, value);
                }

                return;
            }
        }

        if (value is not null)
        {
            _others = [.. others, new(type, value)];
        }
    }

    /// <summary>Sets the slot if it holds <paramref name="type"/>, or is free and nothing else holds it.</summary>
    private bool TrySet(ref Slot slot, Type type, object? value)
    {
        if (slot.Type == type)
        {
            slot = value is null ? default : new Slot(type, value);
            return true;
        }

        if (slot.Type is null && value is not null && !IsSetElsewhere(type))
        {
            slot = new Slot(type, value);
            return true;
        }

        return false;
    }

    // A loop, not a lambda: a lambda capturing the type would be a closure allocated on every Set,
    // several per connection, which 10,000 connections opened at once leave to the GC.
    private bool IsSetElsewhere(Type type)
    {
        if (_slot0.Type == type || _slot1.Type == type || _slot2.Type == type || _slot3.Type == type || _slot4.Type == type || _slot5.Type == type)
        {
            return true;
        }

        foreach (var entry in _others ?? [])
        {
            if (entry.Key == type)
            {
                return true;
            }
        }

        return false;
    }

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator()
    {
        foreach (var slot in (Slot[])[_slot0, _slot1, _slot2, _slot3, _slot4, _slot5])
        {
            if (slot.Type is not null)
            {
                yield return new(slot.Type, slot.Value!);
            }
        }

        foreach (var entry in _others ?? [])
        {
            yield return entry;
        }

        foreach (var type in OwnFeatures)
        {
            if (!IsSetElsewhere(type))
            {
                yield return new(type, this);
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable<KeyValuePair<Type, object>>)this).GetEnumerator();

    private readonly record struct Slot(Type? Type, object? Value);
}

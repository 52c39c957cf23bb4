using System.Numerics;

namespace KestrelTcp.Bench;

/// <summary>
/// Log-linear latency histogram in nanoseconds: 128 sub-buckets per power of two (under 1 % error),
/// allocated once, recording is an index computation and an increment.
/// </summary>
internal sealed class Histogram
{
    private const int SubBits = 7;
    private const int Sub = 1 << SubBits;
    private readonly long[] _counts = new long[Sub * 40];

    public long Count { get; private set; }

    public long Max { get; private set; }

    public void Record(long nanos)
    {
        if (nanos < 0)
        {
            nanos = 0;
        }

        _counts[Index(nanos)]++;
        Count++;
        if (nanos > Max)
        {
            Max = nanos;
        }
    }

    public void Add(Histogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Count += other.Count;
        Max = Math.Max(Max, other.Max);
    }

    /// <summary>The value at quantile <paramref name="q"/> (0..1), in nanoseconds; 0 when empty.</summary>
    public double Quantile(double q)
    {
        if (Count == 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(q * Count);
        rank = Math.Clamp(rank, 1, Count);
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Min(Value(i), Max);
            }
        }

        return Max;
    }

    private static int Index(long v)
    {
        if (v < 2 * Sub)
        {
            return (int)v;
        }

        var shift = 63 - BitOperations.LeadingZeroCount((ulong)v) - SubBits;
        var idx = (Sub * shift) + (int)(v >> shift);
        return Math.Min(idx, (Sub * 40) - 1);
    }

    private static double Value(int idx)
    {
        if (idx < 2 * Sub)
        {
            return idx;
        }

        var shift = (idx / Sub) - 1;
        long mantissa = idx - (Sub * shift);
        return (mantissa << shift) + ((1L << shift) / 2.0);
    }
}

using KestrelTcp.Transport;

namespace KestrelTcp.Tests.Hosting;

public class LargeBlockMemoryPoolTests
{
    [Fact]
    public void Rent_ReturnsTheBlockReturnedLast_KeepsAtMostTheRetainedCount()
    {
        using var pool = new LargeBlockMemoryPoolFactory(1024, 2).Create();
        var a = pool.Rent();
        var b = pool.Rent();
        var c = pool.Rent();
        Assert.Equal(1024, a.Memory.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(1025));

        a.Dispose();
        b.Dispose();
        c.Dispose(); // a third block beyond the two retained goes to the GC

        Assert.Same(b, pool.Rent()); // last in, first out: the warmest block
        Assert.Same(a, pool.Rent());
        var fresh = pool.Rent();
        Assert.NotSame(c, fresh);
        Assert.NotSame(a, fresh);
    }

    [Fact]
    public void Dispose_KeepsNothingReturnedLater()
    {
        var pool = new LargeBlockMemoryPoolFactory(1024, 4).Create();
        var block = pool.Rent();
        pool.Dispose();
        block.Dispose();
        Assert.NotSame(block, pool.Rent());
    }
}

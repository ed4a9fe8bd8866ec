using System;

namespace Kiln.Runtime;

/// <summary>Permutations from the counter-based generator: a pure function of (key, stream, n).</summary>
internal static class Shuffling
{
    /// <summary>
    /// A uniformly random permutation of 0…<paramref name="n"/>−1 by Fisher–Yates, where the swap partner of
    /// position <c>i</c> comes from Philox block <c>(key, stream, i)</c> (64 bits, so the bias of the
    /// multiply-shift range reduction is below n/2⁶⁴).
    /// </summary>
    public static int[] Permutation(int n, ulong key, ulong stream)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "A permutation length is non-negative.");
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            var b = Philox.Block(key, stream, (ulong)i);
            ulong bits = ((ulong)b.X0 << 32) | b.X1;
            int j = (int)Math.BigMul(bits, (ulong)(i + 1), out _);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }
}

/// <summary>
/// A pseudo-random permutation of 0…n−1 evaluated one position at a time, in O(1) memory: a four-round Feistel
/// network keyed by Philox over the smallest even power of two ≥ n, with cycle walking to stay below n. For datasets
/// too large to hold a shuffled index array (hundreds of millions of token windows).
/// </summary>
internal readonly struct KeyedPermutation
{
    private readonly long _n;
    private readonly int _halfBits;
    private readonly ulong _key, _stream;

    public KeyedPermutation(long n, ulong key, ulong stream)
    {
        _n = n;
        int bits = 2;
        while (bits < 62 && (1L << bits) < n) bits += 2;
        _halfBits = bits / 2;
        _key = key;
        _stream = stream;
    }

    /// <summary>The element at position <paramref name="i"/> (0 ≤ i &lt; n).</summary>
    public long this[long i]
    {
        get
        {
            long x = i;
            do x = Encrypt(x); while (x >= _n);
            return x;
        }
    }

    private long Encrypt(long x)
    {
        ulong mask = (1UL << _halfBits) - 1;
        ulong left = (ulong)x >> _halfBits, right = (ulong)x & mask;
        for (ulong round = 0; round < 4; round++)
        {
            var b = Philox.Block(_key, _stream, (round << 56) | right);
            (left, right) = (right, (left ^ b.X0 ^ ((ulong)b.X1 << 32)) & mask);
        }
        return (long)((left << _halfBits) | right);
    }
}

/// <summary>
/// Hands out training indices epoch by epoch: each epoch is a fresh permutation keyed by (seed, epoch),
/// read front to back; a batch never straddles two epochs (the remainder of an epoch smaller than a
/// batch is dropped), so no example repeats within an epoch and every batch has the same size.
/// </summary>
internal sealed class EpochSampler
{
    /// <summary>Above this many examples an epoch's order is computed per position instead of held as an array.</summary>
    internal const int MaterializedLimit = 1 << 24;

    private readonly int _count;
    private readonly ulong _seed;
    private int[]? _order;
    private KeyedPermutation _lazy;
    private int _position;

    public EpochSampler(int count, ulong seed) : this(count, seed, 0, 0) { }

    /// <summary>A sampler that continues where one over the same <paramref name="count"/> and <paramref name="seed"/> stood (a checkpoint's data position).</summary>
    public EpochSampler(int count, ulong seed, long epoch, int position)
    {
        if (epoch < 0 || position < 0 || position > count)
            throw new ArgumentOutOfRangeException(nameof(position), $"Data position (epoch {epoch}, example {position}) is outside an epoch of {count} examples.");
        _count = count;
        _seed = seed;
        Epoch = epoch;
        _position = position;
        Shuffle();
    }

    private void Shuffle()
    {
        if (_count <= MaterializedLimit) _order = Shuffling.Permutation(_count, _seed, RandomStreams.EpochShuffle(Epoch));
        else _lazy = new KeyedPermutation(_count, _seed, RandomStreams.EpochShuffle(Epoch));
    }

    /// <summary>The epoch the next batch comes from.</summary>
    public long Epoch { get; private set; }

    /// <summary>Examples of the current epoch already handed out.</summary>
    public int Position => _position;

    /// <summary>The number of examples per epoch.</summary>
    public int Count => _count;

    /// <summary>Writes the next <c>destination.Length</c> indices.</summary>
    public void Next(Span<int> destination)
    {
        if (destination.Length > _count)
            throw new InvalidOperationException($"A batch of {destination.Length} examples cannot be drawn without repeats from {_count} examples.");
        if (_position + destination.Length > _count)
        {
            Epoch++;
            Shuffle();
            _position = 0;
        }
        if (_order is not null) _order.AsSpan(_position, destination.Length).CopyTo(destination);
        else for (int i = 0; i < destination.Length; i++) destination[i] = (int)_lazy[_position + i];
        _position += destination.Length;
    }
}

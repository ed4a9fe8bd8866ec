using System;

namespace Kiln.Runtime;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
/// counter-based generator. Each output block is a pure function of a 128-bit counter and a 64-bit
/// key, so any element of any random tensor can be drawn independently of the others: CPU, GPU and
/// every sharding of a tensor draw the same numbers, and resuming needs only the counters.
/// </summary>
/// <remarks>
/// <para>Word order. The 64-bit arguments map to the 32-bit words of the reference algorithm
/// low word first: <c>key = k1·2³² + k0</c>, <c>counterLo = c1·2³² + c0</c>,
/// <c>counterHi = c3·2³² + c2</c>. With that order the Random123 known-answer vectors can be checked
/// through <see cref="Block(uint, uint, uint, uint, uint, uint)"/>.</para>
/// <para>Element addressing. The scalar helpers and the span fillers address a stream of 32-bit
/// words: element <c>i</c> of stream <c>s</c> under key <c>k</c> reads word <c>i mod 4</c> of
/// <c>Block(k, s, i / 4)</c>. A normal draw pairs words (0, 1) and (2, 3) of a block for
/// Box–Muller and returns the cosine branch for even <c>i</c> and the sine branch for odd <c>i</c>.
/// Another backend reproduces the numbers by following these two rules.</para>
/// </remarks>
public static class Philox
{
    // Round multipliers and Weyl key increments from the Philox paper (and Random123).
    private const uint M0 = 0xD2511F53u;
    private const uint M1 = 0xCD9E8D57u;
    private const uint W0 = 0x9E3779B9u;
    private const uint W1 = 0xBB67AE85u;

    /// <summary>2⁻²⁴: maps the top 24 bits of a word onto the floats of [0, 1) spaced evenly.</summary>
    private const float Unit24 = 1.0f / 16777216.0f;

    /// <summary>2⁻³².</summary>
    private const double Unit32 = 1.0 / 4294967296.0;

    private const double TwoPi = 2.0 * Math.PI;

    /// <summary>
    /// One Philox4x32-10 block in the reference word order: counter words <paramref name="c0"/>…<paramref name="c3"/>
    /// and key words <paramref name="k0"/>, <paramref name="k1"/>.
    /// </summary>
    /// <returns>The four output words, <c>X0</c> first.</returns>
    public static (uint X0, uint X1, uint X2, uint X3) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        Rounds(ref c0, ref c1, ref c2, ref c3, k0, k1);
        return (c0, c1, c2, c3);
    }

    /// <summary>
    /// One Philox4x32-10 block for a 64-bit key and a 128-bit counter split into
    /// <paramref name="counterHi"/> (the stream, by Kiln's convention) and <paramref name="counterLo"/>
    /// (the block index within the stream). See the remarks on <see cref="Philox"/> for the word order.
    /// </summary>
    /// <returns>The four output words, <c>X0</c> first.</returns>
    public static (uint X0, uint X1, uint X2, uint X3) Block(ulong key, ulong counterHi, ulong counterLo)
    {
        uint c0 = (uint)counterLo, c1 = (uint)(counterLo >> 32), c2 = (uint)counterHi, c3 = (uint)(counterHi >> 32);
        Rounds(ref c0, ref c1, ref c2, ref c3, (uint)key, (uint)(key >> 32));
        return (c0, c1, c2, c3);
    }

    /// <summary>
    /// A uniform float in [0, 1) with 24 random bits (every representable step of 2⁻²⁴): element
    /// <paramref name="index"/> of stream <paramref name="stream"/> under <paramref name="key"/>.
    /// </summary>
    public static float Uniform(ulong key, ulong stream, ulong index)
    {
        var b = Block(key, stream, index >> 2);
        return ToUnit((index & 3) switch { 0 => b.X0, 1 => b.X1, 2 => b.X2, _ => b.X3 });
    }

    /// <summary>
    /// A standard normal float: element <paramref name="index"/> of stream <paramref name="stream"/>
    /// under <paramref name="key"/>, by Box–Muller on one pair of words of one block (so four normals
    /// come from one block).
    /// </summary>
    public static float Normal(ulong key, ulong stream, ulong index)
    {
        var b = Block(key, stream, index >> 2);
        int lane = (int)(index & 3);
        var (radiusWord, angleWord) = lane < 2 ? (b.X0, b.X1) : (b.X2, b.X3);
        BoxMuller(radiusWord, angleWord, out double z0, out double z1);
        return (float)((lane & 1) == 0 ? z0 : z1);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with uniform floats in [<paramref name="lo"/>, <paramref name="hi"/>):
    /// <c>destination[j] = lo + (hi − lo)·Uniform(key, stream, firstIndex + j)</c>.
    /// </summary>
    /// <param name="destination">The elements to write.</param>
    /// <param name="lo">Inclusive lower bound.</param>
    /// <param name="hi">Upper bound (exclusive up to float rounding of the affine map).</param>
    /// <param name="key">Generator key (Kiln uses the run seed).</param>
    /// <param name="stream">Stream id: which random tensor this is.</param>
    /// <param name="firstIndex">Element index of <c>destination[0]</c> within the stream, for a shard that starts mid-tensor.</param>
    public static void FillUniform(Span<float> destination, float lo, float hi, ulong key, ulong stream, ulong firstIndex = 0)
    {
        if (!float.IsFinite(lo) || !float.IsFinite(hi) || hi < lo)
            throw new ArgumentException($"FillUniform needs finite bounds with lo ≤ hi; got lo={lo}, hi={hi}.", nameof(hi));
        float width = hi - lo;
        CheckRange(destination.Length, firstIndex);
        uint k0 = (uint)key, k1 = (uint)(key >> 32), s0 = (uint)stream, s1 = (uint)(stream >> 32);
        ulong block = firstIndex >> 2;
        int lane = (int)(firstIndex & 3);
        Span<uint> words = stackalloc uint[4];
        for (int j = 0; j < destination.Length; block++, lane = 0)
        {
            BlockWords(block, s0, s1, k0, k1, words);
            for (; lane < 4 && j < destination.Length; lane++, j++)
                destination[j] = lo + width * ToUnit(words[lane]);
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with normal floats:
    /// <c>destination[j] = mean + std·Normal(key, stream, firstIndex + j)</c>.
    /// </summary>
    /// <param name="destination">The elements to write.</param>
    /// <param name="mean">Mean.</param>
    /// <param name="std">Standard deviation (non-negative).</param>
    /// <param name="key">Generator key (Kiln uses the run seed).</param>
    /// <param name="stream">Stream id: which random tensor this is.</param>
    /// <param name="firstIndex">Element index of <c>destination[0]</c> within the stream, for a shard that starts mid-tensor.</param>
    public static void FillNormal(Span<float> destination, float mean, float std, ulong key, ulong stream, ulong firstIndex = 0)
    {
        if (!float.IsFinite(mean) || !float.IsFinite(std) || std < 0)
            throw new ArgumentException($"FillNormal needs a finite mean and a finite, non-negative std; got mean={mean}, std={std}.", nameof(std));
        CheckRange(destination.Length, firstIndex);
        uint k0 = (uint)key, k1 = (uint)(key >> 32), s0 = (uint)stream, s1 = (uint)(stream >> 32);
        ulong block = firstIndex >> 2;
        int lane = (int)(firstIndex & 3);
        Span<uint> words = stackalloc uint[4];
        Span<double> z = stackalloc double[4];
        for (int j = 0; j < destination.Length; block++, lane = 0)
        {
            BlockWords(block, s0, s1, k0, k1, words);
            // Both pairs are transformed even when only part of the block is wanted; the block is the unit of cost anyway.
            BoxMuller(words[0], words[1], out z[0], out z[1]);
            BoxMuller(words[2], words[3], out z[2], out z[3]);
            for (; lane < 4 && j < destination.Length; lane++, j++)
                destination[j] = mean + std * (float)z[lane];
        }
    }

    /// <summary>The top 24 bits of <paramref name="word"/> as a float in [0, 1).</summary>
    internal static float ToUnit(uint word) => (word >> 8) * Unit24;

    private static void CheckRange(int length, ulong firstIndex)
    {
        if (firstIndex + (ulong)length < firstIndex)
            throw new ArgumentOutOfRangeException(nameof(firstIndex), firstIndex, "The element range runs past the end of the 64-bit index space of the stream.");
    }

    private static void BlockWords(ulong block, uint s0, uint s1, uint k0, uint k1, Span<uint> words)
    {
        uint c0 = (uint)block, c1 = (uint)(block >> 32), c2 = s0, c3 = s1;
        Rounds(ref c0, ref c1, ref c2, ref c3, k0, k1);
        words[0] = c0; words[1] = c1; words[2] = c2; words[3] = c3;
    }

    private static void BoxMuller(uint radiusWord, uint angleWord, out double z0, out double z1)
    {
        // (w + 1)·2⁻³² lies in (0, 1], so the logarithm is finite for every word.
        double u1 = (radiusWord + 1.0) * Unit32;
        double u2 = angleWord * Unit32;
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        var (sin, cos) = Math.SinCos(TwoPi * u2);
        z0 = r * cos;
        z1 = r * sin;
    }

    private static void Rounds(ref uint c0, ref uint c1, ref uint c2, ref uint c3, uint k0, uint k1)
    {
        // Ten rounds; the key is bumped between rounds (nine times), as in Random123's philox4x32_R.
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1);
        for (int r = 1; r < 10; r++)
        {
            k0 += W0;
            k1 += W1;
            Round(ref c0, ref c1, ref c2, ref c3, k0, k1);
        }
    }

    private static void Round(ref uint c0, ref uint c1, ref uint c2, ref uint c3, uint k0, uint k1)
    {
        ulong p0 = (ulong)M0 * c0;
        ulong p1 = (ulong)M1 * c2;
        uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
        uint n1 = (uint)p1;
        uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
        uint n3 = (uint)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    }
}

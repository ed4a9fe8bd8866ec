using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Runtime.Precision;

/// <summary>
/// bfloat16 (1 sign, 8 exponent, 7 mantissa bits: the top half of an IEEE binary32) stored as a
/// <see cref="ushort"/>, and the float ↔ bf16 conversions mixed-precision training needs. The CPU
/// backend uses <see cref="Round(float)"/> and its span forms to emulate bf16 storage in float buffers.
/// </summary>
/// <remarks>
/// <para>Float → bf16 rounds to nearest, ties to even (RNE). Finite values at or above
/// <c>MaxValue + ulp/2</c> (float bits <c>0x7F7F8000</c>) overflow to ±∞. Because bf16 shares the
/// float exponent range, float subnormals round onto bf16 subnormals by the same rule. A NaN stays a
/// NaN of the same sign: the top seven payload bits are kept and the quiet bit (<c>0x0040</c>) is set,
/// so a NaN whose payload lies only in the discarded bits cannot turn into ∞.</para>
/// <para>bf16 → float is exact: the bits move to the top half (<c>bits &lt;&lt; 16</c>), NaN payloads included,
/// as on GPUs and in PyTorch. Decoding then encoding gives back every pattern except a signalling NaN,
/// which comes back with its quiet bit set.</para>
/// <para>Stochastic rounding. An element with discarded fraction <c>f</c> (the low 16 bits of its float
/// encoding read as <c>f·2⁻¹⁶</c> of a bf16 ulp) is rounded away from zero when the element's random
/// word <c>w</c> satisfies <c>w &lt; f·2³²</c>, that is with probability exactly <c>f</c>, and toward
/// zero otherwise, so the expected result equals the input. Element <c>i</c> of a span draws word
/// <c>(firstIndex + i) mod 4</c> of <c>Philox.Block(seed, stream, (firstIndex + i) / 4)</c>: the same
/// element addressing as <see cref="Philox.Uniform(ulong, ulong, ulong)"/>, so any backend and any
/// sharding of a tensor round it identically. Values above <c>MaxValue</c> round to ∞ with that same
/// probability (∞ plays the part of the next value up); NaN and ∞ are handled as in RNE.</para>
/// <para>The span forms use <see cref="Vector512{T}"/> or <see cref="Vector256{T}"/> integer operations
/// when the hardware accelerates them and a scalar loop otherwise; every path gives the same bits.</para>
/// </remarks>
public static class Bf16
{
    /// <summary>Bits of +∞.</summary>
    public const ushort PositiveInfinityBits = 0x7F80;

    /// <summary>Bits of −∞.</summary>
    public const ushort NegativeInfinityBits = 0xFF80;

    /// <summary>Bits of the canonical quiet NaN.</summary>
    public const ushort NaNBits = 0x7FC0;

    /// <summary>Bits of the largest finite bf16, <see cref="MaxValue"/>.</summary>
    public const ushort MaxValueBits = 0x7F7F;

    /// <summary>The largest finite bf16, (2 − 2⁻⁷)·2¹²⁷ ≈ 3.3895e38.</summary>
    public const float MaxValue = 3.38953139e38f;

    /// <summary>The spacing of bf16 values just above 1: 2⁻⁷.</summary>
    public const float Epsilon = 0.0078125f;

    // Elements per stochastic-rounding chunk (noise is drawn into a stack buffer of this size).
    private const int Chunk = 256;

    // ---------------------------------------------------------------------------------------------
    // Scalar conversions.

    /// <summary>Rounds <paramref name="value"/> to the nearest bf16 (ties to even) and returns its bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float value) => (ushort)(RoundBits(BitConverter.SingleToUInt32Bits(value)) >> 16);

    /// <summary>The float value of the bf16 with bits <paramref name="bits"/> (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>
    /// <paramref name="value"/> rounded to the nearest bf16 (ties to even) and widened back to float:
    /// <c>ToFloat(FromFloat(value))</c>, the value a bf16 buffer would hold.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float value) => BitConverter.UInt32BitsToSingle(RoundBits(BitConverter.SingleToUInt32Bits(value)));

    /// <summary>
    /// Rounds <paramref name="value"/> to bf16 stochastically with the given 32-bit random word (see
    /// the remarks on <see cref="Bf16"/>) and returns the bits.
    /// </summary>
    /// <param name="value">The value to round.</param>
    /// <param name="randomWord">A uniformly distributed 32-bit word; the same word always gives the same result.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloatStochastic(float value, uint randomWord) =>
        (ushort)(StochasticBits(BitConverter.SingleToUInt32Bits(value), randomWord) >> 16);

    /// <summary>
    /// <paramref name="value"/> rounded to bf16 stochastically with <paramref name="randomWord"/> and
    /// widened back to float: <c>ToFloat(FromFloatStochastic(value, randomWord))</c>.
    /// </summary>
    /// <param name="value">The value to round.</param>
    /// <param name="randomWord">A uniformly distributed 32-bit word; the same word always gives the same result.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundStochastic(float value, uint randomWord) =>
        BitConverter.UInt32BitsToSingle(StochasticBits(BitConverter.SingleToUInt32Bits(value), randomWord));

    /// <summary>RNE on float bits: the float bits of the bf16 result (low 16 bits zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint RoundBits(uint bits)
    {
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u) return (bits | 0x0040_0000u) & 0xFFFF_0000u;
        // Adding 0x7FFF plus the kept lsb rounds half-way cases to the even neighbour; a carry out of the
        // mantissa bumps the exponent, which is what rounding up across a binade (or to ∞) means.
        return (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF_0000u;
    }

    /// <summary>Stochastic rounding on float bits: the float bits of the bf16 result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint StochasticBits(uint bits, uint word)
    {
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u) return (bits | 0x0040_0000u) & 0xFFFF_0000u;
        return (bits & 0xFFFF_0000u) + (word < bits << 16 ? 0x1_0000u : 0u);
    }

    // ---------------------------------------------------------------------------------------------
    // Span conversions.

    /// <summary>
    /// Rounds every element of <paramref name="source"/> to bf16 (RNE) into <paramref name="destination"/>.
    /// </summary>
    /// <param name="source">Float values.</param>
    /// <param name="destination">bf16 bits; at least as long as <paramref name="source"/>, and not overlapping it.</param>
    public static void FromFloat(ReadOnlySpan<float> source, Span<ushort> destination) =>
        FromFloat(source, destination, PrecisionSimd.Best);

    /// <summary>Widens every bf16 in <paramref name="source"/> to float into <paramref name="destination"/> (exact).</summary>
    /// <param name="source">bf16 bits.</param>
    /// <param name="destination">Floats; at least as long as <paramref name="source"/>, and not overlapping it.</param>
    public static void ToFloat(ReadOnlySpan<ushort> source, Span<float> destination) =>
        ToFloat(source, destination, PrecisionSimd.Best);

    /// <summary>Rounds every element of <paramref name="values"/> through bf16 (RNE) in place.</summary>
    public static void Round(Span<float> values) => Round(values, values, PrecisionSimd.Best);

    /// <summary>
    /// Writes <c>Round(source[i])</c> to <c>destination[i]</c>. The two spans may be the same memory but must
    /// not overlap partially.
    /// </summary>
    /// <param name="source">Float values.</param>
    /// <param name="destination">Rounded floats; at least as long as <paramref name="source"/>.</param>
    public static void Round(ReadOnlySpan<float> source, Span<float> destination) =>
        Round(source, destination, PrecisionSimd.Best);

    /// <summary>
    /// Rounds every element of <paramref name="values"/> through bf16 stochastically, in place. Element
    /// <c>i</c> depends only on its value and on (<paramref name="seed"/>, <paramref name="stream"/>,
    /// <paramref name="firstIndex"/> + <c>i</c>); see the remarks on <see cref="Bf16"/>.
    /// </summary>
    /// <param name="values">The values to round.</param>
    /// <param name="seed">Philox key (Kiln uses the run seed).</param>
    /// <param name="stream">Philox stream: which rounding of which tensor this is (for example derived from step and tensor).</param>
    /// <param name="firstIndex">Element index of <c>values[0]</c> within the stream, for a shard that starts mid-tensor.</param>
    public static void RoundStochastic(Span<float> values, ulong seed, ulong stream, ulong firstIndex = 0) =>
        RoundStochastic(values, values, seed, stream, firstIndex, PrecisionSimd.Best);

    /// <summary>
    /// Writes the stochastic bf16 rounding of <c>source[i]</c> to <c>destination[i]</c> (see
    /// <see cref="RoundStochastic(Span{float}, ulong, ulong, ulong)"/>). The spans may be the same memory but
    /// must not overlap partially.
    /// </summary>
    /// <param name="source">Float values.</param>
    /// <param name="destination">Rounded floats; at least as long as <paramref name="source"/>.</param>
    /// <param name="seed">Philox key.</param>
    /// <param name="stream">Philox stream.</param>
    /// <param name="firstIndex">Element index of <c>source[0]</c> within the stream.</param>
    public static void RoundStochastic(ReadOnlySpan<float> source, Span<float> destination, ulong seed, ulong stream, ulong firstIndex = 0) =>
        RoundStochastic(source, destination, seed, stream, firstIndex, PrecisionSimd.Best);

    /// <summary>
    /// Rounds every element of <paramref name="source"/> to bf16 stochastically into <paramref name="destination"/>
    /// (the bits of <see cref="RoundStochastic(ReadOnlySpan{float}, Span{float}, ulong, ulong, ulong)"/>).
    /// </summary>
    /// <param name="source">Float values.</param>
    /// <param name="destination">bf16 bits; at least as long as <paramref name="source"/>, and not overlapping it.</param>
    /// <param name="seed">Philox key.</param>
    /// <param name="stream">Philox stream.</param>
    /// <param name="firstIndex">Element index of <c>source[0]</c> within the stream.</param>
    public static void FromFloatStochastic(ReadOnlySpan<float> source, Span<ushort> destination, ulong seed, ulong stream, ulong firstIndex = 0) =>
        FromFloatStochastic(source, destination, seed, stream, firstIndex, PrecisionSimd.Best);

    // ---------------------------------------------------------------------------------------------
    // Implementations with an explicit SIMD width (internal so tests can compare the paths).

    internal static void FromFloat(ReadOnlySpan<float> source, Span<ushort> destination, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        ref uint src = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(source));
        ref ushort dst = ref MemoryMarshal.GetReference(destination);
        int n = source.Length, i = 0;
        if (width == SimdWidth.V512)
        {
            for (; i <= n - 32; i += 32)
            {
                var lo = RoundBits(Vector512.LoadUnsafe(ref src, (nuint)i)) >>> 16;
                var hi = RoundBits(Vector512.LoadUnsafe(ref src, (nuint)(i + 16))) >>> 16;
                Vector512.Narrow(lo, hi).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 16; i += 16)
            {
                var lo = RoundBits(Vector256.LoadUnsafe(ref src, (nuint)i)) >>> 16;
                var hi = RoundBits(Vector256.LoadUnsafe(ref src, (nuint)(i + 8))) >>> 16;
                Vector256.Narrow(lo, hi).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = (ushort)(RoundBits(Unsafe.Add(ref src, i)) >> 16);
    }

    internal static void ToFloat(ReadOnlySpan<ushort> source, Span<float> destination, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        ref ushort src = ref MemoryMarshal.GetReference(source);
        ref uint dst = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
        int n = source.Length, i = 0;
        if (width == SimdWidth.V512)
        {
            for (; i <= n - 32; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref src, (nuint)i));
                (lo << 16).StoreUnsafe(ref dst, (nuint)i);
                (hi << 16).StoreUnsafe(ref dst, (nuint)(i + 16));
            }
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 16; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref src, (nuint)i));
                (lo << 16).StoreUnsafe(ref dst, (nuint)i);
                (hi << 16).StoreUnsafe(ref dst, (nuint)(i + 8));
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = (uint)Unsafe.Add(ref src, i) << 16;
    }

    internal static void Round(ReadOnlySpan<float> source, Span<float> destination, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        ref uint src = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(source));
        ref uint dst = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
        int n = source.Length, i = 0;
        if (width == SimdWidth.V512)
        {
            for (; i <= n - 16; i += 16)
                (RoundBits(Vector512.LoadUnsafe(ref src, (nuint)i)) & Vector512.Create(0xFFFF_0000u)).StoreUnsafe(ref dst, (nuint)i);
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 8; i += 8)
                (RoundBits(Vector256.LoadUnsafe(ref src, (nuint)i)) & Vector256.Create(0xFFFF_0000u)).StoreUnsafe(ref dst, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = RoundBits(Unsafe.Add(ref src, i));
    }

    internal static void RoundStochastic(ReadOnlySpan<float> source, Span<float> destination, ulong seed, ulong stream, ulong firstIndex, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        RoundingNoise.CheckRange(source.Length, firstIndex);
        Span<uint> noise = stackalloc uint[Chunk];
        for (int start = 0; start < source.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, source.Length - start);
            RoundingNoise.Fill(noise[..len], seed, stream, firstIndex + (ulong)start, width);
            StochasticChunk(source.Slice(start, len), noise, destination.Slice(start, len), width);
        }
    }

    internal static void FromFloatStochastic(ReadOnlySpan<float> source, Span<ushort> destination, ulong seed, ulong stream, ulong firstIndex, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        RoundingNoise.CheckRange(source.Length, firstIndex);
        Span<uint> noise = stackalloc uint[Chunk];
        Span<float> rounded = stackalloc float[Chunk];
        for (int start = 0; start < source.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, source.Length - start);
            RoundingNoise.Fill(noise[..len], seed, stream, firstIndex + (ulong)start, width);
            StochasticChunk(source.Slice(start, len), noise, rounded, width);
            // The rounded floats have zero low halves, so truncation to the top half is exact.
            TruncateToUpperHalf(rounded[..len], destination.Slice(start, len), width);
        }
    }

    /// <summary>Stochastic rounding with caller-supplied words, <c>words[i]</c> for element <c>i</c> (tests drive the decision boundary with it).</summary>
    internal static void RoundStochastic(ReadOnlySpan<float> source, ReadOnlySpan<uint> words, Span<float> destination, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        PrecisionSimd.CheckDestination(source.Length, words.Length);
        StochasticChunk(source, words, destination, width);
    }

    private static void StochasticChunk(ReadOnlySpan<float> source, ReadOnlySpan<uint> noise, Span<float> destination, SimdWidth width)
    {
        ref uint src = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(source));
        ref uint rnd = ref MemoryMarshal.GetReference(noise);
        ref uint dst = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
        int n = source.Length, i = 0;
        if (width == SimdWidth.V512)
        {
            for (; i <= n - 16; i += 16)
                StochasticBits(Vector512.LoadUnsafe(ref src, (nuint)i), Vector512.LoadUnsafe(ref rnd, (nuint)i)).StoreUnsafe(ref dst, (nuint)i);
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 8; i += 8)
                StochasticBits(Vector256.LoadUnsafe(ref src, (nuint)i), Vector256.LoadUnsafe(ref rnd, (nuint)i)).StoreUnsafe(ref dst, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = StochasticBits(Unsafe.Add(ref src, i), Unsafe.Add(ref rnd, i));
    }

    private static void TruncateToUpperHalf(ReadOnlySpan<float> source, Span<ushort> destination, SimdWidth width)
    {
        ref uint src = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(source));
        ref ushort dst = ref MemoryMarshal.GetReference(destination);
        int n = source.Length, i = 0;
        if (width == SimdWidth.V512)
        {
            for (; i <= n - 32; i += 32)
                Vector512.Narrow(Vector512.LoadUnsafe(ref src, (nuint)i) >>> 16, Vector512.LoadUnsafe(ref src, (nuint)(i + 16)) >>> 16).StoreUnsafe(ref dst, (nuint)i);
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 16; i += 16)
                Vector256.Narrow(Vector256.LoadUnsafe(ref src, (nuint)i) >>> 16, Vector256.LoadUnsafe(ref src, (nuint)(i + 8)) >>> 16).StoreUnsafe(ref dst, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = (ushort)(Unsafe.Add(ref src, i) >> 16);
    }

    // ---------------------------------------------------------------------------------------------
    // Vector kernels: the scalar rules above, lane by lane. The results keep float layout (bf16 bits in
    // the top half, except where a caller shifts them down).

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> RoundBits(Vector512<uint> bits)
    {
        var isNaN = Vector512.GreaterThan(bits & Vector512.Create(0x7FFF_FFFFu), Vector512.Create(0x7F80_0000u));
        var rounded = bits + Vector512.Create(0x7FFFu) + ((bits >>> 16) & Vector512<uint>.One);
        return Vector512.ConditionalSelect(isNaN, bits | Vector512.Create(0x0040_0000u), rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> RoundBits(Vector256<uint> bits)
    {
        var isNaN = Vector256.GreaterThan(bits & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u));
        var rounded = bits + Vector256.Create(0x7FFFu) + ((bits >>> 16) & Vector256<uint>.One);
        return Vector256.ConditionalSelect(isNaN, bits | Vector256.Create(0x0040_0000u), rounded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> StochasticBits(Vector512<uint> bits, Vector512<uint> word)
    {
        var isNaN = Vector512.GreaterThan(bits & Vector512.Create(0x7FFF_FFFFu), Vector512.Create(0x7F80_0000u));
        var up = Vector512.LessThan(word, bits << 16) & Vector512.Create(0x1_0000u);
        var result = Vector512.ConditionalSelect(isNaN, bits | Vector512.Create(0x0040_0000u), (bits & Vector512.Create(0xFFFF_0000u)) + up);
        return result & Vector512.Create(0xFFFF_0000u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> StochasticBits(Vector256<uint> bits, Vector256<uint> word)
    {
        var isNaN = Vector256.GreaterThan(bits & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u));
        var up = Vector256.LessThan(word, bits << 16) & Vector256.Create(0x1_0000u);
        var result = Vector256.ConditionalSelect(isNaN, bits | Vector256.Create(0x0040_0000u), (bits & Vector256.Create(0xFFFF_0000u)) + up);
        return result & Vector256.Create(0xFFFF_0000u);
    }
}

/// <summary>Which vector width a span conversion uses (internal so tests can run every path).</summary>
internal enum SimdWidth
{
    /// <summary>One element at a time.</summary>
    Scalar = 0,

    /// <summary><see cref="Vector256{T}"/> lanes, then the scalar tail.</summary>
    V256 = 1,

    /// <summary><see cref="Vector512{T}"/> lanes, then <see cref="Vector256{T}"/>, then the scalar tail.</summary>
    V512 = 2,
}

/// <summary>Shared helpers of the precision conversions.</summary>
internal static class PrecisionSimd
{
    /// <summary>The widest path the hardware accelerates.</summary>
    public static SimdWidth Best { get; } =
        Vector512.IsHardwareAccelerated ? SimdWidth.V512
        : Vector256.IsHardwareAccelerated ? SimdWidth.V256
        : SimdWidth.Scalar;

    public static void CheckDestination(int sourceLength, int destinationLength)
    {
        if (destinationLength < sourceLength)
            throw new ArgumentException($"The destination holds {destinationLength} elements but the source has {sourceLength}.", "destination");
    }
}

/// <summary>
/// The random words stochastic rounding draws: word <c>j</c> of a fill starting at element
/// <c>firstIndex</c> is word <c>(firstIndex + j) mod 4</c> of <c>Philox.Block(seed, stream, (firstIndex + j) / 4)</c>.
/// Whole blocks are generated sixteen (AVX-512) or four (AVX2) at a time; the rest use <see cref="Philox.Block(ulong, ulong, ulong)"/>.
/// </summary>
internal static class RoundingNoise
{
    // Philox4x32 round multipliers and key increments (Salmon et al. 2011); Philox.Block is the reference.
    private const uint M0 = 0xD2511F53u;
    private const uint M1 = 0xCD9E8D57u;
    private const uint W0 = 0x9E3779B9u;
    private const uint W1 = 0xBB67AE85u;

    public static void CheckRange(int length, ulong firstIndex)
    {
        if (firstIndex + (ulong)length < firstIndex)
            throw new ArgumentOutOfRangeException(nameof(firstIndex), firstIndex, "The element range runs past the end of the 64-bit index space of the stream.");
    }

    /// <summary>Fills <paramref name="words"/> with the words of elements <paramref name="firstIndex"/>… of the stream.</summary>
    public static void Fill(Span<uint> words, ulong seed, ulong stream, ulong firstIndex, SimdWidth width)
    {
        int n = words.Length, j = 0;
        ulong index = firstIndex;
        // A fill that starts mid-block takes the tail of that block first.
        if ((index & 3) != 0 && n > 0)
        {
            var b = Philox.Block(seed, stream, index >> 2);
            for (int lane = (int)(index & 3); lane < 4 && j < n; lane++, j++, index++)
                words[j] = Word(b, lane);
        }
        ref uint dst = ref MemoryMarshal.GetReference(words);
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32), s0 = (uint)stream, s1 = (uint)(stream >> 32);
        if (width == SimdWidth.V512 && Avx512F.IsSupported)
        {
            for (; n - j >= 64; j += 64, index += 64)
                Blocks16(index >> 2, k0, k1, s0, s1, ref Unsafe.Add(ref dst, j));
        }
        if (width >= SimdWidth.V256 && Avx2.IsSupported)
        {
            for (; n - j >= 16; j += 16, index += 16)
                Blocks4(index >> 2, k0, k1, s0, s1, ref Unsafe.Add(ref dst, j));
        }
        while (j < n)
        {
            var b = Philox.Block(seed, stream, index >> 2);
            for (int lane = 0; lane < 4 && j < n; lane++, j++, index++)
                words[j] = Word(b, lane);
        }
    }

    private static uint Word((uint X0, uint X1, uint X2, uint X3) b, int lane) =>
        lane switch { 0 => b.X0, 1 => b.X1, 2 => b.X2, _ => b.X3 };

    /// <summary>Blocks <paramref name="block"/>…+15, 64 words in element order, written at <paramref name="dst"/>.</summary>
    private static void Blocks16(ulong block, uint k0, uint k1, uint s0, uint s1, ref uint dst)
    {
        // Each 64-bit lane carries one block's 32-bit word in its low half; vpmuludq multiplies the low
        // halves into full 64-bit products, which is exactly the Philox mulhilo. Two independent groups of
        // eight blocks are interleaved so one group's multiplies overlap the other's dependency chain.
        var low = Vector512.Create(0xFFFF_FFFFul);
        var lanes = Vector512.Create(0ul, 1, 2, 3, 4, 5, 6, 7);
        var blocksA = Vector512.Create(block) + lanes;
        var blocksB = Vector512.Create(block + 8) + lanes;
        Vector512<ulong> a0 = blocksA & low, a1 = blocksA >>> 32, a2 = Vector512.Create((ulong)s0), a3 = Vector512.Create((ulong)s1);
        Vector512<ulong> b0 = blocksB & low, b1 = blocksB >>> 32, b2 = a2, b3 = a3;
        var m0 = Vector512.Create((ulong)M0).AsUInt32();
        var m1 = Vector512.Create((ulong)M1).AsUInt32();
        for (int r = 0; r < 10; r++)
        {
            var key0 = Vector512.Create((ulong)k0);
            var key1 = Vector512.Create((ulong)k1);
            var pa0 = Avx512F.Multiply(a0.AsUInt32(), m0);
            var pa1 = Avx512F.Multiply(a2.AsUInt32(), m1);
            var pb0 = Avx512F.Multiply(b0.AsUInt32(), m0);
            var pb1 = Avx512F.Multiply(b2.AsUInt32(), m1);
            a0 = (pa1 >>> 32) ^ a1 ^ key0; a1 = pa1 & low; a2 = (pa0 >>> 32) ^ a3 ^ key1; a3 = pa0 & low;
            b0 = (pb1 >>> 32) ^ b1 ^ key0; b1 = pb1 & low; b2 = (pb0 >>> 32) ^ b3 ^ key1; b3 = pb0 & low;
            k0 += W0; k1 += W1;
        }
        Store8(a0, a1, a2, a3, ref dst);
        Store8(b0, b1, b2, b3, ref Unsafe.Add(ref dst, 32));
    }

    /// <summary>Writes the words of eight blocks (word <c>k</c> of each block in lane order of <paramref name="w0"/>…<paramref name="w3"/>) in element order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store8(Vector512<ulong> w0, Vector512<ulong> w1, Vector512<ulong> w2, Vector512<ulong> w3, ref uint dst)
    {
        // Pair words (0,1) and (2,3) of each block into 64-bit lanes, then interleave the blocks.
        var a = w0 | (w1 << 32);
        var b = w2 | (w3 << 32);
        Avx512F.PermuteVar8x64x2(a, Vector512.Create(0ul, 8, 1, 9, 2, 10, 3, 11), b).AsUInt32().StoreUnsafe(ref dst);
        Avx512F.PermuteVar8x64x2(a, Vector512.Create(4ul, 12, 5, 13, 6, 14, 7, 15), b).AsUInt32().StoreUnsafe(ref dst, 16);
    }

    /// <summary>Blocks <paramref name="block"/>…+3, 16 words in element order, written at <paramref name="dst"/>.</summary>
    private static void Blocks4(ulong block, uint k0, uint k1, uint s0, uint s1, ref uint dst)
    {
        var low = Vector256.Create(0xFFFF_FFFFul);
        var blocks = Vector256.Create(block) + Vector256.Create(0ul, 1, 2, 3);
        Vector256<ulong> c0 = blocks & low, c1 = blocks >>> 32, c2 = Vector256.Create((ulong)s0), c3 = Vector256.Create((ulong)s1);
        var m0 = Vector256.Create((ulong)M0).AsUInt32();
        var m1 = Vector256.Create((ulong)M1).AsUInt32();
        for (int r = 0; r < 10; r++)
        {
            var p0 = Avx2.Multiply(c0.AsUInt32(), m0);
            var p1 = Avx2.Multiply(c2.AsUInt32(), m1);
            var n0 = (p1 >>> 32) ^ c1 ^ Vector256.Create((ulong)k0);
            var n2 = (p0 >>> 32) ^ c3 ^ Vector256.Create((ulong)k1);
            c0 = n0; c1 = p1 & low; c2 = n2; c3 = p0 & low;
            k0 += W0; k1 += W1;
        }
        var a = c0 | (c1 << 32);
        var b = c2 | (c3 << 32);
        var even = Avx2.UnpackLow(a, b);   // blocks 0, 2
        var odd = Avx2.UnpackHigh(a, b);   // blocks 1, 3
        Avx2.Permute2x128(even, odd, 0x20).AsUInt32().StoreUnsafe(ref dst);
        Avx2.Permute2x128(even, odd, 0x31).AsUInt32().StoreUnsafe(ref dst, 8);
    }
}

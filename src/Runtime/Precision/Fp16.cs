using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Kiln.Runtime.Precision;

/// <summary>
/// IEEE 754 binary16 ("half": 1 sign, 5 exponent, 10 mantissa bits) stored as a <see cref="ushort"/>, and
/// the float ↔ half conversions mixed-precision training needs. The CPU backend uses
/// <see cref="Round(float)"/> and its span forms to emulate fp16 storage in float buffers. The results
/// equal <see cref="Half"/>'s conversions bit for bit, but are written with integer and float operations
/// that vectorise.
/// </summary>
/// <remarks>
/// <para>Float → half rounds to nearest, ties to even (RNE). Magnitudes from 65520 (<c>MaxValue</c> plus
/// half an ulp) up overflow to ±∞. Below 2⁻¹⁴ results are subnormal, on a grid of 2⁻²⁴; magnitudes up to
/// 2⁻²⁵ (inclusive: the tie goes to the even zero) underflow to a zero of the same sign. A NaN stays a
/// NaN of the same sign with the quiet bit (<c>0x0200</c>) set and the top nine payload bits kept.</para>
/// <para>Half → float is exact for every non-NaN. NaNs keep sign and payload and come back quiet, as with
/// <see cref="Half"/> and the x86 F16C instructions; so decoding then encoding gives back every pattern
/// except a signalling NaN, which returns with its quiet bit set.</para>
/// <para>Stochastic rounding. Let <c>f</c> be the part of |x| below the half grid at x (one ulp of x's
/// binade, or 2⁻²⁴ in the subnormal range), as a fraction of that spacing. The magnitude is rounded away
/// from zero when the element's random word <c>w</c> satisfies <c>w &lt; ⌊f·2³²⌋</c> and toward zero
/// otherwise, so the probability is <c>f</c>: exactly for |x| ≥ 2⁻³³, and below that <c>f</c> truncated to a
/// multiple of 2⁻³² (a bias under 2⁻³² of the smallest subnormal). Element <c>i</c> draws word <c>(firstIndex + i) mod 4</c> of
/// <c>Philox.Block(seed, stream, (firstIndex + i) / 4)</c>, as in <see cref="Bf16"/>. Magnitudes between
/// <c>MaxValue</c> and 65536 round to ∞ with that probability; 65536 and above give ∞; NaN as in RNE.</para>
/// <para>The span forms use <see cref="Vector512{T}"/> or <see cref="Vector256{T}"/> operations when the
/// hardware accelerates them and a scalar loop otherwise; every path gives the same bits.</para>
/// </remarks>
public static class Fp16
{
    /// <summary>Bits of +∞.</summary>
    public const ushort PositiveInfinityBits = 0x7C00;

    /// <summary>Bits of −∞.</summary>
    public const ushort NegativeInfinityBits = 0xFC00;

    /// <summary>Bits of the canonical quiet NaN.</summary>
    public const ushort NaNBits = 0x7E00;

    /// <summary>Bits of the largest finite half, <see cref="MaxValue"/>.</summary>
    public const ushort MaxValueBits = 0x7BFF;

    /// <summary>The largest finite half, 65504.</summary>
    public const float MaxValue = 65504f;

    /// <summary>The smallest positive normal half, 2⁻¹⁴.</summary>
    public const float MinNormal = 6.10351562e-05f;

    /// <summary>The smallest positive subnormal half, 2⁻²⁴.</summary>
    public const float MinSubnormal = 5.96046448e-08f;

    /// <summary>The spacing of half values just above 1: 2⁻¹⁰.</summary>
    public const float Epsilon = 0.0009765625f;

    private const int Chunk = 256;

    // Float-bit thresholds on |x|.
    private const uint NaNAbove = 0x7F80_0000u;       // |x| bits above this: NaN
    private const uint OverflowFrom = 0x477F_F000u;   // 65520: RNE gives ∞ from here
    private const uint InfinityFrom = 0x4780_0000u;   // 65536: ∞ whatever the rounding
    private const uint NormalFrom = 0x3880_0000u;     // 2⁻¹⁴: smallest normal half
    private const uint Rebias = 0x3800_0000u;         // (127 − 15) << 23
    private const uint HalfBits = 0x3F00_0000u;       // 0.5f: its ulp is 2⁻²⁴, the half subnormal spacing

    // ---------------------------------------------------------------------------------------------
    // Scalar conversions.

    /// <summary>Rounds <paramref name="value"/> to the nearest half (ties to even) and returns its bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float value) => (ushort)EncodeBits(BitConverter.SingleToUInt32Bits(value));

    /// <summary>The float value of the half with bits <paramref name="bits"/> (exact; a NaN comes back quiet).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle(DecodeBits(bits));

    /// <summary>
    /// <paramref name="value"/> rounded to the nearest half (ties to even) and widened back to float:
    /// <c>ToFloat(FromFloat(value))</c>, the value an fp16 buffer would hold.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float value) => BitConverter.UInt32BitsToSingle(DecodeBits(EncodeBits(BitConverter.SingleToUInt32Bits(value))));

    /// <summary>
    /// Rounds <paramref name="value"/> to half stochastically with the given 32-bit random word (see the
    /// remarks on <see cref="Fp16"/>) and returns the bits.
    /// </summary>
    /// <param name="value">The value to round.</param>
    /// <param name="randomWord">A uniformly distributed 32-bit word; the same word always gives the same result.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloatStochastic(float value, uint randomWord) =>
        (ushort)StochasticBits(BitConverter.SingleToUInt32Bits(value), randomWord);

    /// <summary>
    /// <paramref name="value"/> rounded to half stochastically with <paramref name="randomWord"/> and widened
    /// back to float: <c>ToFloat(FromFloatStochastic(value, randomWord))</c>.
    /// </summary>
    /// <param name="value">The value to round.</param>
    /// <param name="randomWord">A uniformly distributed 32-bit word; the same word always gives the same result.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundStochastic(float value, uint randomWord) =>
        BitConverter.UInt32BitsToSingle(DecodeBits(StochasticBits(BitConverter.SingleToUInt32Bits(value), randomWord)));

    /// <summary>RNE float bits → half bits (in the low 16 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint EncodeBits(uint bits)
    {
        uint abs = bits & 0x7FFF_FFFFu, sign = (bits >> 16) & 0x8000u;
        uint h;
        if (abs > NaNAbove) h = 0x7E00u | ((abs >> 13) & 0x3FFu);
        else if (abs >= OverflowFrom) h = 0x7C00u;
        // Rebias the exponent and round off 13 mantissa bits (ties to even); a carry moves to the next binade.
        else if (abs >= NormalFrom) h = (abs - Rebias + 0xFFFu + ((abs >> 13) & 1u)) >> 13;
        // Subnormal or zero: adding 0.5 makes the float unit's own RNE round onto the 2⁻²⁴ grid; the
        // mantissa of the sum is then the half's bits (0x400 is the smallest normal, also correct).
        else h = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(abs) + 0.5f) - HalfBits;
        return h | sign;
    }

    /// <summary>Half bits (low 16 bits) → float bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint DecodeBits(uint h)
    {
        uint abs = h & 0x7FFFu, sign = (h & 0x8000u) << 16;
        uint f;
        if (abs >= 0x7C00u) f = 0x7F80_0000u | ((abs & 0x3FFu) << 13) | (abs > 0x7C00u ? 0x0040_0000u : 0u);
        else if (abs >= 0x0400u) f = (abs << 13) + Rebias;
        // Subnormal or zero: abs·2⁻²⁴, read off the mantissa of 0.5 + abs·2⁻²⁴ (exact).
        else f = BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(abs | HalfBits) - 0.5f);
        return f | sign;
    }

    /// <summary>Stochastic float bits → half bits (in the low 16 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint StochasticBits(uint bits, uint word)
    {
        uint abs = bits & 0x7FFF_FFFFu, sign = (bits >> 16) & 0x8000u;
        uint h;
        if (abs > NaNAbove) h = 0x7E00u | ((abs >> 13) & 0x3FFu);
        else if (abs >= InfinityFrom) h = 0x7C00u;
        else if (abs >= NormalFrom) h = ((abs - Rebias) >> 13) + (word < abs << 19 ? 1u : 0u);
        else
        {
            // |x|·2²⁴ is exact and below 1024: its integer part is the truncated half, the rest the fraction.
            float scaled = BitConverter.UInt32BitsToSingle(abs) * 16777216f;
            uint q = (uint)scaled;
            uint threshold = (uint)((scaled - q) * 4294967296f);
            h = q + (word < threshold ? 1u : 0u);
        }
        return h | sign;
    }

    // ---------------------------------------------------------------------------------------------
    // Span conversions.

    /// <summary>Rounds every element of <paramref name="source"/> to half (RNE) into <paramref name="destination"/>.</summary>
    /// <param name="source">Float values.</param>
    /// <param name="destination">Half bits; at least as long as <paramref name="source"/>, and not overlapping it.</param>
    public static void FromFloat(ReadOnlySpan<float> source, Span<ushort> destination) =>
        FromFloat(source, destination, PrecisionSimd.Best);

    /// <summary>Widens every half in <paramref name="source"/> to float into <paramref name="destination"/>.</summary>
    /// <param name="source">Half bits.</param>
    /// <param name="destination">Floats; at least as long as <paramref name="source"/>, and not overlapping it.</param>
    public static void ToFloat(ReadOnlySpan<ushort> source, Span<float> destination) =>
        ToFloat(source, destination, PrecisionSimd.Best);

    /// <summary>Rounds every element of <paramref name="values"/> through half (RNE) in place.</summary>
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
    /// Rounds every element of <paramref name="values"/> through half stochastically, in place. Element
    /// <c>i</c> depends only on its value and on (<paramref name="seed"/>, <paramref name="stream"/>,
    /// <paramref name="firstIndex"/> + <c>i</c>); see the remarks on <see cref="Fp16"/>.
    /// </summary>
    /// <param name="values">The values to round.</param>
    /// <param name="seed">Philox key (Kiln uses the run seed).</param>
    /// <param name="stream">Philox stream: which rounding of which tensor this is.</param>
    /// <param name="firstIndex">Element index of <c>values[0]</c> within the stream, for a shard that starts mid-tensor.</param>
    public static void RoundStochastic(Span<float> values, ulong seed, ulong stream, ulong firstIndex = 0) =>
        RoundStochastic(values, values, seed, stream, firstIndex, PrecisionSimd.Best);

    /// <summary>
    /// Writes the stochastic half rounding of <c>source[i]</c> to <c>destination[i]</c> (see
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
    /// Rounds every element of <paramref name="source"/> to half stochastically into <paramref name="destination"/>
    /// (the bits of <see cref="RoundStochastic(ReadOnlySpan{float}, Span{float}, ulong, ulong, ulong)"/>).
    /// </summary>
    /// <param name="source">Float values.</param>
    /// <param name="destination">Half bits; at least as long as <paramref name="source"/>, and not overlapping it.</param>
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
                Vector512.Narrow(EncodeBits(Vector512.LoadUnsafe(ref src, (nuint)i)), EncodeBits(Vector512.LoadUnsafe(ref src, (nuint)(i + 16)))).StoreUnsafe(ref dst, (nuint)i);
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 16; i += 16)
                Vector256.Narrow(EncodeBits(Vector256.LoadUnsafe(ref src, (nuint)i)), EncodeBits(Vector256.LoadUnsafe(ref src, (nuint)(i + 8)))).StoreUnsafe(ref dst, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = (ushort)EncodeBits(Unsafe.Add(ref src, i));
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
                DecodeBits(lo).StoreUnsafe(ref dst, (nuint)i);
                DecodeBits(hi).StoreUnsafe(ref dst, (nuint)(i + 16));
            }
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 16; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref src, (nuint)i));
                DecodeBits(lo).StoreUnsafe(ref dst, (nuint)i);
                DecodeBits(hi).StoreUnsafe(ref dst, (nuint)(i + 8));
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = DecodeBits(Unsafe.Add(ref src, i));
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
                DecodeBits(EncodeBits(Vector512.LoadUnsafe(ref src, (nuint)i))).StoreUnsafe(ref dst, (nuint)i);
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 8; i += 8)
                DecodeBits(EncodeBits(Vector256.LoadUnsafe(ref src, (nuint)i))).StoreUnsafe(ref dst, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = DecodeBits(EncodeBits(Unsafe.Add(ref src, i)));
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
            RoundStochasticChunk(source.Slice(start, len), noise, destination.Slice(start, len), width);
        }
    }

    internal static void FromFloatStochastic(ReadOnlySpan<float> source, Span<ushort> destination, ulong seed, ulong stream, ulong firstIndex, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        RoundingNoise.CheckRange(source.Length, firstIndex);
        Span<uint> noise = stackalloc uint[Chunk];
        for (int start = 0; start < source.Length; start += Chunk)
        {
            int len = Math.Min(Chunk, source.Length - start);
            RoundingNoise.Fill(noise[..len], seed, stream, firstIndex + (ulong)start, width);
            EncodeStochasticChunk(source.Slice(start, len), noise, destination.Slice(start, len), width);
        }
    }

    /// <summary>Stochastic rounding with caller-supplied words, <c>words[i]</c> for element <c>i</c> (tests drive the decision boundary with it).</summary>
    internal static void RoundStochastic(ReadOnlySpan<float> source, ReadOnlySpan<uint> words, Span<float> destination, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        PrecisionSimd.CheckDestination(source.Length, words.Length);
        RoundStochasticChunk(source, words, destination, width);
    }

    /// <summary>Stochastic encoding with caller-supplied words, <c>words[i]</c> for element <c>i</c>.</summary>
    internal static void FromFloatStochastic(ReadOnlySpan<float> source, ReadOnlySpan<uint> words, Span<ushort> destination, SimdWidth width)
    {
        PrecisionSimd.CheckDestination(source.Length, destination.Length);
        PrecisionSimd.CheckDestination(source.Length, words.Length);
        EncodeStochasticChunk(source, words, destination, width);
    }

    private static void RoundStochasticChunk(ReadOnlySpan<float> source, ReadOnlySpan<uint> noise, Span<float> destination, SimdWidth width)
    {
        ref uint src = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(source));
        ref uint rnd = ref MemoryMarshal.GetReference(noise);
        ref uint dst = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(destination));
        int n = source.Length, i = 0;
        if (width == SimdWidth.V512)
        {
            for (; i <= n - 16; i += 16)
                DecodeBits(StochasticBits(Vector512.LoadUnsafe(ref src, (nuint)i), Vector512.LoadUnsafe(ref rnd, (nuint)i))).StoreUnsafe(ref dst, (nuint)i);
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 8; i += 8)
                DecodeBits(StochasticBits(Vector256.LoadUnsafe(ref src, (nuint)i), Vector256.LoadUnsafe(ref rnd, (nuint)i))).StoreUnsafe(ref dst, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = DecodeBits(StochasticBits(Unsafe.Add(ref src, i), Unsafe.Add(ref rnd, i)));
    }

    private static void EncodeStochasticChunk(ReadOnlySpan<float> source, ReadOnlySpan<uint> noise, Span<ushort> destination, SimdWidth width)
    {
        ref uint src = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(source));
        ref uint rnd = ref MemoryMarshal.GetReference(noise);
        ref ushort dst = ref MemoryMarshal.GetReference(destination);
        int n = source.Length, i = 0;
        if (width == SimdWidth.V512)
        {
            for (; i <= n - 32; i += 32)
            {
                var lo = StochasticBits(Vector512.LoadUnsafe(ref src, (nuint)i), Vector512.LoadUnsafe(ref rnd, (nuint)i));
                var hi = StochasticBits(Vector512.LoadUnsafe(ref src, (nuint)(i + 16)), Vector512.LoadUnsafe(ref rnd, (nuint)(i + 16)));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        if (width >= SimdWidth.V256)
        {
            for (; i <= n - 16; i += 16)
            {
                var lo = StochasticBits(Vector256.LoadUnsafe(ref src, (nuint)i), Vector256.LoadUnsafe(ref rnd, (nuint)i));
                var hi = StochasticBits(Vector256.LoadUnsafe(ref src, (nuint)(i + 8)), Vector256.LoadUnsafe(ref rnd, (nuint)(i + 8)));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref dst, i) = (ushort)StochasticBits(Unsafe.Add(ref src, i), Unsafe.Add(ref rnd, i));
    }

    // ---------------------------------------------------------------------------------------------
    // Vector kernels: every case of the scalar rule computed lane-wide, then selected.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> EncodeBits(Vector512<uint> bits)
    {
        var abs = bits & Vector512.Create(0x7FFF_FFFFu);
        var sign = (bits >>> 16) & Vector512.Create(0x8000u);
        var normal = (abs - Vector512.Create(Rebias) + Vector512.Create(0xFFFu) + ((abs >>> 13) & Vector512<uint>.One)) >>> 13;
        var subnormal = (abs.AsSingle() + Vector512.Create(0.5f)).AsUInt32() - Vector512.Create(HalfBits);
        var nan = Vector512.Create(0x7E00u) | ((abs >>> 13) & Vector512.Create(0x3FFu));
        var h = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(abs, Vector512.Create(NormalFrom)), normal, subnormal);
        h = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(abs, Vector512.Create(OverflowFrom)), Vector512.Create(0x7C00u), h);
        h = Vector512.ConditionalSelect(Vector512.GreaterThan(abs, Vector512.Create(NaNAbove)), nan, h);
        return h | sign;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> EncodeBits(Vector256<uint> bits)
    {
        var abs = bits & Vector256.Create(0x7FFF_FFFFu);
        var sign = (bits >>> 16) & Vector256.Create(0x8000u);
        var normal = (abs - Vector256.Create(Rebias) + Vector256.Create(0xFFFu) + ((abs >>> 13) & Vector256<uint>.One)) >>> 13;
        var subnormal = (abs.AsSingle() + Vector256.Create(0.5f)).AsUInt32() - Vector256.Create(HalfBits);
        var nan = Vector256.Create(0x7E00u) | ((abs >>> 13) & Vector256.Create(0x3FFu));
        var h = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(abs, Vector256.Create(NormalFrom)), normal, subnormal);
        h = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(abs, Vector256.Create(OverflowFrom)), Vector256.Create(0x7C00u), h);
        h = Vector256.ConditionalSelect(Vector256.GreaterThan(abs, Vector256.Create(NaNAbove)), nan, h);
        return h | sign;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> DecodeBits(Vector512<uint> h)
    {
        var abs = h & Vector512.Create(0x7FFFu);
        var sign = (h & Vector512.Create(0x8000u)) << 16;
        var normal = (abs << 13) + Vector512.Create(Rebias);
        var subnormal = ((abs | Vector512.Create(HalfBits)).AsSingle() - Vector512.Create(0.5f)).AsUInt32();
        var quiet = Vector512.GreaterThan(abs, Vector512.Create(0x7C00u)) & Vector512.Create(0x0040_0000u);
        var special = Vector512.Create(0x7F80_0000u) | ((abs & Vector512.Create(0x3FFu)) << 13) | quiet;
        var f = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(abs, Vector512.Create(0x0400u)), normal, subnormal);
        f = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(abs, Vector512.Create(0x7C00u)), special, f);
        return f | sign;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> DecodeBits(Vector256<uint> h)
    {
        var abs = h & Vector256.Create(0x7FFFu);
        var sign = (h & Vector256.Create(0x8000u)) << 16;
        var normal = (abs << 13) + Vector256.Create(Rebias);
        var subnormal = ((abs | Vector256.Create(HalfBits)).AsSingle() - Vector256.Create(0.5f)).AsUInt32();
        var quiet = Vector256.GreaterThan(abs, Vector256.Create(0x7C00u)) & Vector256.Create(0x0040_0000u);
        var special = Vector256.Create(0x7F80_0000u) | ((abs & Vector256.Create(0x3FFu)) << 13) | quiet;
        var f = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(abs, Vector256.Create(0x0400u)), normal, subnormal);
        f = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(abs, Vector256.Create(0x7C00u)), special, f);
        return f | sign;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> StochasticBits(Vector512<uint> bits, Vector512<uint> word)
    {
        var abs = bits & Vector512.Create(0x7FFF_FFFFu);
        var sign = (bits >>> 16) & Vector512.Create(0x8000u);
        var one = Vector512<uint>.One;
        var normal = ((abs - Vector512.Create(Rebias)) >>> 13) + (Vector512.LessThan(word, abs << 19) & one);
        // Outside the subnormal range these lanes compute garbage (possibly saturated conversions) that is never selected.
        var scaled = abs.AsSingle() * Vector512.Create(16777216f);
        var q = Vector512.ConvertToUInt32(scaled);
        var threshold = Vector512.ConvertToUInt32((scaled - Vector512.ConvertToSingle(q)) * Vector512.Create(4294967296f));
        var subnormal = q + (Vector512.LessThan(word, threshold) & one);
        var nan = Vector512.Create(0x7E00u) | ((abs >>> 13) & Vector512.Create(0x3FFu));
        var h = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(abs, Vector512.Create(NormalFrom)), normal, subnormal);
        h = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(abs, Vector512.Create(InfinityFrom)), Vector512.Create(0x7C00u), h);
        h = Vector512.ConditionalSelect(Vector512.GreaterThan(abs, Vector512.Create(NaNAbove)), nan, h);
        return h | sign;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> StochasticBits(Vector256<uint> bits, Vector256<uint> word)
    {
        var abs = bits & Vector256.Create(0x7FFF_FFFFu);
        var sign = (bits >>> 16) & Vector256.Create(0x8000u);
        var one = Vector256<uint>.One;
        var normal = ((abs - Vector256.Create(Rebias)) >>> 13) + (Vector256.LessThan(word, abs << 19) & one);
        var scaled = abs.AsSingle() * Vector256.Create(16777216f);
        var q = Vector256.ConvertToUInt32(scaled);
        var threshold = Vector256.ConvertToUInt32((scaled - Vector256.ConvertToSingle(q)) * Vector256.Create(4294967296f));
        var subnormal = q + (Vector256.LessThan(word, threshold) & one);
        var nan = Vector256.Create(0x7E00u) | ((abs >>> 13) & Vector256.Create(0x3FFu));
        var h = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(abs, Vector256.Create(NormalFrom)), normal, subnormal);
        h = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(abs, Vector256.Create(InfinityFrom)), Vector256.Create(0x7C00u), h);
        h = Vector256.ConditionalSelect(Vector256.GreaterThan(abs, Vector256.Create(NaNAbove)), nan, h);
        return h | sign;
    }
}

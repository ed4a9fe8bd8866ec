using System;
using Kiln.Runtime.Precision;

namespace Kiln.Runtime.Tests.Precision;

public class StochasticRoundingTests
{
    public enum Fmt { Bf16, Fp16 }

    private static readonly SimdWidth[] Widths = [SimdWidth.Scalar, SimdWidth.V256, SimdWidth.V512];

    private static Format16 Ref(Fmt f) => f == Fmt.Bf16 ? Format16.Bf16 : Format16.Fp16;

    private static float Decode(Fmt f, ushort h) => f == Fmt.Bf16 ? Bf16.ToFloat(h) : Fp16.ToFloat(h);

    private static ushort Scalar(Fmt f, float x, uint word) => f == Fmt.Bf16 ? Bf16.FromFloatStochastic(x, word) : Fp16.FromFloatStochastic(x, word);

    private static void RoundSpan(Fmt f, ReadOnlySpan<float> src, Span<float> dst, ulong seed, ulong stream, ulong first, SimdWidth width)
    {
        if (f == Fmt.Bf16) Bf16.RoundStochastic(src, dst, seed, stream, first, width);
        else Fp16.RoundStochastic(src, dst, seed, stream, first, width);
    }

    private static void EncodeSpan(Fmt f, ReadOnlySpan<float> src, Span<ushort> dst, ulong seed, ulong stream, ulong first, SimdWidth width)
    {
        if (f == Fmt.Bf16) Bf16.FromFloatStochastic(src, dst, seed, stream, first, width);
        else Fp16.FromFloatStochastic(src, dst, seed, stream, first, width);
    }

    /// <summary>The word element <paramref name="index"/> draws, from the reference Philox.</summary>
    private static uint Word(ulong seed, ulong stream, ulong index)
    {
        var b = Philox.Block(seed, stream, index >> 2);
        return (index & 3) switch { 0 => b.X0, 1 => b.X1, 2 => b.X2, _ => b.X3 };
    }

    [Theory]
    [InlineData(Fmt.Bf16)]
    [InlineData(Fmt.Fp16)]
    public void Spans_round_each_element_by_the_reference_rule_with_its_Philox_word(Fmt f)
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var xs = PrecisionTestData.RandomFloats(rng, 100_003);
        ulong key = (ulong)rng.NextInt64(), stream = (ulong)rng.NextInt64(), first = (ulong)rng.NextInt64(0, 1L << 40);
        var encoded = new ushort[xs.Length];
        EncodeSpan(f, xs, encoded, key, stream, first, PrecisionSimd.Best);
        var rounded = new float[xs.Length];
        RoundSpan(f, xs, rounded, key, stream, first, PrecisionSimd.Best);
        for (int i = 0; i < xs.Length; i++)
        {
            uint w = Word(key, stream, first + (ulong)i);
            ushort expected = Ref(f).EncodeStochastic(xs[i], w);
            if (encoded[i] != expected || Scalar(f, xs[i], w) != expected)
                Assert.Fail($"{f} element {i} {PrecisionTestData.Hex(xs[i])}, word 0x{w:X8}: span 0x{encoded[i]:X4}, scalar 0x{Scalar(f, xs[i], w):X4}, reference 0x{expected:X4} (seed {seed})");
            if (BitConverter.SingleToUInt32Bits(rounded[i]) != BitConverter.SingleToUInt32Bits(Decode(f, expected)))
                Assert.Fail($"{f} element {i} {PrecisionTestData.Hex(xs[i])}: rounded to {PrecisionTestData.Hex(rounded[i])} (seed {seed})");
        }
    }

    [Theory]
    [InlineData(Fmt.Bf16)]
    [InlineData(Fmt.Fp16)]
    public void Scalar_rule_matches_the_reference_for_random_words_and_values(Fmt f)
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var xs = PrecisionTestData.RandomFloats(rng, 1 << 19);
        foreach (float x in xs)
        {
            // Words at the decision threshold matter most: try random ones and the extremes.
            foreach (uint w in new[] { (uint)rng.NextInt64(0, 1L << 32), 0u, 0xFFFF_FFFFu, 0x8000_0000u })
            {
                ushort actual = Scalar(f, x, w), expected = Ref(f).EncodeStochastic(x, w);
                if (actual != expected)
                    Assert.Fail($"{f} {PrecisionTestData.Hex(x)}, word 0x{w:X8}: 0x{actual:X4}, reference 0x{expected:X4} (seed {seed})");
            }
        }
    }

    [Theory]
    [InlineData(Fmt.Bf16)]
    [InlineData(Fmt.Fp16)]
    public void Vector_paths_equal_the_scalar_path_bit_for_bit_on_odd_lengths(Fmt f)
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        foreach (int n in PrecisionTestData.Lengths)
        {
            var xs = PrecisionTestData.RandomFloats(rng, n);
            ulong key = (ulong)rng.NextInt64(), stream = (ulong)rng.NextInt64(), first = (ulong)rng.Next(0, 1000);
            var encScalar = new ushort[n];
            EncodeSpan(f, xs, encScalar, key, stream, first, SimdWidth.Scalar);
            var rndScalar = new float[n];
            RoundSpan(f, xs, rndScalar, key, stream, first, SimdWidth.Scalar);
            foreach (var width in new[] { SimdWidth.V256, SimdWidth.V512 })
            {
                var enc = new ushort[n];
                EncodeSpan(f, xs, enc, key, stream, first, width);
                var rnd = (float[])xs.Clone();
                RoundSpan(f, rnd, rnd, key, stream, first, width);   // in place
                Assert.True(encScalar.AsSpan().SequenceEqual(enc), $"{f} FromFloatStochastic {width}, n={n}, firstIndex={first} (seed {seed})");
                Assert.True(Bf16Tests.Bits(rndScalar).AsSpan().SequenceEqual(Bf16Tests.Bits(rnd)), $"{f} RoundStochastic {width}, n={n}, firstIndex={first} (seed {seed})");
            }
        }
    }

    [Theory]
    [InlineData(Fmt.Bf16)]
    [InlineData(Fmt.Fp16)]
    public void Every_path_decides_exactly_at_the_threshold_word(Fmt f)
    {
        // Random words almost never land on the decision boundary, so drive it: each element gets its
        // threshold word, one below or above it, or an extreme.
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var xs = PrecisionTestData.RandomFloats(rng, 8191);
        var words = new uint[xs.Length];
        for (int i = 0; i < xs.Length; i++)
        {
            long t = (long)Ref(f).StochasticThreshold(xs[i]);
            long w = rng.Next(5) switch { 0 => t, 1 => t - 1, 2 => t + 1, 3 => 0, _ => uint.MaxValue };
            words[i] = (uint)Math.Clamp(w, 0, uint.MaxValue);
        }
        foreach (var width in Widths)
        {
            var rounded = new float[xs.Length];
            var encoded = new ushort[xs.Length];
            if (f == Fmt.Bf16) Bf16.RoundStochastic(xs, words, rounded, width);
            else
            {
                Fp16.RoundStochastic(xs, words, rounded, width);
                Fp16.FromFloatStochastic(xs, words, encoded, width);
            }
            for (int i = 0; i < xs.Length; i++)
            {
                ushort expected = Ref(f).EncodeStochastic(xs[i], words[i]);
                if (BitConverter.SingleToUInt32Bits(rounded[i]) != BitConverter.SingleToUInt32Bits(Decode(f, expected)))
                    Assert.Fail($"{f} {width} {PrecisionTestData.Hex(xs[i])}, word 0x{words[i]:X8}: {PrecisionTestData.Hex(rounded[i])}, reference 0x{expected:X4} (seed {seed})");
                if (f == Fmt.Fp16 && encoded[i] != expected)
                    Assert.Fail($"{f} {width} {PrecisionTestData.Hex(xs[i])}, word 0x{words[i]:X8}: 0x{encoded[i]:X4}, reference 0x{expected:X4} (seed {seed})");
            }
        }
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(1ul)]
    [InlineData(3ul)]
    [InlineData(4ul * 0xFFFF_FFF0ul + 2)]     // the 64-bit block counter's low word wraps inside the fill
    [InlineData(ulong.MaxValue - 700)]        // the last blocks of the stream
    public void Vectorised_Philox_words_match_the_reference_blocks(ulong first)
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        ulong key = (ulong)rng.NextInt64(), stream = (ulong)rng.NextInt64();
        foreach (int n in new[] { 1, 5, 16, 31, 32, 33, 100, 257, 700 })
        {
            var expected = new uint[n];
            for (int i = 0; i < n; i++) expected[i] = Word(key, stream, first + (ulong)i);
            foreach (var width in Widths)
            {
                var actual = new uint[n];
                RoundingNoise.Fill(actual, key, stream, first, width);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{width}, n={n}, firstIndex={first} (seed {seed})");
            }
        }
    }

    [Theory]
    [InlineData(Fmt.Bf16)]
    [InlineData(Fmt.Fp16)]
    public void Same_seed_and_stream_give_the_same_bits_and_shards_agree_with_the_whole(Fmt f)
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var xs = new float[10_007];
        for (int i = 0; i < xs.Length; i++) xs[i] = (float)(rng.NextDouble() * 2 - 1);
        var a = new ushort[xs.Length];
        var b = new ushort[xs.Length];
        EncodeSpan(f, xs, a, 42, 7, 0, PrecisionSimd.Best);
        EncodeSpan(f, xs, b, 42, 7, 0, PrecisionSimd.Best);
        Assert.True(a.AsSpan().SequenceEqual(b), $"not deterministic (seed {seed})");

        // A sharded tensor: each shard rounds its slice with firstIndex = its offset.
        var sharded = new ushort[xs.Length];
        int[] cuts = [0, 1, 17, 1000, 4099, 4100, 9999, xs.Length];
        for (int s = 0; s + 1 < cuts.Length; s++)
            EncodeSpan(f, xs.AsSpan(cuts[s], cuts[s + 1] - cuts[s]), sharded.AsSpan(cuts[s]), 42, 7, (ulong)cuts[s], PrecisionSimd.Best);
        Assert.True(a.AsSpan().SequenceEqual(sharded), $"shards disagree with the whole tensor (seed {seed})");

        // Another stream or key gives another rounding (these values are almost never representable).
        var otherStream = new ushort[xs.Length];
        EncodeSpan(f, xs, otherStream, 42, 8, 0, PrecisionSimd.Best);
        var otherKey = new ushort[xs.Length];
        EncodeSpan(f, xs, otherKey, 43, 7, 0, PrecisionSimd.Best);
        Assert.False(a.AsSpan().SequenceEqual(otherStream), "stream ignored");
        Assert.False(a.AsSpan().SequenceEqual(otherKey), "seed ignored");
    }

    [Theory]
    [InlineData(Fmt.Bf16, 1.0023f)]
    [InlineData(Fmt.Bf16, -3.14159265f)]
    [InlineData(Fmt.Bf16, 0.001f)]
    [InlineData(Fmt.Bf16, 7.3e-39f)]          // a float subnormal: bf16 subnormal grid
    [InlineData(Fmt.Bf16, 3.0e38f)]
    [InlineData(Fmt.Fp16, 1.0003f)]
    [InlineData(Fmt.Fp16, -3.14159265f)]
    [InlineData(Fmt.Fp16, 1000.3f)]
    [InlineData(Fmt.Fp16, 1.0e-6f)]           // fp16 subnormal: 16.78 ulps of 2⁻²⁴
    [InlineData(Fmt.Fp16, -3.0e-9f)]          // 0.05 of the smallest subnormal
    [InlineData(Fmt.Fp16, 9.094947e-13f)]     // 2⁻⁴⁰: a 2⁻¹⁶ chance of rounding up to 2⁻²⁴
    public void Stochastic_rounding_is_unbiased(Fmt f, float x)
    {
        int seed = TestSeed.Fresh();
        const int n = 1 << 20;
        var copies = new float[n];
        Array.Fill(copies, x);
        RoundSpan(f, copies, copies, (ulong)seed, 11, 0, PrecisionSimd.Best);

        double ulp = Ref(f).Ulp(Math.Abs((double)x));
        double lower = Math.Floor(Math.Abs((double)x) / ulp) * ulp, p = (Math.Abs((double)x) - lower) / ulp;
        double sum = 0;
        long up = 0;
        foreach (float r in copies)
        {
            double m = Math.Abs((double)r);
            if (m == lower) { }
            else if (m == lower + ulp) up++;
            else Assert.Fail($"{f}: {x:R} rounded to {r:R}, not a neighbour (seed {seed})");
            if (Math.Sign(r) != Math.Sign(x) && r != 0) Assert.Fail($"sign flipped: {r:R} (seed {seed})");
            sum += r;
        }
        double mean = sum / n;
        // The count of round-ups is Binomial(n, p): allow six standard deviations (plus one count).
        double sigmaCount = Math.Sqrt(n * p * (1 - p));
        Assert.True(Math.Abs(up - n * p) <= 6 * sigmaCount + 1, $"{f} {x:R}: {up} round-ups, expected {n * p:F1} ± {sigmaCount:F1} (seed {seed})");
        Assert.True(Math.Abs(mean - x) <= ulp * (6 * sigmaCount + 1) / n, $"{f} {x:R}: mean {mean:R}, |error| {Math.Abs(mean - x):E3} (seed {seed})");
    }

    [Theory]
    [InlineData(Fmt.Bf16)]
    [InlineData(Fmt.Fp16)]
    public void Representable_values_and_specials_are_left_alone(Fmt f)
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        for (int h = 0; h < 65536; h++)
        {
            float x = Decode(f, (ushort)h);
            uint w = (uint)rng.NextInt64(0, 1L << 32);
            ushort expected = float.IsNaN(x) ? (f == Fmt.Bf16 ? Bf16.FromFloat(x) : Fp16.FromFloat(x)) : (ushort)h;
            if (Scalar(f, x, w) != expected || Scalar(f, x, 0) != expected || Scalar(f, x, uint.MaxValue) != expected)
                Assert.Fail($"{f} 0x{h:X4} moved to 0x{Scalar(f, x, w):X4} (seed {seed})");
        }
    }

    [Fact]
    public void Values_beyond_the_largest_finite_round_to_it_or_to_infinity()
    {
        int seed = TestSeed.Fresh();
        var xs = new float[4096];
        Array.Fill(xs, 65528f);   // three quarters of the way from 65504 to 65536
        Fp16.RoundStochastic(xs, (ulong)seed, 1);
        int inf = 0;
        foreach (float r in xs)
        {
            if (float.IsPositiveInfinity(r)) inf++;
            else Assert.Equal(65504f, r);
        }
        Assert.InRange(inf, 4096 * 3 / 4 - 200, 4096 * 3 / 4 + 200);
        Assert.Equal(Fp16.PositiveInfinityBits, Fp16.FromFloatStochastic(65536f, 0));
        Assert.Equal(Fp16.NegativeInfinityBits, Fp16.FromFloatStochastic(-1e30f, uint.MaxValue));
        Assert.Equal(Fp16.MaxValueBits, Fp16.FromFloatStochastic(65504f, 0));
        Assert.Equal(Bf16.MaxValueBits, Bf16.FromFloatStochastic(float.MaxValue, uint.MaxValue));
        Assert.Equal(Bf16.PositiveInfinityBits, Bf16.FromFloatStochastic(float.MaxValue, 0));
        Assert.Equal((ushort)0xFFC0, Bf16.FromFloatStochastic(BitConverter.UInt32BitsToSingle(0xFF80_0001), 0));
        Assert.Equal((ushort)0x7E00, Fp16.FromFloatStochastic(BitConverter.UInt32BitsToSingle(0x7F80_0001), 0));
    }
}

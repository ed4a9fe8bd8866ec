using System;
using Kiln.Runtime.Precision;

namespace Kiln.Runtime.Tests.Precision;

public class Bf16Tests
{
    private static readonly Format16 Ref = Format16.Bf16;

    [Fact]
    public void Decode_of_every_pattern_matches_the_definition()
    {
        for (int h = 0; h < 65536; h++)
        {
            float actual = Bf16.ToFloat((ushort)h);
            double expected = Ref.Decode((ushort)h);
            if (Ref.IsNaN((ushort)h))
            {
                // Decoding is exact widening: the payload and the sign survive as they are.
                if (BitConverter.SingleToUInt32Bits(actual) != (uint)h << 16)
                    Assert.Fail($"0x{h:X4}: NaN decoded to {PrecisionTestData.Hex(actual)}");
            }
            else if (BitConverter.DoubleToInt64Bits(actual) != BitConverter.DoubleToInt64Bits(expected))
            {
                Assert.Fail($"0x{h:X4}: decoded {PrecisionTestData.Hex(actual)}, definition gives {expected:R}");
            }
        }
    }

    [Fact]
    public void Encoding_a_decoded_pattern_gives_it_back_and_NaNs_come_back_quiet()
    {
        for (int h = 0; h < 65536; h++)
        {
            ushort expected = Ref.IsNaN((ushort)h) ? (ushort)(h | 0x0040) : (ushort)h;
            float x = Bf16.ToFloat((ushort)h);
            if (Bf16.FromFloat(x) != expected)
                Assert.Fail($"0x{h:X4} → {PrecisionTestData.Hex(x)} → 0x{Bf16.FromFloat(x):X4}, expected 0x{expected:X4}");
            uint rounded = BitConverter.SingleToUInt32Bits(Bf16.Round(x));
            if (rounded != (uint)expected << 16)
                Assert.Fail($"Round(0x{h:X4} decoded) = 0x{rounded:X8}");
        }
    }

    [Fact]
    public void Span_paths_agree_with_the_scalar_conversions_on_every_pattern()
    {
        var all = new ushort[65536];
        for (int h = 0; h < all.Length; h++) all[h] = (ushort)h;
        foreach (var width in new[] { SimdWidth.Scalar, SimdWidth.V256, SimdWidth.V512 })
        {
            var floats = new float[all.Length];
            Bf16.ToFloat(all, floats, width);
            var back = new ushort[all.Length];
            Bf16.FromFloat(floats, back, width);
            var rounded = new float[all.Length];
            Bf16.Round(floats, rounded, width);
            for (int h = 0; h < all.Length; h++)
            {
                if (BitConverter.SingleToUInt32Bits(floats[h]) != BitConverter.SingleToUInt32Bits(Bf16.ToFloat((ushort)h)))
                    Assert.Fail($"{width} ToFloat(0x{h:X4}) = {PrecisionTestData.Hex(floats[h])}");
                if (back[h] != Bf16.FromFloat(floats[h]))
                    Assert.Fail($"{width} FromFloat(0x{h:X4} decoded) = 0x{back[h]:X4}");
                if (BitConverter.SingleToUInt32Bits(rounded[h]) != BitConverter.SingleToUInt32Bits(Bf16.Round(floats[h])))
                    Assert.Fail($"{width} Round(0x{h:X4} decoded) = {PrecisionTestData.Hex(rounded[h])}");
            }
        }
    }

    [Theory]
    // Ties go to the even neighbour.
    [InlineData(0x3F80_8000u, 0x3F80)]     // 1 + 2⁻⁸: between 1 (even) and 1 + 2⁻⁷ → 1
    [InlineData(0x3F81_8000u, 0x3F82)]     // between 0x3F81 (odd) and 0x3F82 → up
    [InlineData(0xBF80_8000u, 0xBF80)]     // negative tie → even
    [InlineData(0xBF81_8000u, 0xBF82)]
    [InlineData(0x3F80_8001u, 0x3F81)]     // just above the tie → up
    [InlineData(0x3F80_7FFFu, 0x3F80)]     // just below → down
    [InlineData(0x3FFF_8000u, 0x4000)]     // tie whose rounding carries into the exponent
    [InlineData(0x3FFF_FFFFu, 0x4000)]
    // Overflow: MaxValue = 0x7F7F; its tie with 2¹²⁸ goes up (0x7F7F is odd) to ∞.
    [InlineData(0x7F7F_7FFFu, 0x7F7F)]
    [InlineData(0x7F7F_8000u, 0x7F80)]
    [InlineData(0x7F7F_FFFFu, 0x7F80)]     // float.MaxValue
    [InlineData(0xFF7F_8000u, 0xFF80)]
    [InlineData(0x7F7E_8000u, 0x7F7E)]     // tie below an even max-1 stays
    // Infinities and zeros keep their sign.
    [InlineData(0x7F80_0000u, 0x7F80)]
    [InlineData(0xFF80_0000u, 0xFF80)]
    [InlineData(0x0000_0000u, 0x0000)]
    [InlineData(0x8000_0000u, 0x8000)]
    // Subnormals round on the same 2⁻¹³³ grid; the smallest tie goes to zero, keeping the sign.
    [InlineData(0x0000_8000u, 0x0000)]
    [InlineData(0x8000_8000u, 0x8000)]
    [InlineData(0x0000_8001u, 0x0001)]
    [InlineData(0x0001_8000u, 0x0002)]
    [InlineData(0x0000_0001u, 0x0000)]     // float's smallest subnormal underflows
    [InlineData(0x007F_FFFFu, 0x0080)]     // largest float subnormal rounds up to the smallest normal
    // NaNs: quiet, sign kept, top payload bits kept; a payload only in the low half must not become ∞.
    [InlineData(0x7FC0_0000u, 0x7FC0)]
    [InlineData(0xFFC0_0000u, 0xFFC0)]
    [InlineData(0x7F80_0001u, 0x7FC0)]
    [InlineData(0xFF80_0001u, 0xFFC0)]
    [InlineData(0x7F81_0000u, 0x7FC1)]
    [InlineData(0x7FFF_FFFFu, 0x7FFF)]
    [InlineData(0xFFFF_FFFFu, 0xFFFF)]
    public void Edge_cases_round_as_specified(uint floatBits, int expected)
    {
        float x = BitConverter.UInt32BitsToSingle(floatBits);
        Assert.Equal((ushort)expected, Bf16.FromFloat(x));
        Assert.Equal((uint)expected << 16, BitConverter.SingleToUInt32Bits(Bf16.Round(x)));
        Assert.Equal(Ref.EncodeNearestEven(x), (ushort)expected);
        foreach (var width in new[] { SimdWidth.Scalar, SimdWidth.V256, SimdWidth.V512 })
        {
            // Put the case in every lane position of a vector and the tail.
            var src = new float[67];
            Array.Fill(src, x);
            var dst = new ushort[src.Length];
            Bf16.FromFloat(src, dst, width);
            Assert.All(dst, d => Assert.Equal((ushort)expected, d));
        }
    }

    [Fact]
    public void Every_upper_half_with_tie_and_near_tie_lower_halves_matches_the_reference()
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        ushort[] lows = [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0, 0];
        for (int hi = 0; hi < 65536; hi++)
        {
            lows[6] = (ushort)rng.Next(65536);
            lows[7] = (ushort)rng.Next(65536);
            foreach (ushort lo in lows)
            {
                float x = BitConverter.UInt32BitsToSingle(((uint)hi << 16) | lo);
                ushort expected = Ref.EncodeNearestEven(x);
                if (Bf16.FromFloat(x) != expected)
                    Assert.Fail($"FromFloat({PrecisionTestData.Hex(x)}) = 0x{Bf16.FromFloat(x):X4}, reference 0x{expected:X4} (seed {seed})");
            }
        }
    }

    [Fact]
    public void Random_floats_match_the_reference_and_Round_is_decode_of_encode()
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var xs = PrecisionTestData.RandomFloats(rng, 1 << 20);
        var bits = new ushort[xs.Length];
        Bf16.FromFloat(xs, bits);
        var rounded = new float[xs.Length];
        Bf16.Round(xs, rounded);
        for (int i = 0; i < xs.Length; i++)
        {
            ushort expected = Ref.EncodeNearestEven(xs[i]);
            if (bits[i] != expected)
                Assert.Fail($"FromFloat({PrecisionTestData.Hex(xs[i])}) = 0x{bits[i]:X4}, reference 0x{expected:X4} (seed {seed})");
            if (BitConverter.SingleToUInt32Bits(rounded[i]) != BitConverter.SingleToUInt32Bits(Bf16.ToFloat(expected)))
                Assert.Fail($"Round({PrecisionTestData.Hex(xs[i])}) = {PrecisionTestData.Hex(rounded[i])} (seed {seed})");
            // RNE is within half an ulp (finite, non-overflowing results).
            if (float.IsFinite(rounded[i]))
            {
                double err = Math.Abs((double)rounded[i] - xs[i]);
                if (err > Ref.Ulp(Math.Abs((double)xs[i])) / 2)
                    Assert.Fail($"Round({PrecisionTestData.Hex(xs[i])}) is {err} away (seed {seed})");
            }
        }
    }

    [Fact]
    public void Vector_paths_equal_the_scalar_path_bit_for_bit_on_odd_lengths()
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        foreach (int n in PrecisionTestData.Lengths)
        {
            var xs = PrecisionTestData.RandomFloats(rng, n);
            var hs = new ushort[n];
            for (int i = 0; i < n; i++) hs[i] = (ushort)rng.Next(65536);

            var encScalar = new ushort[n]; Bf16.FromFloat(xs, encScalar, SimdWidth.Scalar);
            var decScalar = new float[n]; Bf16.ToFloat(hs, decScalar, SimdWidth.Scalar);
            var rndScalar = new float[n]; Bf16.Round(xs, rndScalar, SimdWidth.Scalar);
            foreach (var width in new[] { SimdWidth.V256, SimdWidth.V512 })
            {
                var enc = new ushort[n]; Bf16.FromFloat(xs, enc, width);
                var dec = new float[n]; Bf16.ToFloat(hs, dec, width);
                var rnd = (float[])xs.Clone(); Bf16.Round(rnd, rnd, width);   // in place
                Assert.True(encScalar.AsSpan().SequenceEqual(enc), $"FromFloat {width}, n={n} (seed {seed})");
                Assert.True(Bits(decScalar).AsSpan().SequenceEqual(Bits(dec)), $"ToFloat {width}, n={n} (seed {seed})");
                Assert.True(Bits(rndScalar).AsSpan().SequenceEqual(Bits(rnd)), $"Round {width}, n={n} (seed {seed})");
            }
        }
    }

    [Fact]
    public void Span_forms_reject_a_short_destination()
    {
        Assert.Throws<ArgumentException>(() => Bf16.FromFloat(new float[4], new ushort[3]));
        Assert.Throws<ArgumentException>(() => Bf16.ToFloat(new ushort[4], new float[3]));
        Assert.Throws<ArgumentException>(() => Bf16.Round(new float[4], new float[3]));
        Assert.Throws<ArgumentException>(() => Bf16.RoundStochastic(new float[4], new float[3], 1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Bf16.RoundStochastic(new float[4], 1, 2, ulong.MaxValue - 2));
    }

    [Fact]
    public void Constants_match_their_bits()
    {
        Assert.Equal(Bf16.MaxValue, Bf16.ToFloat(Bf16.MaxValueBits));
        Assert.Equal((double)Bf16.MaxValue, Ref.MaxFinite);
        Assert.Equal(float.PositiveInfinity, Bf16.ToFloat(Bf16.PositiveInfinityBits));
        Assert.Equal(float.NegativeInfinity, Bf16.ToFloat(Bf16.NegativeInfinityBits));
        Assert.True(float.IsNaN(Bf16.ToFloat(Bf16.NaNBits)));
        Assert.Equal(1f + Bf16.Epsilon, Bf16.ToFloat(0x3F81));
    }

    internal static uint[] Bits(float[] xs) => Array.ConvertAll(xs, BitConverter.SingleToUInt32Bits);
}

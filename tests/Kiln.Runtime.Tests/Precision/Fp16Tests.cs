using System;
using Kiln.Runtime.Precision;

namespace Kiln.Runtime.Tests.Precision;

public class Fp16Tests
{
    private static readonly Format16 Ref = Format16.Fp16;

    private static ushort SystemHalf(float x) => BitConverter.HalfToUInt16Bits((Half)x);

    private static uint SystemHalfToFloat(ushort h) => BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(h));

    [Fact]
    public void Decode_of_every_pattern_matches_the_definition_and_System_Half()
    {
        for (int h = 0; h < 65536; h++)
        {
            float actual = Fp16.ToFloat((ushort)h);
            uint actualBits = BitConverter.SingleToUInt32Bits(actual);
            if (Ref.IsNaN((ushort)h))
            {
                // Sign and payload kept, quiet bit set.
                uint expectedNaN = ((uint)(h & 0x8000) << 16) | 0x7FC0_0000u | ((uint)(h & 0x3FF) << 13);
                if (actualBits != expectedNaN)
                    Assert.Fail($"0x{h:X4}: NaN decoded to {PrecisionTestData.Hex(actual)}");
            }
            else
            {
                double expected = Ref.Decode((ushort)h);
                if (BitConverter.DoubleToInt64Bits(actual) != BitConverter.DoubleToInt64Bits(expected))
                    Assert.Fail($"0x{h:X4}: decoded {PrecisionTestData.Hex(actual)}, definition gives {expected:R}");
            }
            if (actualBits != SystemHalfToFloat((ushort)h))
                Assert.Fail($"0x{h:X4}: decoded 0x{actualBits:X8}, System.Half gives 0x{SystemHalfToFloat((ushort)h):X8}");
        }
    }

    [Fact]
    public void Encoding_a_decoded_pattern_gives_it_back_and_NaNs_come_back_quiet()
    {
        for (int h = 0; h < 65536; h++)
        {
            ushort expected = Ref.IsNaN((ushort)h) ? (ushort)(h | 0x0200) : (ushort)h;
            float x = Fp16.ToFloat((ushort)h);
            if (Fp16.FromFloat(x) != expected)
                Assert.Fail($"0x{h:X4} → {PrecisionTestData.Hex(x)} → 0x{Fp16.FromFloat(x):X4}, expected 0x{expected:X4}");
            if (SystemHalf(x) != expected)
                Assert.Fail($"System.Half disagrees on 0x{h:X4}: 0x{SystemHalf(x):X4}");
            uint rounded = BitConverter.SingleToUInt32Bits(Fp16.Round(x));
            if (rounded != BitConverter.SingleToUInt32Bits(x) && !Ref.IsNaN((ushort)h))
                Assert.Fail($"Round(0x{h:X4} decoded) = 0x{rounded:X8}, not the value itself");
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
            Fp16.ToFloat(all, floats, width);
            var back = new ushort[all.Length];
            Fp16.FromFloat(floats, back, width);
            var rounded = new float[all.Length];
            Fp16.Round(floats, rounded, width);
            for (int h = 0; h < all.Length; h++)
            {
                if (BitConverter.SingleToUInt32Bits(floats[h]) != BitConverter.SingleToUInt32Bits(Fp16.ToFloat((ushort)h)))
                    Assert.Fail($"{width} ToFloat(0x{h:X4}) = {PrecisionTestData.Hex(floats[h])}");
                if (back[h] != Fp16.FromFloat(floats[h]))
                    Assert.Fail($"{width} FromFloat(0x{h:X4} decoded) = 0x{back[h]:X4}");
                if (BitConverter.SingleToUInt32Bits(rounded[h]) != BitConverter.SingleToUInt32Bits(Fp16.Round(floats[h])))
                    Assert.Fail($"{width} Round(0x{h:X4} decoded) = {PrecisionTestData.Hex(rounded[h])}");
            }
        }
    }

    [Theory]
    // Normal range: ties to even.
    [InlineData(0x3F80_1000u, 0x3C00)]     // 1 + 2⁻¹¹: between 1 (even) and 1 + 2⁻¹⁰ → 1
    [InlineData(0x3F80_3000u, 0x3C02)]     // between 0x3C01 (odd) and 0x3C02 → up
    [InlineData(0x3F80_1001u, 0x3C01)]
    [InlineData(0x3F80_0FFFu, 0x3C00)]
    [InlineData(0xBF80_3000u, 0xBC02)]
    [InlineData(0x3FFF_F000u, 0x4000)]     // carries into the exponent
    // Overflow: 65504 is the largest half; 65520 (its tie with 65536) goes to ∞.
    [InlineData(0x477F_E000u, 0x7BFF)]     // 65504
    [InlineData(0x477F_EFFFu, 0x7BFF)]     // just below 65520
    [InlineData(0x477F_F000u, 0x7C00)]     // 65520
    [InlineData(0xC77F_F000u, 0xFC00)]
    [InlineData(0x4780_0000u, 0x7C00)]     // 65536
    [InlineData(0x7F7F_FFFFu, 0x7C00)]     // float.MaxValue
    [InlineData(0x7F80_0000u, 0x7C00)]
    [InlineData(0xFF80_0000u, 0xFC00)]
    // Normal/subnormal boundary: 2⁻¹⁴ is 0x0400; just below it rounds up onto it.
    [InlineData(0x3880_0000u, 0x0400)]
    [InlineData(0x387F_F000u, 0x0400)]     // 2⁻¹⁴ − 2⁻²⁶: above the tie → 0x0400
    [InlineData(0x387F_E000u, 0x0400)]     // 2⁻¹⁴ − 2⁻²⁵: tie between 0x03FF (odd) and 0x0400 → 0x0400
    [InlineData(0x387F_DFFFu, 0x03FF)]     // just below that tie
    [InlineData(0x387F_C000u, 0x03FF)]     // 2⁻¹⁴ − 2⁻²⁴: the largest subnormal
    // Subnormals on the 2⁻²⁴ grid.
    [InlineData(0x3380_0000u, 0x0001)]     // 2⁻²⁴
    [InlineData(0x33C0_0000u, 0x0002)]     // 1.5·2⁻²⁴: tie between 1 (odd) and 2 → 2
    [InlineData(0x3420_0000u, 0x0002)]     // 2.5·2⁻²⁴: tie between 2 (even) and 3 → 2
    [InlineData(0x3300_0000u, 0x0000)]     // 2⁻²⁵: tie between 0 and 2⁻²⁴ → 0
    [InlineData(0xB300_0000u, 0x8000)]     // −2⁻²⁵ → −0
    [InlineData(0x3300_0001u, 0x0001)]     // just above 2⁻²⁵ → 2⁻²⁴
    [InlineData(0x32FF_FFFFu, 0x0000)]     // just below → 0
    [InlineData(0x0000_0001u, 0x0000)]     // float subnormals underflow
    [InlineData(0x8000_0001u, 0x8000)]
    [InlineData(0x0000_0000u, 0x0000)]
    [InlineData(0x8000_0000u, 0x8000)]
    // NaNs: quiet, sign kept, top payload bits kept.
    [InlineData(0x7FC0_0000u, 0x7E00)]
    [InlineData(0xFFC0_0000u, 0xFE00)]
    [InlineData(0x7F80_0001u, 0x7E00)]     // payload below the kept bits: still a NaN, not ∞
    [InlineData(0xFF81_2345u, 0xFE09)]
    [InlineData(0x7FFF_FFFFu, 0x7FFF)]
    public void Edge_cases_round_as_specified(uint floatBits, int expected)
    {
        float x = BitConverter.UInt32BitsToSingle(floatBits);
        Assert.Equal((ushort)expected, Fp16.FromFloat(x));
        Assert.Equal((ushort)expected, SystemHalf(x));
        Assert.Equal((ushort)expected, Ref.EncodeNearestEven(x));
        Assert.Equal(SystemHalfToFloat((ushort)expected), BitConverter.SingleToUInt32Bits(Fp16.Round(x)));
        foreach (var width in new[] { SimdWidth.Scalar, SimdWidth.V256, SimdWidth.V512 })
        {
            var src = new float[67];
            Array.Fill(src, x);
            var dst = new ushort[src.Length];
            Fp16.FromFloat(src, dst, width);
            Assert.All(dst, d => Assert.Equal((ushort)expected, d));
        }
    }

    [Fact]
    public void Every_top_19_bits_with_tie_and_near_tie_low_bits_match_System_Half_and_the_reference()
    {
        // fp16 keeps at most the top 19 bits of a float (sign, 8 exponent, 10 mantissa); every such prefix is
        // combined with the low-13-bit patterns that decide rounding. The double reference is slower, so it
        // sees every prefix with one pattern in turn.
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        uint[] lows = [0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0];
        for (uint prefix = 0; prefix < 1u << 19; prefix++)
        {
            lows[6] = (uint)rng.Next(0x2000);
            for (int k = 0; k < lows.Length; k++)
            {
                float x = BitConverter.UInt32BitsToSingle((prefix << 13) | lows[k]);
                ushort actual = Fp16.FromFloat(x);
                if (actual != SystemHalf(x))
                    Assert.Fail($"FromFloat({PrecisionTestData.Hex(x)}) = 0x{actual:X4}, System.Half 0x{SystemHalf(x):X4} (seed {seed})");
                if (k == (int)(prefix % (uint)lows.Length) && actual != Ref.EncodeNearestEven(x))
                    Assert.Fail($"FromFloat({PrecisionTestData.Hex(x)}) = 0x{actual:X4}, reference 0x{Ref.EncodeNearestEven(x):X4} (seed {seed})");
            }
        }
    }

    [Fact]
    public void Random_floats_match_System_Half_and_the_reference()
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var xs = PrecisionTestData.RandomFloats(rng, 1 << 20);
        var bits = new ushort[xs.Length];
        Fp16.FromFloat(xs, bits);
        var rounded = new float[xs.Length];
        Fp16.Round(xs, rounded);
        for (int i = 0; i < xs.Length; i++)
        {
            ushort expected = Ref.EncodeNearestEven(xs[i]);
            if (bits[i] != expected || bits[i] != SystemHalf(xs[i]))
                Assert.Fail($"FromFloat({PrecisionTestData.Hex(xs[i])}) = 0x{bits[i]:X4}, reference 0x{expected:X4}, System.Half 0x{SystemHalf(xs[i]):X4} (seed {seed})");
            if (BitConverter.SingleToUInt32Bits(rounded[i]) != SystemHalfToFloat(expected))
                Assert.Fail($"Round({PrecisionTestData.Hex(xs[i])}) = {PrecisionTestData.Hex(rounded[i])} (seed {seed})");
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

            var encScalar = new ushort[n]; Fp16.FromFloat(xs, encScalar, SimdWidth.Scalar);
            var decScalar = new float[n]; Fp16.ToFloat(hs, decScalar, SimdWidth.Scalar);
            var rndScalar = new float[n]; Fp16.Round(xs, rndScalar, SimdWidth.Scalar);
            foreach (var width in new[] { SimdWidth.V256, SimdWidth.V512 })
            {
                var enc = new ushort[n]; Fp16.FromFloat(xs, enc, width);
                var dec = new float[n]; Fp16.ToFloat(hs, dec, width);
                var rnd = (float[])xs.Clone(); Fp16.Round(rnd, rnd, width);   // in place
                Assert.True(encScalar.AsSpan().SequenceEqual(enc), $"FromFloat {width}, n={n} (seed {seed})");
                Assert.True(Bf16Tests.Bits(decScalar).AsSpan().SequenceEqual(Bf16Tests.Bits(dec)), $"ToFloat {width}, n={n} (seed {seed})");
                Assert.True(Bf16Tests.Bits(rndScalar).AsSpan().SequenceEqual(Bf16Tests.Bits(rnd)), $"Round {width}, n={n} (seed {seed})");
            }
        }
    }

    [Fact]
    public void Span_forms_reject_a_short_destination()
    {
        Assert.Throws<ArgumentException>(() => Fp16.FromFloat(new float[4], new ushort[3]));
        Assert.Throws<ArgumentException>(() => Fp16.ToFloat(new ushort[4], new float[3]));
        Assert.Throws<ArgumentException>(() => Fp16.Round(new float[4], new float[3]));
        Assert.Throws<ArgumentException>(() => Fp16.FromFloatStochastic(new float[4], new ushort[3], 1, 2));
    }

    [Fact]
    public void Constants_match_their_bits()
    {
        Assert.Equal(Fp16.MaxValue, Fp16.ToFloat(Fp16.MaxValueBits));
        Assert.Equal((double)Fp16.MaxValue, Ref.MaxFinite);
        Assert.Equal(Fp16.MinNormal, Fp16.ToFloat(0x0400));
        Assert.Equal(Fp16.MinSubnormal, Fp16.ToFloat(0x0001));
        Assert.Equal(float.PositiveInfinity, Fp16.ToFloat(Fp16.PositiveInfinityBits));
        Assert.Equal(float.NegativeInfinity, Fp16.ToFloat(Fp16.NegativeInfinityBits));
        Assert.True(float.IsNaN(Fp16.ToFloat(Fp16.NaNBits)));
        Assert.Equal(1f + Fp16.Epsilon, Fp16.ToFloat(0x3C01));
    }
}

using System;
using Kiln.Runtime;
using Kiln.Runtime.Cpu;

namespace Kiln.Runtime.Tests;

public class PhiloxTests
{
    [Theory]
    // Random123 kat_vectors, philox4x32_10: counter words, key words, expected output words.
    [InlineData(0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void Block_matches_Random123_known_answers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint x0, uint x1, uint x2, uint x3)
    {
        Assert.Equal((x0, x1, x2, x3), Philox.Block(c0, c1, c2, c3, k0, k1));
    }

    [Fact]
    public void Ulong_block_maps_low_words_first()
    {
        var expected = Philox.Block(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
        var actual = Philox.Block(key: 0x299f31d0_a4093822UL, counterHi: 0x03707344_13198a2eUL, counterLo: 0x85a308d3_243f6a88UL);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Uniform_fill_has_mean_one_half_and_variance_one_twelfth()
    {
        int seed = TestSeed.Fresh();
        const int n = 1 << 20;
        var u = new float[n];
        Philox.FillUniform(u, 0f, 1f, (ulong)seed, 7);
        double sum = 0, sumSq = 0;
        float min = float.MaxValue, max = float.MinValue;
        foreach (var x in u) { sum += x; sumSq += (x - 0.5) * (x - 0.5); min = Math.Min(min, x); max = Math.Max(max, x); }
        double mean = sum / n, variance = sumSq / n;
        // Five standard errors: σ(mean) = √(1/12/n) ≈ 2.8e-4; σ(variance) = √((1/80 − 1/144)/n) ≈ 7.3e-5.
        Assert.True(Math.Abs(mean - 0.5) < 5 * Math.Sqrt(1.0 / 12 / n), $"mean {mean} (seed {seed})");
        Assert.True(Math.Abs(variance - 1.0 / 12) < 5 * Math.Sqrt((1.0 / 80 - 1.0 / 144) / n), $"variance {variance} (seed {seed})");
        Assert.True(min >= 0f && max < 1f, $"range [{min}, {max}] (seed {seed})");
    }

    [Fact]
    public void Normal_fill_has_mean_zero_and_unit_variance()
    {
        int seed = TestSeed.Fresh();
        const int n = 1 << 20;
        var z = new float[n];
        Philox.FillNormal(z, 0f, 1f, (ulong)seed, 3);
        double sum = 0, sumSq = 0, fourth = 0;
        foreach (var x in z) { sum += x; sumSq += (double)x * x; fourth += (double)x * x * x * x; }
        double mean = sum / n, variance = sumSq / n - mean * mean, kurtosis = fourth / n;
        // Five standard errors: σ(mean) = 1/√n ≈ 1e-3; σ(variance) = √(2/n) ≈ 1.4e-3; σ(E z⁴) = √(96/n) ≈ 9.6e-3.
        Assert.True(Math.Abs(mean) < 5 / Math.Sqrt(n), $"mean {mean} (seed {seed})");
        Assert.True(Math.Abs(variance - 1) < 5 * Math.Sqrt(2.0 / n), $"variance {variance} (seed {seed})");
        Assert.True(Math.Abs(kurtosis - 3) < 5 * Math.Sqrt(96.0 / n), $"fourth moment {kurtosis} (seed {seed})");
    }

    [Fact]
    public void Element_i_depends_only_on_key_stream_and_index_not_on_span_length_or_start()
    {
        ulong key = (ulong)TestSeed.Fresh();
        var whole = new float[1001];
        Philox.FillUniform(whole, -2f, 3f, key, 11);
        var prefix = new float[10];
        Philox.FillUniform(prefix, -2f, 3f, key, 11);
        Assert.Equal(whole.AsSpan(0, 10).ToArray(), prefix);
        // Shards starting at every alignment within a block.
        for (int start = 0; start < 8; start++)
        {
            var shard = new float[37];
            Philox.FillUniform(shard, -2f, 3f, key, 11, firstIndex: (ulong)(100 + start));
            Assert.Equal(whole.AsSpan(100 + start, 37).ToArray(), shard);
        }
        for (int i = 0; i < 64; i++)
            Assert.Equal(whole[i], -2f + 5f * Philox.Uniform(key, 11, (ulong)i));

        var normals = new float[203];
        Philox.FillNormal(normals, 0f, 1f, key, 5);
        var normalShard = new float[50];
        Philox.FillNormal(normalShard, 0f, 1f, key, 5, firstIndex: 101);
        Assert.Equal(normals.AsSpan(101, 50).ToArray(), normalShard);
        for (int i = 0; i < 16; i++)
            Assert.Equal(normals[i], Philox.Normal(key, 5, (ulong)i));
    }

    [Fact]
    public void Different_streams_and_keys_draw_different_numbers()
    {
        var a = new float[64];
        var b = new float[64];
        var c = new float[64];
        Philox.FillUniform(a, 0f, 1f, 1, 0);
        Philox.FillUniform(b, 0f, 1f, 1, 1);
        Philox.FillUniform(c, 0f, 1f, 2, 0);
        Assert.NotEqual(a, b);
        Assert.NotEqual(a, c);
    }
}

public class ParameterInitTests
{
    [Fact]
    public void Init_is_deterministic_per_seed_and_tensor_and_follows_the_rule()
    {
        var a = new float[4096];
        var b = new float[4096];
        ParameterInit.Fill(a, InitKind.Uniform, 0.25f, 42, 3);
        ParameterInit.Fill(b, InitKind.Uniform, 0.25f, 42, 3);
        Assert.Equal(a, b);
        Assert.All(a, x => Assert.InRange(x, -0.25f, 0.25f));
        ParameterInit.Fill(b, InitKind.Uniform, 0.25f, 42, 4);
        Assert.NotEqual(a, b);

        var n = new float[1 << 16];
        ParameterInit.Fill(n, InitKind.Normal, 0.02f, 42, 0);
        double sumSq = 0;
        foreach (var x in n) sumSq += (double)x * x;
        double std = Math.Sqrt(sumSq / n.Length);
        // σ(std estimate) ≈ 0.02/√(2n) ≈ 5.5e-5; five of them.
        Assert.InRange(std, 0.02 - 2.8e-4, 0.02 + 2.8e-4);

        ParameterInit.Fill(a, InitKind.Ones, 0f, 42, 0);
        Assert.All(a, x => Assert.Equal(1f, x));
        ParameterInit.Fill(a, InitKind.Zeros, 0f, 42, 0);
        Assert.All(a, x => Assert.Equal(0f, x));
    }

    [Fact]
    public void InitParameters_fills_each_tensor_from_its_own_stream()
    {
        var program = new TableProgram(
            new ParameterInfo("w1", new[] { 8, 8 }, 0, 64, InitKind.Normal, 0.5f, true),
            new ParameterInfo("w2", new[] { 64 }, 64, 64, InitKind.Normal, 0.5f, true));
        program.InitParameters(9);
        Assert.NotEqual(program.Params.AsSpan(0, 64).ToArray(), program.Params.AsSpan(64, 64).ToArray());
        var alone = new float[64];
        ParameterInit.Fill(alone, InitKind.Normal, 0.5f, 9, 1);
        Assert.Equal(alone, program.Params.AsSpan(64, 64).ToArray());
    }
}

public class DropoutKernelsTests
{
    [Fact]
    public void Mask_holds_zero_or_inverse_keep_probability_at_rate_p()
    {
        int seed = TestSeed.Fresh();
        const int n = 1 << 18;
        const float p = 0.3f;
        var mask = new float[n];
        DropoutKernels.FillMask(mask, p, (ulong)seed, DropoutKernels.Stream(5, 0, 2));
        int dropped = 0;
        foreach (var m in mask)
        {
            if (m == 0f) dropped++;
            else Assert.Equal(1f / (1f - p), m);
        }
        double rate = (double)dropped / n;
        // Five binomial standard errors: √(p(1−p)/n) ≈ 9e-4.
        Assert.True(Math.Abs(rate - p) < 5 * Math.Sqrt(p * (1 - p) / n), $"drop rate {rate} (seed {seed})");
    }

    [Fact]
    public void Mask_element_i_is_Philox_uniform_i_against_p()
    {
        var mask = new float[100];
        ulong stream = DropoutKernels.Stream(1, 2, 3);
        DropoutKernels.FillMask(mask, 0.5f, 77, stream);
        for (int i = 0; i < mask.Length; i++)
            Assert.Equal(Philox.Uniform(77, stream, (ulong)i) < 0.5f ? 0f : 2f, mask[i]);
    }

    [Fact]
    public void Stream_packs_step_micro_step_and_site_into_the_dropout_domain_without_collisions()
    {
        Assert.Equal(0x8000_0000_0000_0000UL | (7UL << 24) | (2UL << 12) | 5UL, DropoutKernels.Stream(7, 2, 5));
        var seen = new System.Collections.Generic.HashSet<ulong>();
        for (long step = 0; step < 4; step++)
            for (int micro = 0; micro < 4; micro++)
                for (int site = 0; site < 4; site++)
                    Assert.True(seen.Add(DropoutKernels.Stream(step, micro, site)));
        Assert.Throws<ArgumentOutOfRangeException>(() => DropoutKernels.Stream(0, 4096, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DropoutKernels.Stream(-1, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DropoutKernels.FillMask(new float[4], 1f, 0, 0));
    }
}

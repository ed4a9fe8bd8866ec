using System;
using System.Linq;
using Kiln.Runtime;

namespace Kiln.Runtime.Tests;

public class ClippingTests
{
    [Fact]
    public void Global_norm_matches_a_double_reference()
    {
        int seed = TestSeed.Fresh();
        var rng = new System.Random(seed);
        var g = Enumerable.Range(0, 1003).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        double reference = Math.Sqrt(g.Sum(x => (double)x * x));
        // Both sum the same float values in double; only the summation order differs (≈1e-15 relative).
        Assert.True(Math.Abs(GradientClipping.GlobalNorm(g) - reference) <= 1e-12 * reference, $"seed {seed}");
    }

    [Fact]
    public void Clipping_scales_to_the_max_norm_and_returns_the_norm_before()
    {
        var g = Enumerable.Range(0, 100).Select(i => (float)(i % 7 - 3)).ToArray();
        var original = (float[])g.Clone();
        double before = GradientClipping.GlobalNorm(g);
        double returned = GradientClipping.ClipByGlobalNorm(g, 1.0);
        Assert.Equal(before, returned);
        // PyTorch's factor max/(norm + 1e-6) leaves the norm just under 1; float rounding adds ~1e-7.
        Assert.InRange(GradientClipping.GlobalNorm(g), 1.0 - 1e-5, 1.0);
        for (int i = 0; i < g.Length; i++) Assert.Equal(original[i] * (float)(1.0 / (before + 1e-6)), g[i], 1e-6f);
    }

    [Fact]
    public void Gradients_under_the_max_norm_are_untouched()
    {
        var g = new[] { 0.1f, -0.2f, 0.05f };
        var copy = (float[])g.Clone();
        GradientClipping.ClipByGlobalNorm(g, 1.0);
        Assert.Equal(copy, g);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Non_finite_gradients_report_a_non_finite_norm_and_stay_untouched(float bad)
    {
        var g = Enumerable.Repeat(3f, 40).ToArray();
        g[17] = bad;
        var copy = (float[])g.Clone();
        double norm = GradientClipping.ClipByGlobalNorm(g, 1.0);
        Assert.False(double.IsFinite(norm));
        Assert.Equal(float.IsNaN(bad), double.IsNaN(norm));
        Assert.Equal(copy, g);
    }

    [Fact]
    public void Non_positive_max_norm_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipByGlobalNorm(new float[3], 0));
    }
}

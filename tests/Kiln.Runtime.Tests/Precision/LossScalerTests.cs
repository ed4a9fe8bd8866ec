using System;
using Kiln.Runtime.Precision;

namespace Kiln.Runtime.Tests.Precision;

public class LossScalerTests
{
    [Fact]
    public void Defaults_are_PyTorch_GradScaler_defaults()
    {
        var s = new DynamicLossScaler();
        Assert.Equal(65536f, s.Scale);
        Assert.Equal(2f, s.GrowthFactor);
        Assert.Equal(0.5f, s.BackoffFactor);
        Assert.Equal(2000, s.GrowthInterval);
        Assert.Equal(0, s.GrowthTracker);
        Assert.Equal(0, s.SkippedSteps);
        Assert.Equal(3f * 65536f, s.ScaleLoss(3f));
    }

    [Fact]
    public void An_injected_overflow_halves_the_scale_and_skips_the_step()
    {
        var s = new DynamicLossScaler();
        var grads = new float[37];
        for (int i = 0; i < grads.Length; i++) grads[i] = (i + 1) * s.Scale;
        grads[29] = float.PositiveInfinity;
        bool found = s.Unscale(grads);
        Assert.True(found);
        Assert.False(s.Update(found));
        Assert.Equal(32768f, s.Scale);
        Assert.Equal(1, s.SkippedSteps);
        Assert.Equal(0, s.GrowthTracker);
    }

    [Fact]
    public void Unscale_divides_by_the_scale_and_reports_clean_gradients()
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var s = new DynamicLossScaler();
        var original = new float[1001];
        for (int i = 0; i < original.Length; i++) original[i] = (float)(rng.NextDouble() * 2 - 1);
        var grads = Array.ConvertAll(original, g => g * s.Scale);
        Assert.False(s.Unscale(grads));
        for (int i = 0; i < grads.Length; i++)
            Assert.True(grads[i] == original[i], $"element {i}: {grads[i]:R} != {original[i]:R} (seed {seed})");
    }

    [Fact]
    public void Unscale_finds_a_non_finite_element_at_every_position_of_odd_lengths()
    {
        var s = new DynamicLossScaler(initialScale: 1024f);
        foreach (int n in PrecisionTestData.Lengths)
        {
            for (int pos = 0; pos < n; pos++)
            {
                foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                {
                    var grads = new float[n];
                    Array.Fill(grads, 3f);
                    grads[pos] = bad;
                    if (!s.Unscale(grads)) Assert.Fail($"missed {bad} at {pos} of {n}");
                    if (n > 1 && grads[(pos + 1) % n] != 3f / 1024f) Assert.Fail($"element {(pos + 1) % n} of {n} not unscaled");
                }
            }
            var clean = new float[n];
            Array.Fill(clean, float.MaxValue);
            Assert.False(s.Unscale(clean), $"false alarm, n={n}");
            Assert.False(NonFiniteGuard.AnyNonFinite(clean));
        }
    }

    [Fact]
    public void A_finite_gradient_that_unscaling_overflows_counts_as_non_finite()
    {
        var s = new DynamicLossScaler(initialScale: 0.25f, minScale: 0.125f);
        var grads = new[] { 1f, float.MaxValue / 2 };
        Assert.True(s.Unscale(grads));
    }

    [Fact]
    public void Two_thousand_clean_steps_double_the_scale()
    {
        var s = new DynamicLossScaler();
        for (int step = 1; step < 2000; step++)
        {
            Assert.True(s.Update(false));
            Assert.Equal(65536f, s.Scale);
            Assert.Equal(step, s.GrowthTracker);
        }
        Assert.True(s.Update(false));
        Assert.Equal(131072f, s.Scale);
        Assert.Equal(0, s.GrowthTracker);
        // A skip in the middle restarts the count.
        for (int step = 0; step < 1500; step++) s.Update(false);
        s.Update(true);
        Assert.Equal(65536f, s.Scale);
        for (int step = 0; step < 1999; step++) s.Update(false);
        Assert.Equal(65536f, s.Scale);
        s.Update(false);
        Assert.Equal(131072f, s.Scale);
    }

    [Fact]
    public void Matches_a_hand_computed_GradScaler_trace()
    {
        // torch.amp.GradScaler(init_scale=1024, growth_factor=2, backoff_factor=0.5, growth_interval=3), with
        // found_inf per step as below. _amp_update_scale_: on inf, scale *= backoff and tracker = 0; otherwise
        // tracker += 1 and, when it reaches the interval, scale *= growth and tracker = 0.
        bool[] inf = [false, false, true, false, false, false, false, false, false, true, true, false, false, false];
        float[] scale = [1024, 1024, 512, 512, 512, 1024, 1024, 1024, 2048, 1024, 512, 512, 512, 1024];
        int[] tracker = [1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 0, 1, 2, 0];
        var s = new DynamicLossScaler(initialScale: 1024, growthFactor: 2, backoffFactor: 0.5f, growthInterval: 3);
        for (int t = 0; t < inf.Length; t++)
        {
            Assert.Equal(!inf[t], s.Update(inf[t]));
            Assert.Equal(scale[t], s.Scale);
            Assert.Equal(tracker[t], s.GrowthTracker);
        }
        Assert.Equal(3, s.SkippedSteps);
    }

    [Fact]
    public void Matches_a_hand_computed_trace_with_other_factors()
    {
        // growth 3, backoff 0.25, interval 2, init 100 (not a power of two, so the float products matter).
        bool[] inf = [false, false, false, true, false, false, true, true];
        float[] scale = [100, 300, 300, 75, 75, 225, 56.25f, 14.0625f];
        var s = new DynamicLossScaler(initialScale: 100, growthFactor: 3, backoffFactor: 0.25f, growthInterval: 2);
        for (int t = 0; t < inf.Length; t++)
        {
            s.Update(inf[t]);
            Assert.Equal(scale[t], s.Scale);
        }
    }

    [Fact]
    public void The_scale_is_clamped_to_its_bounds()
    {
        var s = new DynamicLossScaler(initialScale: 8, minScale: 1, maxScale: 32, growthInterval: 1);
        for (int i = 0; i < 10; i++) Assert.False(s.Update(true));
        Assert.Equal(1f, s.Scale);
        for (int i = 0; i < 10; i++) Assert.True(s.Update(false));
        Assert.Equal(32f, s.Scale);
        // The default floor is 1 and the default ceiling float.MaxValue.
        var d = new DynamicLossScaler();
        for (int i = 0; i < 40; i++) d.Update(true);
        Assert.Equal(1f, d.Scale);
        var g = new DynamicLossScaler(initialScale: 1e38f, growthInterval: 1);
        for (int i = 0; i < 4; i++) g.Update(false);
        Assert.Equal(float.MaxValue, g.Scale);
    }

    [Theory]
    [InlineData(0f, 2f, 0.5f, 2000, 1f, float.MaxValue, "initialScale")]
    [InlineData(float.NaN, 2f, 0.5f, 2000, 1f, float.MaxValue, "initialScale")]
    [InlineData(float.PositiveInfinity, 2f, 0.5f, 2000, 1f, float.MaxValue, "initialScale")]
    [InlineData(0.5f, 2f, 0.5f, 2000, 1f, float.MaxValue, "initialScale")]       // below minScale
    [InlineData(65536f, 1f, 0.5f, 2000, 1f, float.MaxValue, "growthFactor")]
    [InlineData(65536f, float.NaN, 0.5f, 2000, 1f, float.MaxValue, "growthFactor")]
    [InlineData(65536f, float.PositiveInfinity, 0.5f, 2000, 1f, float.MaxValue, "growthFactor")]
    [InlineData(65536f, 2f, 1f, 2000, 1f, float.MaxValue, "backoffFactor")]
    [InlineData(65536f, 2f, 0f, 2000, 1f, float.MaxValue, "backoffFactor")]
    [InlineData(65536f, 2f, float.NaN, 2000, 1f, float.MaxValue, "backoffFactor")]
    [InlineData(65536f, 2f, 0.5f, 0, 1f, float.MaxValue, "growthInterval")]
    [InlineData(65536f, 2f, 0.5f, 2000, 0f, float.MaxValue, "minScale")]
    [InlineData(65536f, 2f, 0.5f, 2000, -1f, float.MaxValue, "minScale")]
    [InlineData(65536f, 2f, 0.5f, 2000, 1f, 0.5f, "maxScale")]
    [InlineData(65536f, 2f, 0.5f, 2000, 1f, float.PositiveInfinity, "maxScale")]
    public void Invalid_configuration_is_rejected_naming_the_argument(float init, float growth, float backoff, int interval, float min, float max, string name)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new DynamicLossScaler(init, growth, backoff, interval, min, max));
        Assert.Equal(name, e.ParamName);
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Fact]
    public void State_round_trips_and_the_restored_scaler_continues_identically()
    {
        int seed = TestSeed.Fresh();
        var rng = new Random(seed);
        var a = new DynamicLossScaler(growthInterval: 5);
        for (int i = 0; i < 23; i++) a.Update(rng.Next(4) == 0);
        var state = a.State;
        Assert.Equal(new DynamicLossScalerState(a.Scale, a.GrowthTracker, a.SkippedSteps), state);

        var b = new DynamicLossScaler(growthInterval: 5);
        b.Restore(state);
        Assert.Equal(state, b.State);
        for (int i = 0; i < 50; i++)
        {
            bool inf = rng.Next(4) == 0;
            Assert.Equal(a.Update(inf), b.Update(inf));
            Assert.Equal(a.State, b.State);
        }
    }

    [Fact]
    public void Restore_rejects_a_state_that_does_not_fit()
    {
        var s = new DynamicLossScaler(growthInterval: 10, maxScale: 1e6f);
        Assert.Throws<ArgumentException>(() => s.Restore(new DynamicLossScalerState(float.NaN, 0, 0)));
        Assert.Throws<ArgumentException>(() => s.Restore(new DynamicLossScalerState(0.5f, 0, 0)));
        Assert.Throws<ArgumentException>(() => s.Restore(new DynamicLossScalerState(2e6f, 0, 0)));
        Assert.Throws<ArgumentException>(() => s.Restore(new DynamicLossScalerState(1024f, 10, 0)));
        Assert.Throws<ArgumentException>(() => s.Restore(new DynamicLossScalerState(1024f, -1, 0)));
        Assert.Throws<ArgumentException>(() => s.Restore(new DynamicLossScalerState(1024f, 0, -1)));
        Assert.Equal(65536f, s.Scale);   // untouched by the failed restores
    }

    [Fact]
    public void Guard_skips_non_finite_steps_and_throws_after_K_in_a_row()
    {
        var g = new NonFiniteGuard(maxConsecutiveSkips: 3);
        Assert.True(g.Update(false, 1));
        Assert.False(g.Update(true, 2));
        Assert.False(g.Update(true, 3));
        Assert.True(g.Update(false, 4));   // a clean step resets the run
        Assert.Equal(0, g.ConsecutiveSkips);
        Assert.False(g.Update(true, 5));
        Assert.False(g.Update(true, 6));
        Assert.Equal(2, g.ConsecutiveSkips);
        Assert.Equal(4, g.SkippedSteps);
        var e = Assert.Throws<InvalidOperationException>(() => g.Update(true, 7));
        Assert.Contains("step 7", e.Message);
        Assert.Contains("3 consecutive", e.Message);
        Assert.Contains("5 steps skipped", e.Message);
    }

    [Fact]
    public void Guard_state_round_trips_and_validates()
    {
        var g = new NonFiniteGuard(4);
        g.Update(true, 10);
        g.Update(false, 11);
        g.Update(true, 12);
        var h = new NonFiniteGuard(4);
        h.Restore(g.State);
        Assert.Equal(new NonFiniteGuardState(1, 2), h.State);
        h.Update(true, 13);
        h.Update(true, 14);
        Assert.Throws<InvalidOperationException>(() => h.Update(true, 15));
        Assert.Throws<ArgumentException>(() => h.Restore(new NonFiniteGuardState(-1, 0)));
        Assert.Throws<ArgumentException>(() => h.Restore(new NonFiniteGuardState(3, 2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NonFiniteGuard(0));
    }

    [Fact]
    public void AnyNonFinite_finds_one_bad_element_anywhere()
    {
        foreach (int n in PrecisionTestData.Lengths)
        {
            var v = new float[n];
            Array.Fill(v, -float.MaxValue);
            Assert.False(NonFiniteGuard.AnyNonFinite(v));
            for (int pos = 0; pos < n; pos++)
            {
                v[pos] = float.NaN;
                if (!NonFiniteGuard.AnyNonFinite(v)) Assert.Fail($"missed NaN at {pos} of {n}");
                v[pos] = float.NegativeInfinity;
                if (!NonFiniteGuard.AnyNonFinite(v)) Assert.Fail($"missed −∞ at {pos} of {n}");
                v[pos] = 0f;
            }
        }
    }
}

using System;
using Kiln.Runtime;

namespace Kiln.Runtime.Tests;

public class ScheduleTests
{
    // The schedule computes in double and rounds once to float: compare to 1 float ulp of the value.
    private static void Near(double expected, float actual) => Assert.True(Math.Abs(expected - actual) <= 1e-7 * Math.Max(1, Math.Abs(expected)) + 1e-12, $"expected {expected}, got {actual}");

    [Fact]
    public void Warmup_rises_linearly_from_zero_and_reaches_the_peak_on_its_last_step()
    {
        var s = LearningRateSchedule.Cosine(1e-3f, 1e-4f, warmupSteps: 10, totalSteps: 110);
        Near(1e-4, s.At(0));
        Near(5e-4, s.At(4));
        Near(1e-3, s.At(9));
        Near(1e-3, s.At(10));
        Assert.True(s.At(3) - s.At(2) is var d && Math.Abs(d - 1e-4f) < 1e-9);
    }

    [Fact]
    public void Cosine_passes_the_midpoint_halfway_and_ends_at_the_minimum()
    {
        var s = LearningRateSchedule.Cosine(1e-3f, 1e-4f, warmupSteps: 10, totalSteps: 110);
        Near(5.5e-4, s.At(60));
        Near(1e-4 + 0.45e-3 * (1 + Math.Cos(Math.PI * 0.99)), s.At(109));
        Near(1e-4, s.At(110));
        Near(1e-4, s.At(10_000));
        for (long t = 11; t < 110; t++) Assert.True(s.At(t) <= s.At(t - 1), $"not decreasing at {t}");
    }

    [Fact]
    public void Constant_schedule_holds_the_rate_after_warmup()
    {
        var s = LearningRateSchedule.Constant(3e-3f, warmupSteps: 4);
        Near(0.75e-3, s.At(0));
        Near(3e-3, s.At(3));
        Assert.Equal(3e-3f, s.At(4));
        Assert.Equal(3e-3f, s.At(1_000_000));
        Assert.Equal(3e-3f, LearningRateSchedule.Constant(3e-3f).At(0));
    }

    [Fact]
    public void Bad_schedule_arguments_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(1e-3f, 2e-3f, 0, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(1e-3f, 0f, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant(float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant(1f).At(-1));
    }
}

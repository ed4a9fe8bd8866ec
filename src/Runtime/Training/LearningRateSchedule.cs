using System;

namespace Kiln.Runtime;

/// <summary>
/// The learning rate as a function of the 0-based optimizer step: a linear warmup, then either a
/// constant rate or a half-cosine from the peak down to a minimum.
/// </summary>
/// <remarks>
/// Warmup: <c>lr(s) = peak·(s + 1)/W</c> for <c>s &lt; W</c>, a line from 0 that reaches the peak on
/// the last warmup step (so step 0 already moves the weights). Cosine: with
/// <c>q = (s − W)/(S − W)</c>, <c>lr(s) = min + ½(peak − min)(1 + cos πq)</c> for <c>W ≤ s &lt; S</c>,
/// and <c>min</c> from step <c>S</c> on.
/// </remarks>
public sealed class LearningRateSchedule
{
    private LearningRateSchedule(float peak, float minimum, long warmupSteps, long totalSteps, bool cosine)
    {
        if (!float.IsFinite(peak) || peak < 0)
            throw new ArgumentOutOfRangeException(nameof(peak), peak, "The peak learning rate must be finite and non-negative.");
        if (!float.IsFinite(minimum) || minimum < 0 || minimum > peak)
            throw new ArgumentOutOfRangeException(nameof(minimum), minimum, $"The minimum learning rate must be in [0, peak = {peak}].");
        if (warmupSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "Warmup steps must be non-negative.");
        if (cosine && totalSteps <= 0)
            throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "A cosine schedule needs a positive total number of steps.");
        Peak = peak;
        Minimum = minimum;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        IsCosine = cosine;
    }

    /// <summary>A rate of <paramref name="learningRate"/> after a linear warmup of <paramref name="warmupSteps"/> steps.</summary>
    public static LearningRateSchedule Constant(float learningRate, long warmupSteps = 0)
        => new(learningRate, learningRate, warmupSteps, 0, cosine: false);

    /// <summary>
    /// Linear warmup over <paramref name="warmupSteps"/> steps to <paramref name="peak"/>, then cosine decay
    /// to <paramref name="minimum"/> at step <paramref name="totalSteps"/>.
    /// </summary>
    public static LearningRateSchedule Cosine(float peak, float minimum, long warmupSteps, long totalSteps)
        => new(peak, minimum, warmupSteps, totalSteps, cosine: true);

    /// <summary>The rate after warmup (constant) or at its end (cosine).</summary>
    public float Peak { get; }

    /// <summary>The floor of the cosine decay (equal to <see cref="Peak"/> for a constant schedule).</summary>
    public float Minimum { get; }

    /// <summary>Steps of linear warmup.</summary>
    public long WarmupSteps { get; }

    /// <summary>The step where the cosine reaches <see cref="Minimum"/> (0 for a constant schedule).</summary>
    public long TotalSteps { get; }

    /// <summary>Whether the rate decays by a cosine after warmup.</summary>
    public bool IsCosine { get; }

    /// <summary>The learning rate for 0-based step <paramref name="step"/>.</summary>
    public float At(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "A step is non-negative.");
        if (step < WarmupSteps) return (float)((double)Peak * (step + 1) / WarmupSteps);
        if (!IsCosine) return Peak;
        if (step >= TotalSteps) return Minimum;
        double q = (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps);
        return (float)(Minimum + 0.5 * ((double)Peak - Minimum) * (1.0 + Math.Cos(Math.PI * q)));
    }
}

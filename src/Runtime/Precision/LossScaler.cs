using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Kiln.Runtime.Precision;

/// <summary>
/// Dynamic loss scaling for fp16 training, with the semantics of PyTorch's <c>torch.amp.GradScaler</c>:
/// the loss is multiplied by <see cref="Scale"/> before the backward pass, the gradients are unscaled
/// and checked for inf/NaN, and <see cref="Update(bool)"/> decides whether the optimizer step runs and
/// how the scale moves.
/// </summary>
/// <remarks>
/// <para>Per step: <see cref="Unscale(Span{float})"/> on every gradient buffer (OR the results, and across
/// ranks all-reduce the flag), then <see cref="Update(bool)"/>. A step with a non-finite gradient is
/// skipped and the scale is multiplied by the backoff factor (0.5); after <c>growthInterval</c> (2000)
/// consecutive clean steps it is multiplied by the growth factor (2). A skipped step resets the count of
/// clean steps, and so does a growth.</para>
/// <para>Beyond PyTorch: the scale is clamped to [<see cref="MinScale"/>, <see cref="MaxScale"/>]. The
/// default floor is 1 (DeepSpeed's and Megatron's <c>min_loss_scale</c>): a model that overflows even
/// unscaled is diverging, and halving further only hides it. The default ceiling is
/// <see cref="float.MaxValue"/>, where PyTorch's rule "grow only if the result is finite" stops as well.</para>
/// <para>An instance is not thread-safe: use one per training loop; ranks stay in step because they all
/// pass the same all-reduced flag to <see cref="Update(bool)"/>. At the floor a run of overflows keeps
/// skipping steps; pair the scaler with a <see cref="NonFiniteGuard"/> to stop such a run.</para>
/// </remarks>
public sealed class DynamicLossScaler
{
    /// <summary>PyTorch's initial scale, 2¹⁶.</summary>
    public const float DefaultInitialScale = 65536f;

    /// <summary>PyTorch's growth factor, 2.</summary>
    public const float DefaultGrowthFactor = 2f;

    /// <summary>PyTorch's backoff factor, 0.5.</summary>
    public const float DefaultBackoffFactor = 0.5f;

    /// <summary>PyTorch's growth interval, 2000 clean steps.</summary>
    public const int DefaultGrowthInterval = 2000;

    /// <summary>Default lower clamp of the scale, 1.</summary>
    public const float DefaultMinScale = 1f;

    /// <summary>Default upper clamp of the scale, <see cref="float.MaxValue"/> (in effect none).</summary>
    public const float DefaultMaxScale = float.MaxValue;

    private float _scale;
    private int _growthTracker;
    private long _skippedSteps;

    /// <summary>Creates a scaler; every argument defaults to PyTorch's value (the clamps to the ones in the remarks).</summary>
    /// <param name="initialScale">Starting scale; positive, finite, within [<paramref name="minScale"/>, <paramref name="maxScale"/>].</param>
    /// <param name="growthFactor">Factor applied after <paramref name="growthInterval"/> clean steps; finite and greater than 1.</param>
    /// <param name="backoffFactor">Factor applied on a non-finite step; strictly between 0 and 1.</param>
    /// <param name="growthInterval">Consecutive clean steps before the scale grows; at least 1.</param>
    /// <param name="minScale">Lower clamp; positive and finite.</param>
    /// <param name="maxScale">Upper clamp; finite and at least <paramref name="minScale"/>.</param>
    /// <exception cref="ArgumentException">An argument is out of range (the message names it and the rule).</exception>
    public DynamicLossScaler(
        float initialScale = DefaultInitialScale,
        float growthFactor = DefaultGrowthFactor,
        float backoffFactor = DefaultBackoffFactor,
        int growthInterval = DefaultGrowthInterval,
        float minScale = DefaultMinScale,
        float maxScale = DefaultMaxScale)
    {
        if (!(minScale > 0) || !float.IsFinite(minScale))
            throw new ArgumentOutOfRangeException(nameof(minScale), minScale, "The minimum loss scale must be positive and finite.");
        if (!float.IsFinite(maxScale) || maxScale < minScale)
            throw new ArgumentOutOfRangeException(nameof(maxScale), maxScale, $"The maximum loss scale must be finite and at least the minimum scale ({minScale}).");
        if (!float.IsFinite(initialScale) || initialScale < minScale || initialScale > maxScale)
            throw new ArgumentOutOfRangeException(nameof(initialScale), initialScale, $"The initial loss scale must be finite and within [minScale, maxScale] = [{minScale}, {maxScale}].");
        if (!float.IsFinite(growthFactor) || !(growthFactor > 1))
            throw new ArgumentOutOfRangeException(nameof(growthFactor), growthFactor, "The growth factor must be finite and greater than 1.");
        if (!(backoffFactor > 0 && backoffFactor < 1))
            throw new ArgumentOutOfRangeException(nameof(backoffFactor), backoffFactor, "The backoff factor must lie strictly between 0 and 1.");
        if (growthInterval < 1)
            throw new ArgumentOutOfRangeException(nameof(growthInterval), growthInterval, "The growth interval must be at least 1 step.");
        _scale = initialScale;
        GrowthFactor = growthFactor;
        BackoffFactor = backoffFactor;
        GrowthInterval = growthInterval;
        MinScale = minScale;
        MaxScale = maxScale;
    }

    /// <summary>The current scale: multiply the loss by it before the backward pass.</summary>
    public float Scale => _scale;

    /// <summary>Factor applied to the scale after <see cref="GrowthInterval"/> consecutive clean steps.</summary>
    public float GrowthFactor { get; }

    /// <summary>Factor applied to the scale on a step with a non-finite gradient.</summary>
    public float BackoffFactor { get; }

    /// <summary>Consecutive clean steps before the scale grows.</summary>
    public int GrowthInterval { get; }

    /// <summary>Lower clamp of the scale.</summary>
    public float MinScale { get; }

    /// <summary>Upper clamp of the scale.</summary>
    public float MaxScale { get; }

    /// <summary>Consecutive clean steps since the last skip or growth (PyTorch's <c>_growth_tracker</c>).</summary>
    public int GrowthTracker => _growthTracker;

    /// <summary>Optimizer steps skipped so far for non-finite gradients.</summary>
    public long SkippedSteps => _skippedSteps;

    /// <summary><paramref name="loss"/>·<see cref="Scale"/>.</summary>
    public float ScaleLoss(float loss) => loss * _scale;

    /// <summary>
    /// Unscales <paramref name="grads"/> in place, in one vectorised pass, and reports whether any result is
    /// inf or NaN (then the step must be skipped: pass the OR over all buffers and ranks to <see cref="Update(bool)"/>).
    /// </summary>
    /// <remarks>
    /// Like PyTorch, the gradients are multiplied by the float reciprocal of the scale, which is division
    /// exactly whenever the scale is a power of two (always, with the default factors and an initial scale
    /// that is a power of two). The check is on the unscaled values, so it also catches a finite gradient
    /// that a scale below 1 pushes past the float range.
    /// </remarks>
    /// <returns><see langword="true"/> when some element is non-finite.</returns>
    public bool Unscale(Span<float> grads) => NonFiniteGuard.MultiplyAndCheck(grads, 1f / _scale);

    /// <summary>
    /// Advances the scaler by one step. <paramref name="foundNonFinite"/>: whether any gradient of this
    /// step (on any rank) was inf or NaN.
    /// </summary>
    /// <returns>Whether the optimizer step should be applied (<see langword="false"/> exactly when <paramref name="foundNonFinite"/>).</returns>
    public bool Update(bool foundNonFinite)
    {
        if (foundNonFinite)
        {
            _scale = Math.Max(_scale * BackoffFactor, MinScale);
            _growthTracker = 0;
            _skippedSteps++;
            return false;
        }
        if (++_growthTracker >= GrowthInterval)
        {
            _scale = Math.Min(_scale * GrowthFactor, MaxScale);
            _growthTracker = 0;
        }
        return true;
    }

    /// <summary>The state to save in a checkpoint (the factors and clamps are configuration, not state).</summary>
    public DynamicLossScalerState State => new(_scale, _growthTracker, _skippedSteps);

    /// <summary>Restores <paramref name="state"/> saved from a scaler by <see cref="State"/>.</summary>
    /// <exception cref="ArgumentException">The state does not fit this scaler's configuration (the message says how).</exception>
    public void Restore(DynamicLossScalerState state)
    {
        if (!float.IsFinite(state.Scale) || state.Scale < MinScale || state.Scale > MaxScale)
            throw new ArgumentException($"The saved loss scale {state.Scale} is not finite or lies outside this scaler's [minScale, maxScale] = [{MinScale}, {MaxScale}].", nameof(state));
        if (state.GrowthTracker < 0 || state.GrowthTracker >= GrowthInterval)
            throw new ArgumentException($"The saved growth tracker {state.GrowthTracker} must lie in [0, growthInterval) = [0, {GrowthInterval}); was the checkpoint written with a different growth interval?", nameof(state));
        if (state.SkippedSteps < 0)
            throw new ArgumentException($"The saved count of skipped steps {state.SkippedSteps} is negative.", nameof(state));
        _scale = state.Scale;
        _growthTracker = state.GrowthTracker;
        _skippedSteps = state.SkippedSteps;
    }
}

/// <summary>The checkpointed state of a <see cref="DynamicLossScaler"/>.</summary>
/// <param name="Scale">The current scale.</param>
/// <param name="GrowthTracker">Consecutive clean steps since the last skip or growth.</param>
/// <param name="SkippedSteps">Steps skipped so far.</param>
public readonly record struct DynamicLossScalerState(float Scale, int GrowthTracker, long SkippedSteps);

/// <summary>
/// Non-finite step detection without loss scaling (bf16, or fp32): a step whose loss or gradients are
/// inf/NaN is skipped and counted, and training stops with an <see cref="InvalidOperationException"/>
/// after <see cref="MaxConsecutiveSkips"/> such steps in a row, rather than running on with a model that
/// has diverged.
/// </summary>
public sealed class NonFiniteGuard
{
    /// <summary>Default number of consecutive non-finite steps tolerated before training stops.</summary>
    public const int DefaultMaxConsecutiveSkips = 10;

    private int _consecutiveSkips;
    private long _skippedSteps;

    /// <summary>Creates a guard.</summary>
    /// <param name="maxConsecutiveSkips">Consecutive non-finite steps after which <see cref="Update(bool, long)"/> throws; at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxConsecutiveSkips"/> is below 1.</exception>
    public NonFiniteGuard(int maxConsecutiveSkips = DefaultMaxConsecutiveSkips)
    {
        if (maxConsecutiveSkips < 1)
            throw new ArgumentOutOfRangeException(nameof(maxConsecutiveSkips), maxConsecutiveSkips, "The number of consecutive non-finite steps tolerated must be at least 1.");
        MaxConsecutiveSkips = maxConsecutiveSkips;
    }

    /// <summary>Consecutive non-finite steps after which training stops.</summary>
    public int MaxConsecutiveSkips { get; }

    /// <summary>Non-finite steps in a row up to now.</summary>
    public int ConsecutiveSkips => _consecutiveSkips;

    /// <summary>Steps skipped so far.</summary>
    public long SkippedSteps => _skippedSteps;

    /// <summary>
    /// Records one step. <paramref name="foundNonFinite"/>: whether the loss or any gradient (on any rank) was inf/NaN.
    /// </summary>
    /// <param name="foundNonFinite">Whether this step's loss or gradients were non-finite.</param>
    /// <param name="step">The global step number, for the error message.</param>
    /// <returns>Whether the optimizer step should be applied.</returns>
    /// <exception cref="InvalidOperationException">This is the <see cref="MaxConsecutiveSkips"/>-th non-finite step in a row.</exception>
    public bool Update(bool foundNonFinite, long step)
    {
        if (!foundNonFinite)
        {
            _consecutiveSkips = 0;
            return true;
        }
        _consecutiveSkips++;
        _skippedSteps++;
        if (_consecutiveSkips >= MaxConsecutiveSkips)
            throw new InvalidOperationException(
                $"Training stopped at step {step}: {_consecutiveSkips} consecutive steps had a non-finite (inf/NaN) loss or gradient " +
                $"({_skippedSteps} steps skipped in all, limit {MaxConsecutiveSkips} in a row). The model has most likely diverged: " +
                "lower the learning rate, clip gradients, or look for the operation that produces inf/NaN.");
        return false;
    }

    /// <summary>The state to save in a checkpoint.</summary>
    public NonFiniteGuardState State => new(_consecutiveSkips, _skippedSteps);

    /// <summary>Restores <paramref name="state"/> saved by <see cref="State"/>.</summary>
    /// <exception cref="ArgumentException">A count is negative.</exception>
    public void Restore(NonFiniteGuardState state)
    {
        if (state.ConsecutiveSkips < 0 || state.SkippedSteps < state.ConsecutiveSkips)
            throw new ArgumentException($"Inconsistent guard state: {state.ConsecutiveSkips} consecutive skips, {state.SkippedSteps} in all.", nameof(state));
        _consecutiveSkips = state.ConsecutiveSkips;
        _skippedSteps = state.SkippedSteps;
    }

    /// <summary>Whether any element of <paramref name="values"/> is inf or NaN (one vectorised pass).</summary>
    public static bool AnyNonFinite(ReadOnlySpan<float> values)
    {
        ref uint v0 = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(values));
        int n = values.Length, i = 0;
        const uint Exponent = 0x7F80_0000u;
        if (Vector512.IsHardwareAccelerated)
        {
            var acc = Vector512<uint>.Zero;
            for (; i <= n - 16; i += 16)
                acc |= Vector512.Equals(Vector512.LoadUnsafe(ref v0, (nuint)i) & Vector512.Create(Exponent), Vector512.Create(Exponent));
            if (acc != Vector512<uint>.Zero) return true;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<uint>.Zero;
            for (; i <= n - 8; i += 8)
                acc |= Vector256.Equals(Vector256.LoadUnsafe(ref v0, (nuint)i) & Vector256.Create(Exponent), Vector256.Create(Exponent));
            if (acc != Vector256<uint>.Zero) return true;
        }
        for (; i < n; i++)
            if ((Unsafe.Add(ref v0, i) & Exponent) == Exponent) return true;
        return false;
    }

    /// <summary>Multiplies <paramref name="values"/> by <paramref name="factor"/> in place and reports whether any product is non-finite.</summary>
    internal static bool MultiplyAndCheck(Span<float> values, float factor)
    {
        ref float v0 = ref MemoryMarshal.GetReference(values);
        int n = values.Length, i = 0;
        const uint Exponent = 0x7F80_0000u;
        bool found = false;
        if (Vector512.IsHardwareAccelerated)
        {
            var f = Vector512.Create(factor);
            var acc = Vector512<uint>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var y = Vector512.LoadUnsafe(ref v0, (nuint)i) * f;
                y.StoreUnsafe(ref v0, (nuint)i);
                acc |= Vector512.Equals(y.AsUInt32() & Vector512.Create(Exponent), Vector512.Create(Exponent));
            }
            found |= acc != Vector512<uint>.Zero;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var f = Vector256.Create(factor);
            var acc = Vector256<uint>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var y = Vector256.LoadUnsafe(ref v0, (nuint)i) * f;
                y.StoreUnsafe(ref v0, (nuint)i);
                acc |= Vector256.Equals(y.AsUInt32() & Vector256.Create(Exponent), Vector256.Create(Exponent));
            }
            found |= acc != Vector256<uint>.Zero;
        }
        for (; i < n; i++)
        {
            float y = Unsafe.Add(ref v0, i) * factor;
            Unsafe.Add(ref v0, i) = y;
            found |= !float.IsFinite(y);
        }
        return found;
    }
}

/// <summary>The checkpointed state of a <see cref="NonFiniteGuard"/>.</summary>
/// <param name="ConsecutiveSkips">Non-finite steps in a row at the time of saving.</param>
/// <param name="SkippedSteps">Steps skipped so far.</param>
public readonly record struct NonFiniteGuardState(int ConsecutiveSkips, long SkippedSteps);

using System;
using System.Collections.Generic;

namespace Kiln;

/// <summary>One evaluation during a run.</summary>
/// <param name="Step">Optimizer steps completed when it ran.</param>
/// <param name="Loss">Mean eval loss (weighted by examples).</param>
public readonly record struct EvalPoint(long Step, double Loss);

/// <summary>What a <see cref="Trainer.Fit"/> call did.</summary>
public sealed record TrainResult
{
    /// <summary>Optimizer steps run by this call, skipped steps included.</summary>
    public required long StepsRun { get; init; }

    /// <summary>Mean training loss over the last ~10% of the steps (at least one), skipped steps excluded; NaN when none was finite.</summary>
    public required double FinalTrainLoss { get; init; }

    /// <summary>The lowest eval loss seen, or null without eval data.</summary>
    public double? BestEvalLoss { get; init; }

    /// <summary>The step (count of completed steps, as in <see cref="EvalPoint.Step"/>) of <see cref="BestEvalLoss"/>.</summary>
    public long? BestEvalStep { get; init; }

    /// <summary>Every evaluation, in order.</summary>
    public required IReadOnlyList<EvalPoint> EvalHistory { get; init; }

    /// <summary>Whether early stopping ended the run; the parameters were then restored to those of <see cref="BestEvalStep"/>.</summary>
    public required bool StoppedEarly { get; init; }

    /// <summary>Steps skipped for a non-finite loss or gradient norm.</summary>
    public required long SkippedSteps { get; init; }

    /// <summary>Training examples per second (evaluation time excluded).</summary>
    public required double ExamplesPerSecond { get; init; }

    /// <summary>Training tokens per second, when the data counts tokens (<see cref="Dataset.TokensPerExample"/>); otherwise null.</summary>
    public double? TokensPerSecond { get; init; }

    /// <summary>Wall-clock time of the call, evaluation included.</summary>
    public required TimeSpan WallTime { get; init; }
}

/// <summary>
/// Training stopped because too many consecutive steps had a non-finite loss or gradient norm
/// (see <see cref="TrainOptions.MaxConsecutiveSkips"/>). The parameters are those after the last good step.
/// </summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException(string message, long step, int consecutiveSkips) : base(message)
    {
        Step = step;
        ConsecutiveSkips = consecutiveSkips;
    }

    /// <summary>Optimizer steps completed (skipped ones included) when training stopped.</summary>
    public long Step { get; }

    /// <summary>How many steps in a row were skipped.</summary>
    public int ConsecutiveSkips { get; }
}

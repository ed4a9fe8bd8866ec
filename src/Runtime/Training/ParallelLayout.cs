using System;

namespace Kiln;

/// <summary>
/// The model's [Parallel] declaration as the build planned it: mesh degrees, micro-batches per step, ZeRO stage and the
/// global batch and sequence length of the plan (0: not given). The launch decides the actual data-parallel world (the
/// communicator) and <see cref="TrainOptions.Zero"/>; the plan report (<c>ModelProgram.PlanJson</c>) has the figures.
/// </summary>
public readonly record struct ParallelLayout(int Data, int Tensor, int Pipeline, int MicroBatches, ZeroStage Zero, int Batch, int Sequence)
{
    /// <summary>One device: the layout of a model without [Parallel].</summary>
    public static ParallelLayout Single => new(1, 1, 1, 1, ZeroStage.None, 0, 0);
}

using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Runtime;

namespace Kiln;

/// <summary>
/// Lays out parameters for pipeline parallelism: a model declared with [Parallel(Pipeline = p)] compiles to stage
/// programs, and stage s of p is the model built with layers / p of its repeated blocks; it holds layers
/// [s·layers/p, (s + 1)·layers/p) of every staged (stacked) parameter and the whole of the others (embeddings, the
/// final norm and head, which only the first or last stage's gradients reach). These helpers move values between a
/// stage's slab and the whole model's; with tensor parallelism inside the stages too.
/// </summary>
public static class PipelineParallel
{
    /// <summary>The stage's table with each staged parameter marked as split along its layer axis (and the tensor split dropped).</summary>
    private static List<ParameterInfo> ByLayers(IReadOnlyList<ParameterInfo> stage) =>
        stage.Select(p => p with { Split = p.Staged ? new ParameterSplit(-p.Shape.Length, 1) : null }).ToList();

    /// <summary>The whole model's parameter table as stage <paramref name="stage"/> implies it with <paramref name="stages"/> stages (and its tensor degree undone).</summary>
    public static IReadOnlyList<ParameterInfo> WholeParameters(ModelProgram stage, int stages)
    {
        ArgumentNullException.ThrowIfNull(stage);
        return TensorParallel.Packed(TensorParallel.WholeParameters(stage, stage.TensorGroup?.Size ?? 1).Select(p => p with { Split = null }),
            (p, shape) => { if (p.Staged) shape[0] *= stages; });
    }

    /// <summary>
    /// Sets the parameters of stage <paramref name="rank"/> of <paramref name="stages"/> (and tensor rank
    /// <paramref name="tensorRank"/> of <paramref name="tensors"/>) to its piece of the whole model initialised with
    /// <paramref name="seed"/> (<paramref name="whole"/>: the model with all its layers, tensor degree 1).
    /// </summary>
    public static void Initialize(ModelProgram stage, ModelProgram whole, ulong seed, int rank, int stages, int tensorRank = 0, int tensors = 1)
    {
        ArgumentNullException.ThrowIfNull(stage);
        ArgumentNullException.ThrowIfNull(whole);
        whole.InitParameters(seed);
        whole.SyncParametersToHost();
        Scatter(whole.Parameters, whole.Params, stage, stage.Params, rank, stages, tensorRank, tensors);
        stage.ParametersChanged();
    }

    /// <summary>Copies stage <paramref name="rank"/>'s piece (tensor rank <paramref name="tensorRank"/> of <paramref name="tensors"/>) of the whole model's values into <paramref name="values"/>.</summary>
    public static void Scatter(IReadOnlyList<ParameterInfo> whole, ReadOnlySpan<float> wholeValues, ModelProgram stage, Span<float> values, int rank, int stages, int tensorRank = 0, int tensors = 1)
    {
        ArgumentNullException.ThrowIfNull(stage);
        // Whole → the stage at tensor degree 1 (by layers) → this tensor rank.
        var stageWhole = TensorParallel.WholeParameters(stage, tensors);
        var mid = new float[stageWhole.Sum(p => p.Length)];
        TensorParallel.Scatter(whole, wholeValues, ByLayers(stageWhole), mid, rank, stages, stage.ModelName);
        TensorParallel.Scatter(stageWhole, mid, stage.Parameters, values, tensorRank, tensors, stage.ModelName);
    }

    /// <summary>
    /// Rebuilds the whole model's values from every stage's slab (<paramref name="stageValues"/>[s], in the layout of
    /// <paramref name="stage"/> at tensor degree 1 — gather a tensor-parallel stage's ranks with TensorParallel first):
    /// staged parameters layer by layer, the others from the first stage.
    /// </summary>
    public static void Gather(ModelProgram stage, IReadOnlyList<float[]> stageValues, IReadOnlyList<ParameterInfo> whole, Span<float> wholeValues, int tensors = 1)
    {
        ArgumentNullException.ThrowIfNull(stage);
        ArgumentNullException.ThrowIfNull(stageValues);
        TensorParallel.Gather(ByLayers(TensorParallel.WholeParameters(stage, tensors)), stageValues, whole, wholeValues, stage.ModelName);
    }
}

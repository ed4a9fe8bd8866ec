using System;

namespace Kiln.Runtime;

// The parallel side of a program: its tensor and pipeline groups and the methods the generated code calls for the
// collective ops (Ops.TensorReduce, the pipeline stage boundaries). Data parallelism lives outside the program
// (DataParallel); these are the collectives inside a training step.
public abstract partial class ModelProgram
{
    private Collectives.ICommunicator? _tensorGroup;

    /// <summary>
    /// The tensor-parallel group this program is one rank of (null: none, the model's <c>Ops.TensorReduce</c> are
    /// identities). Its size must be the model's tensor degree (the hyperparameter its split layers divide by); see
    /// <see cref="TensorParallel"/> for laying out the parameters. CPU programs only so far.
    /// </summary>
    public Collectives.ICommunicator? TensorGroup
    {
        get => _tensorGroup;
        set
        {
            if (value is { Size: > 1 } && UpdatesOnDevice)
                throw new NotSupportedException($"{ModelName} runs on a GPU; tensor parallelism is built for CPU programs so far (NCCL is not bound yet).");
            _tensorGroup = value;
        }
    }

    /// <summary>
    /// Ops.TensorReduce: <paramref name="count"/> values of <paramref name="source"/> summed over the tensor group into
    /// <paramref name="target"/> (in place when the memory plan gave both the same buffer, as it does where it can).
    /// </summary>
    protected void TensorReduceInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count, string site) =>
        Named("tensor-parallel all-reduce", site, () => TensorReduceInto(source, sourceOffset, target, targetOffset, count));

    private void TensorReduceInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count)
    {
        int ranks = _tensorGroup?.Size ?? 1;
        if (ranks != TensorDegree)
            throw new InvalidOperationException($"{ModelName} is built for tensor degree {TensorDegree} (its 'tensor' hyperparameter) but its TensorGroup has {ranks} rank(s): " +
                (TensorDegree > 1 ? $"set program.TensorGroup to a communicator of {TensorDegree} ranks and lay out its parameters with TensorParallel." : "construct it with tensor equal to the group's size."));
        Copy(source, sourceOffset, target, targetOffset, count);
        if (ranks > 1) _tensorGroup!.AllReduceSum(target.AsSpan(checked((int)targetOffset), checked((int)count)));
    }

    /// <summary>The tensor degree the program was built for: its model's int hyperparameter named <c>tensor</c> (1 without one).</summary>
    public virtual int TensorDegree => 1;

    private Collectives.ICommunicator? _pipelineGroup;

    /// <summary>Whether the program is a pipeline stage (its model declares [Parallel(Pipeline &gt; 1)] and has one loop of repeated blocks).</summary>
    public virtual bool SupportsPipeline => false;

    /// <summary>
    /// The pipeline group this program is one stage of (rank = stage; null: none). Build each stage's program with its
    /// share of the layers; see <see cref="PipelineParallel"/> for laying out the parameters. CPU programs only.
    /// </summary>
    public Collectives.ICommunicator? PipelineGroup
    {
        get => _pipelineGroup;
        set
        {
            if (value is { Size: > 1 } && !SupportsPipeline)
                throw new NotSupportedException($"{ModelName} is not a pipeline stage program: declare [Parallel(Pipeline = n)] on the model (n > 1) and rebuild.");
            if (value is { Size: > 1 } && UpdatesOnDevice)
                throw new NotSupportedException($"{ModelName} runs on a GPU; pipeline parallelism is built for CPU programs so far.");
            _pipelineGroup = value;
        }
    }

    /// <summary>1, or 0 on pipeline stages before the last: only the last stage's loss seeds the backward pass.</summary>
    protected float PipelineLossFactor => _pipelineGroup is { Size: > 1 } g && g.Rank != g.Size - 1 ? 0f : 1f;

    private bool FirstStage => _pipelineGroup is not { Size: > 1 } g || g.Rank == 0;
    private bool LastStage => _pipelineGroup is not { Size: > 1 } g || g.Rank == g.Size - 1;

    /// <summary>Runs a collective of the step; a timeout says which one it was and where the model has it (its IR node and C# line).</summary>
    private void Named(string what, string site, Action run)
    {
        try { run(); }
        catch (Collectives.CollectiveTimeoutException e) { throw e.For($"{ModelName}'s {what} at {site}"); }
    }

    private static void Copy(float[] source, long sourceOffset, float[] target, long targetOffset, long count)
    {
        if (!ReferenceEquals(source, target) || sourceOffset != targetOffset) Array.Copy(source, sourceOffset, target, targetOffset, count);
    }

    /// <summary>The repeated blocks' input: stages after the first receive it from the previous stage.</summary>
    protected void StageInputInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count, string site) =>
        Named("receive of the blocks' input from the previous stage", site, () => StageInputInto(source, sourceOffset, target, targetOffset, count));

    private void StageInputInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count)
    {
        if (FirstStage) Copy(source, sourceOffset, target, targetOffset, count);
        else _pipelineGroup!.Receive(target.AsSpan(checked((int)targetOffset), checked((int)count)), _pipelineGroup.Rank - 1);
    }

    /// <summary>The gradient of the blocks' input: stages after the first send it back to the previous stage and pass zeros on.</summary>
    protected void StageInputGradInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count, string site) =>
        Named("send of the blocks' input gradient to the previous stage", site, () => StageInputGradInto(source, sourceOffset, target, targetOffset, count));

    private void StageInputGradInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count)
    {
        if (FirstStage) { Copy(source, sourceOffset, target, targetOffset, count); return; }
        _pipelineGroup!.Send(source.AsSpan(checked((int)sourceOffset), checked((int)count)), _pipelineGroup.Rank - 1);
        Array.Clear(target, checked((int)targetOffset), checked((int)count));
    }

    /// <summary>The repeated blocks' output: stages before the last send it to the next stage (and compute on with it; their loss does not count).</summary>
    protected void StageOutputInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count, string site) =>
        Named("send of the blocks' output to the next stage", site, () => StageOutputInto(source, sourceOffset, target, targetOffset, count));

    private void StageOutputInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count)
    {
        if (!LastStage) _pipelineGroup!.Send(source.AsSpan(checked((int)sourceOffset), checked((int)count)), _pipelineGroup.Rank + 1);
        Copy(source, sourceOffset, target, targetOffset, count);
    }

    /// <summary>The gradient of the blocks' output: stages before the last receive it from the next stage.</summary>
    protected void StageOutputGradInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count, string site) =>
        Named("receive of the blocks' output gradient from the next stage", site, () => StageOutputGradInto(source, sourceOffset, target, targetOffset, count));

    private void StageOutputGradInto(float[] source, long sourceOffset, float[] target, long targetOffset, long count)
    {
        if (LastStage) Copy(source, sourceOffset, target, targetOffset, count);
        else _pipelineGroup!.Receive(target.AsSpan(checked((int)targetOffset), checked((int)count)), _pipelineGroup.Rank + 1);
    }
}

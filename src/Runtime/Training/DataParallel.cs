using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;

namespace Kiln;

/// <summary>What one data-parallel step did: the loss averaged over every rank and micro-batch, the global gradient norm (before clipping) and the bytes this rank sent.</summary>
public readonly record struct DataParallelStep(double Loss, double GradientNorm, long BytesSent);

/// <summary>
/// Data-parallel training of one generated program per rank: each rank runs its micro-batches (gradient accumulation),
/// the gradients are averaged across ranks in buckets (all-reduce, or reduce-scatter under ZeRO-2), the gradient norm is
/// the global one, and the update is applied to the whole model or — under ZeRO — to this rank's shard, after which the
/// parameters are all-gathered. With equal micro-batch sizes the result is the single-device step on the concatenated
/// batch (the mean of equal-sized means is the global mean), up to the order of fp32 additions. Works with any
/// <see cref="ICommunicator"/>: in-process ranks (<see cref="InProcessGroup"/>) or MPI (<see cref="MpiCommunicator"/>).
/// The all-reduce runs after the backward (not yet overlapped with it); CPU programs.
/// </summary>
public sealed partial class DataParallel
{
    private readonly ModelProgram _program;
    private readonly Optimizer _optimizer;
    private readonly int _bucket;
    private readonly int _shard, _start, _length;
    private float[]? _padded, _shardGrads, _mine;

    /// <summary>Creates the data-parallel driver of <paramref name="program"/> on this rank.</summary>
    /// <param name="program">This rank's program (the same model and hyperparameters on every rank).</param>
    /// <param name="optimizer">This rank's optimizer (its own instance: under ZeRO it keeps only this rank's shard of the state).</param>
    /// <param name="communicator">The data-parallel group.</param>
    /// <param name="zero">What to shard.</param>
    /// <param name="bucketValues">Gradients are reduced in buckets of this many values (Megatron/DDP bucketing; 4 MiB of fp32 by default).</param>
    public DataParallel(ModelProgram program, Optimizer optimizer, ICommunicator communicator, ZeroStage zero = ZeroStage.None, int bucketValues = 1 << 20)
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(communicator);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bucketValues);
        if (program.UpdatesOnDevice) throw new NotSupportedException($"{program.ModelName} runs on a GPU; data parallelism is built for CPU programs so far (NCCL is not bound yet).");
        _program = program; _optimizer = optimizer; Communicator = communicator; Zero = zero; _bucket = bucketValues;
        _shard = (program.Params.Length + communicator.Size - 1) / communicator.Size;
        (_start, _length) = ShardOf(communicator.Rank);
    }

    /// <summary>The parameters rank <paramref name="rank"/> owns under ZeRO: equal blocks of the slab, the last one shorter.</summary>
    private (int Start, int Length) ShardOf(int rank)
    {
        int n = _program.Params.Length, start = Math.Min(n, rank * _shard);
        return (start, Math.Max(0, Math.Min(_shard, n - start)));
    }

    /// <summary>The data-parallel group.</summary>
    public ICommunicator Communicator { get; }

    /// <summary>Bytes of the staging buffers this driver holds for its collectives (ZeRO's padded all-gather, its shard, ZeRO-2's gradient shard); the plan report counts them.</summary>
    public long BufferBytes => ((long)(_padded?.Length ?? 0) + (_shardGrads?.Length ?? 0) + (_mine?.Length ?? 0)) * sizeof(float);

    /// <summary>What this driver shards.</summary>
    public ZeroStage Zero { get; }

    /// <summary>The parameters this rank updates under ZeRO: [start, start + length) of the parameter slab.</summary>
    public (int Start, int Length) Shard => (_start, _length);

    /// <summary>
    /// Averages the gradients this rank accumulated over <paramref name="microBatches"/> micro-batches (loss scale
    /// <paramref name="lossScale"/> removed) across ranks — all-reduce, or reduce-scatter under ZeRO-2, where only this
    /// rank's shard of the gradient slab is kept — and returns the global mean loss and gradient norm. Every rank must call it.
    /// </summary>
    public (double Loss, double GradientNorm) Reduce(int microBatches, double lossSum, float lossScale)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(microBatches);
        try { return ReduceCore(microBatches, lossSum, lossScale); }
        catch (CollectiveTimeoutException e) { throw e.For($"DataParallel's {_doing} (data rank {Communicator.Rank} of {Communicator.Size})"); }
    }

    /// <summary>Whether the program's parameters are split over tensor ranks or pipeline stages (the norm then sums over those groups).</summary>
    private bool SplitOverRanks => _program.TensorGroup is { Size: > 1 } || _program.PipelineGroup is { Size: > 1 };

    /// <summary>What the driver is reducing, for a timeout's message.</summary>
    private string _doing = "";

    private (double Loss, double GradientNorm) ReduceCore(int microBatches, double lossSum, float lossScale)
    {
        _program.SyncGradientsToHost();
        if (_program.PipelineGroup is { Size: > 1 } pipeline)
        {
            // Only the last stage's loss is the model's; parameters outside the staged blocks got each stage's part of
            // their gradient (the first stage's embeddings, the last stage's head, both for tied ones): sum them.
            _doing = "sum of the last stage's loss over the pipeline stages";
            lossSum = pipeline.AllReduceSum(pipeline.Rank == pipeline.Size - 1 ? lossSum : 0);
            _doing = "sum over the stages of the gradients outside the staged blocks";
            SumUnstagedOverStages(pipeline);
        }
        int contributions = Communicator.Size * microBatches;
        _doing = "all-reduce of the step's loss";
        double loss = Communicator.AllReduceSum(lossSum) / contributions;
        // Every rank must run the same accumulation count, or the average would be wrong.
        _doing = "all-reduce of the micro-batch count";
        double counts = Communicator.AllReduceSum(microBatches);
        if (counts != contributions)
            throw new InvalidOperationException($"Ranks ran different numbers of micro-batches ({counts} in all, {microBatches} here, {Communicator.Size} ranks); give every rank the same count.");
        var grads = _program.Grads;
        float scale = 1f / (contributions * lossScale);
        double norm;
        if (Zero == ZeroStage.Gradients)
        {
            _padded ??= new float[_shard * Communicator.Size];
            _shardGrads ??= new float[_shard];
            Array.Copy(grads, _padded, grads.Length);
            _doing = "reduce-scatter of the gradients (ZeRO-2)";
            Communicator.ReduceScatterSum(_padded, _shardGrads);
            double sq = 0;
            for (int i = 0; i < _length; i++) { _shardGrads[i] *= scale; sq += (double)_shardGrads[i] * _shardGrads[i]; }
            // Only this rank's shard of the gradient slab is meaningful from here on.
            Array.Clear(grads);
            Array.Copy(_shardGrads, 0, grads, _start, _length);
            // Under tensor parallelism split parameters' squares are summed over the tensor ranks, replicated ones counted once.
            _doing = "global gradient norm";
            if (SplitOverRanks) sq = TensorParallel.SquaredNorm(_program, grads, _start, _length);
            norm = Math.Sqrt(Communicator.AllReduceSum(sq));
        }
        else
        {
            int buckets = (grads.Length + _bucket - 1) / _bucket;
            for (int at = 0, b = 1; at < grads.Length; at += _bucket, b++)
            {
                _doing = $"all-reduce of gradient bucket {b} of {buckets}";
                Communicator.AllReduceSum(grads.AsSpan(at, Math.Min(_bucket, grads.Length - at)));
            }
            _doing = "global gradient norm";
            GradientClipping.Scale(grads, scale);
            norm = SplitOverRanks
                ? Math.Sqrt(TensorParallel.SquaredNorm(_program, grads, 0, grads.Length)) : GradientClipping.GlobalNorm(grads);
        }
        return (loss, norm);
    }

    private float[]? _unstaged;

    /// <summary>Sums the gradients of the parameters outside the staged blocks over the pipeline stages (one all-reduce of them packed).</summary>
    private void SumUnstagedOverStages(ICommunicator pipeline)
    {
        var grads = _program.Grads;
        var unstaged = _program.Parameters.Where(p => !p.Staged).ToList();
        int n = checked((int)unstaged.Sum(p => p.Length));
        if (n == 0) return;
        _unstaged ??= new float[n];
        int at = 0;
        foreach (var p in unstaged) { Array.Copy(grads, p.Offset, _unstaged, at, p.Length); at += (int)p.Length; }
        pipeline.AllReduceSum(_unstaged);
        at = 0;
        foreach (var p in unstaged) { Array.Copy(_unstaged, at, grads, p.Offset, p.Length); at += (int)p.Length; }
    }

    /// <summary>Applies the optimizer to the reduced gradients: the whole model, or this rank's shard and then an all-gather of the parameters (ZeRO).</summary>
    public void Update(float learningRate)
    {
        if (Zero == ZeroStage.None) { _optimizer.Step(_program, learningRate); return; }
        try { UpdateShard(learningRate); }
        catch (CollectiveTimeoutException e) { throw e.For($"DataParallel's all-gather of the updated parameter shards (ZeRO, data rank {Communicator.Rank} of {Communicator.Size})"); }
    }

    private void UpdateShard(float learningRate)
    {
        _optimizer.StepShard(_program, learningRate, _start, _length);
        _padded ??= new float[_shard * Communicator.Size];
        _mine ??= new float[_shard];
        Array.Copy(_program.Params, _start, _mine, 0, _length);
        Communicator.AllGather(_mine, _padded);
        Array.Copy(_padded, _program.Params, _program.Params.Length);
        _program.ParametersChanged();
    }

    /// <summary>Copies rank 0's parameters to every rank (call once after initialising or loading them).</summary>
    public void SynchronizeParameters()
    {
        _program.SyncParametersToHost();
        Communicator.Broadcast(_program.Params, root: 0);
        _program.ParametersChanged();
    }

    /// <summary>
    /// One optimizer step: zero the gradients, run <paramref name="microBatches"/> (this rank's share of the global
    /// batch, accumulated), average the gradients over ranks and micro-batches, clip to <paramref name="maxGradNorm"/>
    /// (global norm) when given, and update.
    /// </summary>
    public DataParallelStep Step(IReadOnlyList<Batch> microBatches, StepContext context, float learningRate, double? maxGradNorm = null)
    {
        ArgumentNullException.ThrowIfNull(microBatches);
        if (microBatches.Count == 0) throw new ArgumentException("A step needs at least one micro-batch.", nameof(microBatches));
        long before = Communicator.BytesSent;
        _program.ZeroGrads();
        double lossSum = 0;
        for (int m = 0; m < microBatches.Count; m++)
            lossSum += _program.TrainStep(microBatches[m], context with { MicroStep = m });
        var (loss, norm) = Reduce(microBatches.Count, lossSum, 1f);
        if (maxGradNorm is { } max && double.IsFinite(norm) && norm > max)
            _program.ScaleGradients((float)(max / (norm + 1e-6)));
        Update(learningRate);
        return new DataParallelStep(loss, norm, Communicator.BytesSent - before);
    }
}

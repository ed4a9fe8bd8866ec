using System;

namespace Kiln;

/// <summary>
/// Marks a <c>partial</c> class as a trainable model. The Kiln generator reads its fields, its
/// <c>Forward</c> method and its <see cref="LossAttribute"/> method at build time and generates the
/// training program (<c>CreateTrainer</c>, <c>CreateProgram</c>) into the other half of the class.
/// Hyperparameters are the primary-constructor parameters.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class ModelAttribute : Attribute { }

/// <summary>
/// Marks a class as a reusable building block (a transformer block, a residual MLP layer) that models
/// and other modules hold as fields and call through its <c>Forward</c> method. Its hyperparameters are
/// its primary-constructor parameters.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class ModuleAttribute : Attribute { }

/// <summary>Marks the model method that returns the scalar training loss.</summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class LossAttribute : Attribute { }

/// <summary>
/// Names the dimensions of a tensor parameter of <c>Forward</c> or of the loss method, e.g.
/// <c>[Shape("B", "T")]</c>. A name that is a hyperparameter of the model is that hyperparameter;
/// any other name is a size bound from the data at run time (batch, sequence). An integer literal
/// written as a string (<c>"2"</c>) is a fixed size.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter, Inherited = false)]
public sealed class ShapeAttribute : Attribute
{
    /// <summary>Declares the dimensions, outermost first.</summary>
    public ShapeAttribute(params string[] dims) => Dims = dims;

    /// <summary>The dimension names, outermost first.</summary>
    public string[] Dims { get; }
}

/// <summary>
/// Activation checkpointing for repeated blocks: on a <c>[Module]</c> class, or on a field holding
/// <c>Module.Repeat(...)</c>, the backward pass recomputes each block's forward from the block's input instead of
/// keeping its activations. Memory for activations drops from every intermediate of every block to one input per
/// block, for about one more forward pass of compute.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Field, Inherited = false)]
public sealed class RecomputeAttribute : Attribute { }

/// <summary>How much of the training state data-parallel ranks shard (DeepSpeed's ZeRO stages).</summary>
public enum ZeroStage
{
    /// <summary>Every rank keeps all gradients and optimizer state; gradients are all-reduced.</summary>
    None = 0,
    /// <summary>ZeRO-1: gradients are all-reduced; each rank keeps and updates the optimizer state of its shard of the parameters, then the parameters are all-gathered.</summary>
    OptimizerState = 1,
    /// <summary>ZeRO-2: gradients are reduce-scattered (each rank receives the sum of its shard only); state and update as in ZeRO-1.</summary>
    Gradients = 2,
}

/// <summary>
/// How the model trains across devices, declared next to it: a mesh of data, tensor and pipeline degrees, the
/// micro-batches of a step, the ZeRO stage, and the sizes the plan is made for. At build time Kiln checks the
/// divisibility rules (heads by <see cref="Tensor"/>, layers by <see cref="Pipeline"/>, micro-batches ≥ stages,
/// the vocabulary padded to a multiple of <see cref="Tensor"/> × 64, the batch by data × micro-batches) against the
/// hyperparameters' defaults, and writes a plan report: per-rank parameter, gradient, optimizer-state and
/// activation bytes, communication per step, FLOPs and the pipeline bubble. With the MSBuild property
/// <c>KilnDeviceMemory</c> set, a plan that does not fit is a build error listing what would. Launch options (the
/// communicator and <c>TrainOptions.Zero</c>) override the declaration at run time.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class ParallelAttribute : Attribute
{
    /// <summary>Data-parallel degree (ranks that each train on their slice of the batch). Default 1.</summary>
    public int Data { get; set; } = 1;

    /// <summary>Tensor-parallel degree (ranks that split each layer's matrices, Megatron-style). Default 1.</summary>
    public int Tensor { get; set; } = 1;

    /// <summary>Pipeline stages (ranks that each hold a slice of the repeated blocks). Default 1.</summary>
    public int Pipeline { get; set; } = 1;

    /// <summary>Micro-batches per optimizer step on each data-parallel rank (gradient accumulation; the pipeline's micro-batches). Default 1.</summary>
    public int MicroBatches { get; set; } = 1;

    /// <summary>What the data-parallel ranks shard. Default <see cref="ZeroStage.None"/>.</summary>
    public ZeroStage Zero { get; set; }

    /// <summary>The global batch (rows per optimizer step over every rank) the plan is made for; 0: the report gives figures per row.</summary>
    public int Batch { get; set; }

    /// <summary>The sequence length the plan is made for (binds every data-bound size other than the batch); 0: unknown.</summary>
    public int Sequence { get; set; }
}

/// <summary>
/// Megatron's column-parallel layout for a <c>Linear</c> field under tensor parallelism: each tensor rank holds a
/// slice of the output features (weight rows and bias), so the layer is declared with its per-rank width, e.g.
/// <c>new Linear(dim, hidden / tensor)</c>. <see cref="Groups"/> &gt; 1 splits each of that many equal groups of
/// outputs evenly (a fused Q/K/V projection has 3). Follow it with a <see cref="RowParallelAttribute"/> layer and
/// <c>Ops.TensorReduce</c>, and feed it through <c>Ops.TensorReplicate</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Field, Inherited = false)]
public sealed class ColumnParallelAttribute : Attribute
{
    /// <summary>Equal groups of output features, each split over the ranks (default 1).</summary>
    public int Groups { get; set; } = 1;
}

/// <summary>
/// Megatron's row-parallel layout for a <c>Linear</c> field under tensor parallelism: each tensor rank holds a slice
/// of the input features (weight columns); the bias is whole. Compute <c>Ops.TensorReduce(Ops.MatMul(x, l.Weight.T)) + l.Bias</c>
/// so the bias is added once, after the partial products are summed.
/// </summary>
[AttributeUsage(AttributeTargets.Field, Inherited = false)]
public sealed class RowParallelAttribute : Attribute { }

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

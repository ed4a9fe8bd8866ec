using System;

namespace Kiln;

/// <summary>
/// Declares a trainable tensor of a <c>[Model]</c> or <c>[Module]</c> as a field initializer, e.g.
/// <c>Tensor gain = Parameter.Ones(dim);</c>. The generator reads the shape (sizes built from hyperparameters and
/// constants) and the initialisation; the tensor lives in the model's parameter slab like a layer's weights and
/// is named by its field path (<c>blocks.2.norm.gain</c>). Decoupled weight decay applies to parameters of rank
/// two or more by default (matrices, as in nanoGPT and PyTorch's usual grouping); override it with
/// <see cref="WeightDecayAttribute"/> on the field.
/// </summary>
public static class Parameter
{
    /// <summary>A parameter initialised to zeros.</summary>
    public static Tensor Zeros(params int[] shape) => Declare(shape, 0, nameof(Zeros));

    /// <summary>A parameter initialised to ones (a gain).</summary>
    public static Tensor Ones(params int[] shape) => Declare(shape, 0, nameof(Ones));

    /// <summary>A parameter drawn from N(0, <paramref name="std"/>²).</summary>
    public static Tensor Normal(float std, params int[] shape) => Declare(shape, std, nameof(Normal));

    /// <summary>A parameter drawn uniformly from [−<paramref name="bound"/>, <paramref name="bound"/>).</summary>
    public static Tensor Uniform(float bound, params int[] shape) => Declare(shape, bound, nameof(Uniform));

    // Field initializers run when the model object is constructed: the checks fire there too, and the value is the
    // symbolic placeholder every model tensor is.
    private static Tensor Declare(int[] shape, float scale, string kind)
    {
        ArgumentNullException.ThrowIfNull(shape);
        foreach (var d in shape)
            if (d <= 0) throw new ArgumentOutOfRangeException(nameof(shape), d, $"Parameter.{kind}: every size must be positive (got [{string.Join(", ", shape)}]); check the hyperparameters the model was constructed with.");
        if (!(scale >= 0) || float.IsInfinity(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, $"Parameter.{kind}: the scale must be finite and non-negative.");
        return Tensor.Symbolic;
    }
}

/// <summary>
/// Says whether decoupled weight decay applies to the parameter declared by this field (by default it does for
/// parameters of rank ≥ 2 and does not for vectors such as gains and biases).
/// </summary>
[AttributeUsage(AttributeTargets.Field, Inherited = false)]
public sealed class WeightDecayAttribute : Attribute
{
    /// <summary>Declares whether weight decay applies.</summary>
    public WeightDecayAttribute(bool apply = true) => Apply = apply;

    /// <summary>Whether weight decay applies.</summary>
    public bool Apply { get; }
}

using System;

namespace Kiln;

/// <summary>
/// A fully connected layer <c>y = x·Wᵀ + b</c> with <c>W: [outFeatures, inFeatures]</c> (PyTorch's layout).
/// Initialised like PyTorch: W and b uniform in ±1/√inFeatures.
/// </summary>
public sealed class Linear
{
    /// <summary>Declares the layer; arguments must be traceable to hyperparameters and constants.</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true)
    {
        LayerChecks.Positive(inFeatures, nameof(inFeatures), nameof(Linear));
        LayerChecks.Positive(outFeatures, nameof(outFeatures), nameof(Linear));
        InFeatures = inFeatures; OutFeatures = outFeatures; HasBias = bias;
    }

    /// <summary>Input size (the last dimension of x).</summary>
    public int InFeatures { get; }
    /// <summary>Output size.</summary>
    public int OutFeatures { get; }
    /// <summary>Whether the layer adds a bias.</summary>
    public bool HasBias { get; }
    /// <summary>The weight <c>[outFeatures, inFeatures]</c>.</summary>
    public Tensor Weight => throw KilnSymbolicException.Create();
    /// <summary>The bias <c>[outFeatures]</c>.</summary>
    public Tensor Bias => throw KilnSymbolicException.Create();
    /// <summary>Applies the layer to <c>x: [..., inFeatures]</c>.</summary>
    public Tensor Forward(Tensor x) => throw KilnSymbolicException.Create();
}

/// <summary>A lookup table <c>[numEmbeddings, dim]</c> indexed by integer tensors. Initialised N(0, 1) like PyTorch.</summary>
public sealed class Embedding
{
    /// <summary>Declares the table.</summary>
    public Embedding(int numEmbeddings, int dim)
    {
        LayerChecks.Positive(numEmbeddings, nameof(numEmbeddings), nameof(Embedding));
        LayerChecks.Positive(dim, nameof(dim), nameof(Embedding));
        NumEmbeddings = numEmbeddings; Dim = dim;
    }

    /// <summary>Number of rows.</summary>
    public int NumEmbeddings { get; }
    /// <summary>Row size.</summary>
    public int Dim { get; }
    /// <summary>The table <c>[numEmbeddings, dim]</c>.</summary>
    public Tensor Weight => throw KilnSymbolicException.Create();
    /// <summary>Rows picked by <paramref name="indices"/>: <c>[...] → [..., dim]</c>.</summary>
    public Tensor Forward(Tensor<int> indices) => throw KilnSymbolicException.Create();
}

/// <summary>Layer normalisation over the last dimension with a learned scale (ones) and shift (zeros).</summary>
public sealed class LayerNorm
{
    /// <summary>Declares the layer.</summary>
    public LayerNorm(int dim, float eps = 1e-5f)
    {
        LayerChecks.Positive(dim, nameof(dim), nameof(LayerNorm));
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "LayerNorm eps must be positive.");
        Dim = dim; Eps = eps;
    }

    /// <summary>The normalised size (the last dimension of x).</summary>
    public int Dim { get; }
    /// <summary>The variance floor.</summary>
    public float Eps { get; }
    /// <summary>The scale <c>[dim]</c>.</summary>
    public Tensor Weight => throw KilnSymbolicException.Create();
    /// <summary>The shift <c>[dim]</c>.</summary>
    public Tensor Bias => throw KilnSymbolicException.Create();
    /// <summary>Normalises <c>x: [..., dim]</c>.</summary>
    public Tensor Forward(Tensor x) => throw KilnSymbolicException.Create();
}

/// <summary>
/// Inverted dropout: while training, zeroes each element with probability p and scales the rest by
/// 1/(1−p); identity in evaluation and prediction. The mask comes from Kiln's counter-based RNG
/// (seed, step, layer), so runs are reproducible.
/// </summary>
public sealed class Dropout
{
    /// <summary>Declares the layer with drop probability <paramref name="p"/> in [0, 1).</summary>
    public Dropout(float p)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout probability must be in [0, 1).");
        P = p;
    }

    /// <summary>The drop probability.</summary>
    public float P { get; }
    /// <summary>Applies dropout while training.</summary>
    public Tensor Forward(Tensor x) => throw KilnSymbolicException.Create();
}

/// <summary>Helpers for composing modules.</summary>
public static class Module
{
    /// <summary>
    /// <paramref name="count"/> modules built by <paramref name="factory"/> (given the index), each with its
    /// own parameters. Use as a field initializer: <c>Block[] h = Module.Repeat(layers, _ =&gt; new Block(dim));</c>
    /// </summary>
    public static T[] Repeat<T>(int count, Func<int, T> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "Module.Repeat needs a non-negative count.");
        var result = new T[count];
        for (int i = 0; i < count; i++) result[i] = factory(i);
        return result;
    }

    /// <summary>
    /// <paramref name="value"/> rounded up to a multiple of <paramref name="multiple"/>, for sizes such as a vocabulary
    /// padded to 64 (<c>/</c> on sizes demands exact division; this is the rounding one).
    /// </summary>
    public static int RoundUp(int value, int multiple)
    {
        if (multiple <= 0) throw new ArgumentOutOfRangeException(nameof(multiple), multiple, "Module.RoundUp needs a positive multiple.");
        if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), value, "Module.RoundUp rounds sizes, which are non-negative.");
        return checked((value + multiple - 1) / multiple * multiple);
    }
}

internal static class LayerChecks
{
    public static void Positive(int value, string name, string layer)
    {
        if (value <= 0)
            throw new ArgumentOutOfRangeException(name, value, $"{layer}: {name} must be positive (got {value}); check the hyperparameters the model was constructed with.");
    }
}

using System;

namespace Kiln;

/// <summary>
/// A float tensor inside a model's <c>Forward</c> or loss method. Tensors are symbolic: the Kiln
/// generator reads the method at build time and compiles it; the method is never executed.
/// Calling it directly throws <see cref="KilnSymbolicException"/>.
/// </summary>
public sealed class Tensor
{
    private Tensor() { }

    /// <summary>The placeholder a declaration returns when the model object is constructed (its value is never read).</summary>
    internal static readonly Tensor Symbolic = new();

    /// <summary>The size of dimension <paramref name="axis"/> (negative counts from the end).</summary>
    public int Dim(int axis) => throw KilnSymbolicException.Create();

    /// <summary>The number of dimensions.</summary>
    public int Rank => throw KilnSymbolicException.Create();

    /// <summary>The tensor with its last two dimensions swapped.</summary>
    public Tensor T => throw KilnSymbolicException.Create();

    /// <summary>Elementwise sum with broadcasting.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Adds a scalar to every element.</summary>
    public static Tensor operator +(Tensor a, float b) => throw KilnSymbolicException.Create();
    /// <summary>Adds a scalar to every element.</summary>
    public static Tensor operator +(float a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise difference with broadcasting.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Subtracts a scalar from every element.</summary>
    public static Tensor operator -(Tensor a, float b) => throw KilnSymbolicException.Create();
    /// <summary>Subtracts every element from a scalar.</summary>
    public static Tensor operator -(float a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise product with broadcasting.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Multiplies every element by a scalar.</summary>
    public static Tensor operator *(Tensor a, float b) => throw KilnSymbolicException.Create();
    /// <summary>Multiplies every element by a scalar.</summary>
    public static Tensor operator *(float a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise quotient with broadcasting.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Divides every element by a scalar.</summary>
    public static Tensor operator /(Tensor a, float b) => throw KilnSymbolicException.Create();
    /// <summary>Divides a scalar by every element.</summary>
    public static Tensor operator /(float a, Tensor b) => throw KilnSymbolicException.Create();
    /// <summary>Elementwise negation.</summary>
    public static Tensor operator -(Tensor a) => throw KilnSymbolicException.Create();
}

/// <summary>
/// An integer tensor (token ids, class labels, positions) inside a model method. Symbolic like
/// <see cref="Tensor"/>: it is read at build time, never executed.
/// </summary>
/// <typeparam name="T">The element type; Kiln supports <see cref="int"/>.</typeparam>
public sealed class Tensor<T> where T : struct
{
    private Tensor() { }

    /// <summary>The size of dimension <paramref name="axis"/> (negative counts from the end).</summary>
    public int Dim(int axis) => throw KilnSymbolicException.Create();

    /// <summary>The number of dimensions.</summary>
    public int Rank => throw KilnSymbolicException.Create();
}

/// <summary>Thrown when symbolic model code is executed directly instead of through the generated program.</summary>
public sealed class KilnSymbolicException : InvalidOperationException
{
    private KilnSymbolicException(string message) : base(message) { }

    internal static KilnSymbolicException Create() => new(
        "Kiln model methods are compiled by the Kiln generator at build time and are not executed directly. " +
        "Create the program with model.CreateTrainer(...) or model.CreateProgram() and run it through that. " +
        "If those methods are missing, the generator did not run: check that the project references Kiln.Generators as an analyzer " +
        "and that the model class is marked [Model] and partial.");
}

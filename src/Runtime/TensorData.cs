using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Runtime;

/// <summary>The element types the runtime moves between the host and a program.</summary>
public enum ElementType
{
    /// <summary>32-bit IEEE float.</summary>
    Float32,
    /// <summary>32-bit signed integer (indices, labels).</summary>
    Int32,
}

/// <summary>A dense row-major host tensor: a shape and one backing array.</summary>
public sealed class TensorData
{
    private TensorData(int[] shape, float[]? floats, int[]? ints)
    {
        ArgumentNullException.ThrowIfNull(shape);
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Tensor dimensions must be non-negative; got [{string.Join(", ", shape)}].", nameof(shape));
            n *= d;
        }
        long have = floats?.LongLength ?? ints!.LongLength;
        if (have != n)
            throw new ArgumentException($"A tensor of shape [{string.Join(", ", shape)}] holds {n} elements but {have} were given.", nameof(shape));
        Shape = (int[])shape.Clone();
        Floats = floats;
        Ints = ints;
    }

    /// <summary>A float tensor over <paramref name="data"/> (not copied).</summary>
    public static TensorData Float(float[] data, params int[] shape) => new(shape, data ?? throw new ArgumentNullException(nameof(data)), null);

    /// <summary>An integer tensor over <paramref name="data"/> (not copied).</summary>
    public static TensorData Int(int[] data, params int[] shape) => new(shape, null, data ?? throw new ArgumentNullException(nameof(data)));

    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }

    /// <summary>The elements when <see cref="Type"/> is <see cref="ElementType.Float32"/>.</summary>
    public float[]? Floats { get; }

    /// <summary>The elements when <see cref="Type"/> is <see cref="ElementType.Int32"/>.</summary>
    public int[]? Ints { get; }

    /// <summary>The element type.</summary>
    public ElementType Type => Floats is not null ? ElementType.Float32 : ElementType.Int32;

    /// <summary>The number of elements.</summary>
    public long Length => Floats?.LongLength ?? Ints!.LongLength;

    /// <summary>The number of dimensions.</summary>
    public int Rank => Shape.Length;

    /// <inheritdoc/>
    public override string ToString() => $"{(Type == ElementType.Float32 ? "f32" : "i32")}[{string.Join(", ", Shape)}]";
}

/// <summary>The named inputs of one program call (for example <c>x</c> and <c>labels</c> of a loss method).</summary>
public sealed class Batch
{
    private readonly Dictionary<string, TensorData> _items = new(StringComparer.Ordinal);

    /// <summary>A batch of the given named tensors.</summary>
    public Batch(params (string Name, TensorData Data)[] items)
    {
        foreach (var (name, data) in items)
        {
            ArgumentNullException.ThrowIfNull(data);
            if (!_items.TryAdd(name, data)) throw new ArgumentException($"The batch names input '{name}' twice.", nameof(items));
        }
    }

    /// <summary>The tensor named <paramref name="name"/>.</summary>
    public TensorData this[string name] => _items.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"The batch has no input named '{name}'; it has: {string.Join(", ", _items.Keys)}.");

    /// <summary>Whether the batch has an input named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _items.ContainsKey(name);

    /// <summary>The input names.</summary>
    public IEnumerable<string> Names => _items.Keys;

    /// <summary>The size of the first dimension shared by the inputs (the number of examples), or 0 when empty.</summary>
    public int Count => _items.Count == 0 ? 0 : _items.Values.First().Shape is { Length: > 0 } s ? s[0] : 1;
}

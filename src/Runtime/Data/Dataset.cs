using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Runtime;

namespace Kiln;

/// <summary>
/// Indexed examples the trainer draws batches from. Example <c>i</c> is the same every time it is
/// asked for; the trainer chooses the order (an epoch shuffle keyed by the run seed).
/// </summary>
public abstract class Dataset
{
    /// <summary>The number of examples.</summary>
    public abstract int Count { get; }

    /// <summary>The examples at <paramref name="indices"/>, stacked along a new first dimension, named like the program's inputs.</summary>
    public abstract Batch GetBatch(ReadOnlySpan<int> indices);

    /// <summary>
    /// Tokens one example contributes to the throughput figures (the sequence length of token data),
    /// or 0 when tokens mean nothing for this data; the trainer then reports examples per second only.
    /// </summary>
    public virtual long TokensPerExample => 0;
}

/// <summary>
/// A dataset held in memory as named tensors whose first dimension is the example index
/// (for example <c>x: [N, 784]</c> and <c>labels: [N]</c>).
/// </summary>
public sealed class InMemoryDataset : Dataset
{
    private readonly (string Name, TensorData Data, int RowLength)[] _columns;

    /// <summary>Rows of the backing tensors this dataset exposes, in order; null for all of them.</summary>
    private readonly int[]? _rows;

    /// <summary>A dataset over the named tensors (not copied), which must agree on the number of examples.</summary>
    /// <exception cref="ArgumentException">No tensors, a repeated or empty name, a scalar tensor, or first dimensions that differ.</exception>
    public InMemoryDataset(params (string Name, TensorData Data)[] tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Length == 0)
            throw new ArgumentException("An InMemoryDataset needs at least one named tensor, e.g. new InMemoryDataset((\"x\", x), (\"y\", y)).", nameof(tensors));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        _columns = new (string, TensorData, int)[tensors.Length];
        for (int i = 0; i < tensors.Length; i++)
        {
            var (name, data) = tensors[i];
            if (string.IsNullOrWhiteSpace(name))
                throw new ArgumentException($"Tensor {i} of the dataset has no name; name it like the model input it feeds.", nameof(tensors));
            if (data is null)
                throw new ArgumentException($"Dataset tensor '{name}' is null.", nameof(tensors));
            if (!seen.Add(name))
                throw new ArgumentException($"The dataset names tensor '{name}' twice; each input needs one tensor.", nameof(tensors));
            if (data.Rank == 0)
                throw new ArgumentException($"Dataset tensor '{name}' is a scalar; its first dimension must be the example index, e.g. shape [N] or [N, ...].", nameof(tensors));
            long rowLength = 1;
            for (int d = 1; d < data.Rank; d++) rowLength *= data.Shape[d];
            _columns[i] = (name, data, checked((int)rowLength));
        }
        int n = _columns[0].Data.Shape[0];
        var mismatch = _columns.Where(c => c.Data.Shape[0] != n).ToArray();
        if (mismatch.Length > 0)
        {
            var shapes = string.Join(", ", _columns.Select(c => $"{c.Name}: {c.Data}"));
            throw new ArgumentException(
                $"Dataset tensors disagree on the number of examples (the first dimension): {shapes}. " +
                "Give every tensor the example index as its first dimension, with the same length.", nameof(tensors));
        }
        BackingCount = n;
    }

    private InMemoryDataset(InMemoryDataset source, int[] rows)
    {
        _columns = source._columns;
        BackingCount = source.BackingCount;
        _rows = rows;
    }

    private int BackingCount { get; }

    /// <inheritdoc/>
    public override int Count => _rows?.Length ?? BackingCount;

    /// <summary>The tensor names, in construction order.</summary>
    public IReadOnlyList<string> Names => _columns.Select(c => c.Name).ToArray();

    /// <inheritdoc/>
    public override Batch GetBatch(ReadOnlySpan<int> indices)
    {
        int count = Count;
        for (int j = 0; j < indices.Length; j++)
            if ((uint)indices[j] >= (uint)count)
                throw new ArgumentOutOfRangeException(nameof(indices), indices[j], $"Example index {indices[j]} (position {j} of the batch) is outside the dataset of {count} examples.");
        var items = new (string Name, TensorData Data)[_columns.Length];
        for (int c = 0; c < _columns.Length; c++)
        {
            var (name, data, rowLength) = _columns[c];
            var shape = (int[])data.Shape.Clone();
            shape[0] = indices.Length;
            items[c] = data.Type == ElementType.Float32
                ? (name, TensorData.Float(Gather(data.Floats!, rowLength, indices), shape))
                : (name, TensorData.Int(Gather(data.Ints!, rowLength, indices), shape));
        }
        return new Batch(items);
    }

    /// <summary>
    /// Splits the examples, shuffled by a permutation keyed by <paramref name="seed"/>, into a training
    /// part and a held-out part of <c>round(heldOutFraction·Count)</c> examples. The same seed gives the
    /// same split; neither part copies the tensors.
    /// </summary>
    /// <param name="heldOutFraction">Fraction of examples held out, in (0, 1); both parts must be non-empty.</param>
    /// <param name="seed">Key of the shuffle.</param>
    public (InMemoryDataset Train, InMemoryDataset HeldOut) Split(double heldOutFraction, ulong seed)
    {
        if (!(heldOutFraction > 0 && heldOutFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(heldOutFraction), heldOutFraction, "The held-out fraction must be between 0 and 1 (exclusive), e.g. 0.1 to hold out 10%.");
        int count = Count;
        int heldOut = (int)Math.Round(heldOutFraction * count, MidpointRounding.AwayFromZero);
        if (heldOut == 0 || heldOut == count)
            throw new ArgumentException(
                $"Holding out {heldOutFraction:P1} of {count} examples leaves {(heldOut == 0 ? "nothing held out" : "nothing to train on")}; use a fraction that leaves at least one example on each side, or more data.",
                nameof(heldOutFraction));
        var order = Shuffling.Permutation(count, seed, RandomStreams.Split);
        var rows = new int[count];
        for (int i = 0; i < count; i++) rows[i] = _rows is null ? order[i] : _rows[order[i]];
        // Sorting each part keeps reads of the backing tensors in memory order; the shuffle already chose membership.
        var train = rows.AsSpan(heldOut).ToArray();
        var held = rows.AsSpan(0, heldOut).ToArray();
        Array.Sort(train);
        Array.Sort(held);
        return (new InMemoryDataset(this, train), new InMemoryDataset(this, held));
    }

    private T[] Gather<T>(T[] source, int rowLength, ReadOnlySpan<int> indices)
    {
        var result = new T[(long)indices.Length * rowLength];
        for (int j = 0; j < indices.Length; j++)
        {
            int row = _rows is null ? indices[j] : _rows[indices[j]];
            Array.Copy(source, (long)row * rowLength, result, (long)j * rowLength, rowLength);
        }
        return result;
    }
}

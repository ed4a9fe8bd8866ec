using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;

namespace Kiln;

/// <summary>
/// Lays out parameters for tensor parallelism (Megatron-style) and back: a model whose Linear fields are
/// [ColumnParallel]/[RowParallel] and whose tensor degree is a hyperparameter compiles, at degree t, to the program of
/// one tensor rank. These helpers move values between that rank's slab and the whole model's (the same model at
/// degree 1): each split parameter (<see cref="ParameterSplit"/>) contributes the rank's piece of every group along its
/// axis; replicated ones are copied whole. Set <see cref="ModelProgram.TensorGroup"/> on each rank's program so its
/// <c>Ops.TensorReduce</c> sum over the group.
/// </summary>
public static class TensorParallel
{
    /// <summary>One contiguous run of values: its offset in the whole model's slab, in the rank's slab, and its length.</summary>
    public readonly record struct Block(long Whole, long Rank, long Count);

    /// <summary>
    /// The runs of values rank <paramref name="rank"/> of <paramref name="size"/> holds of parameter <paramref name="whole"/>
    /// (of the whole model) as its parameter <paramref name="mine"/>. Throws when the shapes do not fit the split.
    /// </summary>
    public static IEnumerable<Block> Blocks(ParameterInfo whole, ParameterInfo mine, int rank, int size)
    {
        ArgumentNullException.ThrowIfNull(whole);
        ArgumentNullException.ThrowIfNull(mine);
        if (mine.Split is not { } split)
        {
            if (!whole.Shape.SequenceEqual(mine.Shape))
                throw new InvalidOperationException($"Parameter '{mine.Name}' is replicated over the tensor ranks but has shape [{string.Join(", ", mine.Shape)}] on a rank and [{string.Join(", ", whole.Shape)}] in the whole model.");
            return new[] { new Block(whole.Offset, mine.Offset, whole.Length) };
        }
        int axis = whole.Shape.Length + split.Axis;
        bool fits = axis >= 0 && axis < whole.Shape.Length && whole.Shape.Length == mine.Shape.Length
            && Enumerable.Range(0, whole.Shape.Length).All(i => i == axis || whole.Shape[i] == mine.Shape[i])
            && (long)mine.Shape[axis] * size == whole.Shape[axis] && mine.Shape[axis] % split.Groups == 0;
        if (!fits)
            throw new InvalidOperationException($"Parameter '{mine.Name}' of shape [{string.Join(", ", mine.Shape)}] is not one of {size} tensor-parallel pieces (axis {split.Axis}, {split.Groups} group(s)) of [{string.Join(", ", whole.Shape)}]; build the rank's program with the tensor degree {size}.");
        return Runs(whole, mine, axis, split.Groups, rank);
    }

    private static IEnumerable<Block> Runs(ParameterInfo whole, ParameterInfo mine, int axis, int groups, int rank)
    {
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= whole.Shape[i];
        for (int i = axis + 1; i < whole.Shape.Length; i++) inner *= whole.Shape[i];
        long wa = whole.Shape[axis], ma = mine.Shape[axis], piece = ma / groups, group = wa / groups;
        for (long o = 0; o < outer; o++)
            for (int k = 0; k < groups; k++)
                yield return new Block(whole.Offset + (o * wa + k * group + rank * piece) * inner, mine.Offset + (o * ma + k * piece) * inner, piece * inner);
    }

    /// <summary>The parameters of <paramref name="whole"/> matched by name to those of <paramref name="mine"/> (the same model at another tensor degree).</summary>
    private static IEnumerable<(ParameterInfo Whole, ParameterInfo Mine)> Pairs(IReadOnlyList<ParameterInfo> whole, IReadOnlyList<ParameterInfo> mine, string model)
    {
        if (whole.Count != mine.Count)
            throw new ArgumentException($"The whole model has {whole.Count} parameters and the rank's {model} {mine.Count}: they are not the same model at two tensor degrees.");
        for (int p = 0; p < whole.Count; p++)
        {
            if (whole[p].Name != mine[p].Name)
                throw new ArgumentException($"Parameter #{p} is '{whole[p].Name}' in the whole model but '{mine[p].Name}' on the rank.");
            yield return (whole[p], mine[p]);
        }
    }

    private static IReadOnlyList<ParameterInfo> Table(ModelProgram whole, ModelProgram mine)
    {
        ArgumentNullException.ThrowIfNull(whole);
        ArgumentNullException.ThrowIfNull(mine);
        if (whole.ModelName != mine.ModelName) throw new ArgumentException($"{whole.ModelName} and {mine.ModelName} are different models.");
        return whole.Parameters;
    }

    /// <summary>
    /// The whole model's parameter table as this rank's program implies it at tensor degree <paramref name="size"/>: each
    /// split axis <paramref name="size"/> times longer, offsets packed in the same order (what the model at degree 1 has).
    /// </summary>
    public static IReadOnlyList<ParameterInfo> WholeParameters(ModelProgram mine, int size)
    {
        ArgumentNullException.ThrowIfNull(mine);
        return Packed(mine.Parameters, (p, shape) => { if (p.Split is { } split) shape[shape.Length + split.Axis] *= size; });
    }

    /// <summary>
    /// A parameter table of the same parameters with shapes changed by <paramref name="resize"/> (given a copy of each
    /// shape to change in place), offsets packed in the same order.
    /// </summary>
    internal static List<ParameterInfo> Packed(IEnumerable<ParameterInfo> parameters, Action<ParameterInfo, int[]> resize)
    {
        var table = new List<ParameterInfo>();
        long offset = 0;
        foreach (var p in parameters)
        {
            var shape = (int[])p.Shape.Clone();
            resize(p, shape);
            long length = shape.Aggregate(1L, (a, d) => a * d);
            table.Add(p with { Shape = shape, Offset = offset, Length = length });
            offset += length;
        }
        return table;
    }

    /// <summary>Copies rank <paramref name="rank"/>'s piece of the whole model's values (<paramref name="wholeValues"/>: a parameter or gradient slab of <paramref name="whole"/>) into <paramref name="mineValues"/>.</summary>
    public static void Scatter(ModelProgram whole, ReadOnlySpan<float> wholeValues, ModelProgram mine, Span<float> mineValues, int rank, int size) =>
        Scatter(Table(whole, mine), wholeValues, mine, mineValues, rank, size);

    /// <summary>As <see cref="Scatter(ModelProgram, ReadOnlySpan{float}, ModelProgram, Span{float}, int, int)"/>, with the whole model given by its parameter table.</summary>
    public static void Scatter(IReadOnlyList<ParameterInfo> whole, ReadOnlySpan<float> wholeValues, ModelProgram mine, Span<float> mineValues, int rank, int size)
    {
        ArgumentNullException.ThrowIfNull(mine);
        Scatter(whole, wholeValues, mine.Parameters, mineValues, rank, size, mine.ModelName);
    }

    /// <summary>Scatter between two parameter tables (the rank's carries the splits).</summary>
    internal static void Scatter(IReadOnlyList<ParameterInfo> whole, ReadOnlySpan<float> wholeValues, IReadOnlyList<ParameterInfo> mine, Span<float> mineValues, int rank, int size, string model)
    {
        foreach (var (w, m) in Pairs(whole, mine, model))
            foreach (var b in Blocks(w, m, rank, size))
                wholeValues.Slice((int)b.Whole, (int)b.Count).CopyTo(mineValues.Slice((int)b.Rank, (int)b.Count));
    }

    /// <summary>Gather between two parameter tables (the ranks' carries the splits).</summary>
    internal static void Gather(IReadOnlyList<ParameterInfo> mine, IReadOnlyList<float[]> ranks, IReadOnlyList<ParameterInfo> whole, Span<float> wholeValues, string model)
    {
        foreach (var (w, m) in Pairs(whole, mine, model))
            for (int r = m.Split is null ? 0 : ranks.Count - 1; r >= 0; r--)
                foreach (var b in Blocks(w, m, r, ranks.Count))
                    ranks[r].AsSpan((int)b.Rank, (int)b.Count).CopyTo(wholeValues.Slice((int)b.Whole, (int)b.Count));
    }

    /// <summary>
    /// Rebuilds the whole model's values from every rank's slab (<paramref name="ranks"/>[r]: rank r's values of
    /// <paramref name="mine"/>). Replicated parameters are taken from rank 0.
    /// </summary>
    public static void Gather(ModelProgram mine, IReadOnlyList<float[]> ranks, ModelProgram whole, Span<float> wholeValues) =>
        Gather(mine, ranks, Table(whole, mine), wholeValues);

    /// <summary>As <see cref="Gather(ModelProgram, IReadOnlyList{float[]}, ModelProgram, Span{float})"/>, with the whole model given by its parameter table.</summary>
    public static void Gather(ModelProgram mine, IReadOnlyList<float[]> ranks, IReadOnlyList<ParameterInfo> whole, Span<float> wholeValues)
    {
        ArgumentNullException.ThrowIfNull(mine);
        ArgumentNullException.ThrowIfNull(ranks);
        Gather(mine.Parameters, ranks, whole, wholeValues, mine.ModelName);
    }

    /// <summary>
    /// Every rank's <paramref name="values"/> (a slab of <paramref name="mine"/>) gathered over <paramref name="tensor"/> into
    /// the whole model's layout (<paramref name="whole"/>'s table), on every rank (an all-gather; every rank must call it).
    /// </summary>
    public static void Gather(ModelProgram mine, ReadOnlySpan<float> values, ICommunicator tensor, IReadOnlyList<ParameterInfo> whole, Span<float> wholeValues)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var all = new float[values.Length * tensor.Size];
        tensor.AllGather(values, all);
        int n = values.Length;
        var ranks = Enumerable.Range(0, tensor.Size).Select(r => all.AsSpan(r * n, n).ToArray()).ToList();
        Gather(mine, ranks, whole, wholeValues);
    }

    /// <summary>
    /// Initialises this rank's program as its piece of the whole model initialised with <paramref name="seed"/>
    /// (<paramref name="whole"/>: the same model at tensor degree 1): every tensor degree starts from the same weights.
    /// </summary>
    public static void Initialize(ModelProgram mine, ModelProgram whole, ulong seed, int rank, int size)
    {
        ArgumentNullException.ThrowIfNull(mine);
        ArgumentNullException.ThrowIfNull(whole);
        whole.InitParameters(seed);
        whole.SyncParametersToHost();
        Scatter(whole, whole.Params, mine, mine.Params, rank, size);
        mine.ParametersChanged();
    }

    /// <summary>
    /// The squared norm of <paramref name="values"/>[start, start + length) (<paramref name="values"/>: a whole slab of
    /// <paramref name="program"/>, parameters or gradients) over the program's tensor and pipeline groups: split
    /// parameters' values summed over the tensor ranks and staged ones over the pipeline stages, the others counted
    /// once. Every rank of those groups must call it (one all-reduce per group that has more than one rank; two on the
    /// tensor group when both have).
    /// </summary>
    public static double SquaredNorm(ModelProgram program, ReadOnlySpan<float> values, int start, int length)
    {
        ArgumentNullException.ThrowIfNull(program);
        double splitStaged = 0, wholeStaged = 0, split = 0, whole = 0;
        int end = start + length;
        foreach (var p in program.Parameters)
        {
            long from = Math.Max(start, p.Offset), to = Math.Min(end, p.Offset + p.Length);
            if (from >= to) continue;
            double sq = 0;
            for (long i = from; i < to; i++) sq += (double)values[(int)i] * values[(int)i];
            if (p.Staged) { if (p.Split is null) wholeStaged += sq; else splitStaged += sq; }
            else if (p.Split is null) whole += sq; else split += sq;
        }
        var tensor = program.TensorGroup is { Size: > 1 } t ? t : null;
        var pipeline = program.PipelineGroup is { Size: > 1 } pp ? pp : null;
        if (tensor is not null)
        {
            if (pipeline is null) { split = tensor.AllReduceSum(split + splitStaged); splitStaged = 0; }
            else { split = tensor.AllReduceSum(split); splitStaged = tensor.AllReduceSum(splitStaged); }
        }
        double staged = splitStaged + wholeStaged;
        if (pipeline is not null) staged = pipeline.AllReduceSum(staged);
        return staged + split + whole;
    }
}

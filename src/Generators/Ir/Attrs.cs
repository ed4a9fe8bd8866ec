using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Kiln.Generators.Common;

namespace Kiln.Generators.Ir;

/// <summary>
/// The typed attributes of an op: what a node knows besides its inputs, shape and dtype. Each op takes at most
/// one attribute record (its registry entry names the type); records compare by value, so two nodes with the
/// same op, inputs, attribute, shape and dtype are the same computation (common-subexpression elimination keys
/// on exactly that). <see cref="PrintParts"/> is how the IR printer shows the attribute.
/// </summary>
internal abstract record OpAttr
{
    /// <summary>The attribute as the IR printer lists it after the operands.</summary>
    public abstract IEnumerable<string> PrintParts();

    protected static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A program input: its name and element type.</summary>
internal sealed record InputAttr(string Name, DType DType) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { Name };
}

/// <summary>Parameter <paramref name="Index"/> of the model's parameter table (named for the printer).</summary>
internal sealed record ParamAttr(int Index, string Name) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { Name };
}

/// <summary>The scalar operand of Fill, Scale, AddScalar and PowScalar.</summary>
internal sealed record ScalarAttr(Scalar Value) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { Value.ToString() };
}

/// <summary>A dropout mask: the drop probability and the site that keys its random stream.</summary>
internal sealed record DropoutAttr(int Site, Scalar P) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "site=" + I(Site), P.ToString() };
}

/// <summary>The target value that marks an ignored position (IndexMask, PickLast).</summary>
internal sealed record IgnoreAttr(int Ignore) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "ignore=" + I(Ignore) };
}

/// <summary>PickLast's gradient: the ignored target value and the number of classes it scatters into.</summary>
internal sealed record PickGradAttr(int Ignore, Sym Classes) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "ignore=" + I(Ignore) };
}

/// <summary>A reduction over one axis, keeping it as size 1 or dropping it.</summary>
internal sealed record ReduceAttr(int Axis, bool KeepDim) : OpAttr
{
    public override IEnumerable<string> PrintParts() => KeepDim ? new[] { "axis=" + I(Axis), "keep" } : new[] { "axis=" + I(Axis) };
}

/// <summary>Whether each matmul operand is read transposed (its last two axes swapped).</summary>
internal sealed record MatMulAttr(bool TransA, bool TransB) : OpAttr
{
    public override IEnumerable<string> PrintParts()
    {
        if (TransA) yield return "transA";
        if (TransB) yield return "transB";
    }
}

/// <summary>Output axis i reads input axis Order[i].</summary>
internal sealed record PermuteAttr(EquatableArray<int> Order) : OpAttr
{
    public PermuteAttr(IEnumerable<int> order) : this(order.ToEquatableArray()) { }
    public override IEnumerable<string> PrintParts() => new[] { "order=(" + string.Join(",", Order) + ")" };
}

/// <summary>Elements [Start, End) along one axis.</summary>
internal sealed record SliceAttr(int Axis, Sym Start, Sym End) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "axis=" + I(Axis), $"[{Start}:{End}]" };
}

/// <summary>Zeros added before and after one axis.</summary>
internal sealed record PadAttr(int Axis, Sym Before, Sym After) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "axis=" + I(Axis), $"before={Before}", $"after={After}" };
}

/// <summary>The axis an op works along (Concat).</summary>
internal sealed record AxisAttr(int Axis) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "axis=" + I(Axis) };
}

/// <summary>
/// Fused attention: <paramref name="Causal"/> (query i sees key j when j ≤ i + Tk − Tq) and <paramref name="Masked"/>
/// (a keep input [B, Tk] follows v: keys whose keep is 0 are hidden). The scale is 1/√d. <paramref name="Site"/> ≥ 0 only
/// in a decode program: the op appends its keys and values to KV cache number <paramref name="Site"/> and attends to all
/// cached positions.
/// </summary>
internal sealed record AttentionAttr(bool Causal, bool Masked, int Site = -1) : OpAttr
{
    public override IEnumerable<string> PrintParts()
    {
        if (Causal) yield return "causal";
        if (Masked) yield return "masked";
        if (Site >= 0) yield return "cache=" + I(Site);
    }
}

/// <summary>The row count of the table a gather's gradient scatters into.</summary>
internal sealed record GatherGradAttr(Sym Rows) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "rows=" + Rows };
}

/// <summary>
/// A loop region (JAX's <c>scan</c>): the body graph runs <paramref name="Count"/> times, forward or in reverse. The
/// loop's inputs are, in order, <paramref name="Carried"/> carried values (the body's next value replaces each after
/// every iteration), <paramref name="Captured"/> captured values (the same every iteration) and
/// <paramref name="Stacked"/> stacked values whose leading dimension is the count (iteration l sees slice l: the
/// stacked parameters of repeated blocks, saved activations). The body's outputs (<see cref="OutputRole.Carried"/>,
/// then <see cref="OutputRole.Stacked"/>) are read through <see cref="Op.LoopOut"/> projections: the final carried
/// values, then each stacked result over all iterations. <paramref name="Recompute"/>: the backward loop recomputes
/// the body's forward from the carried value instead of saving its activations (activation checkpointing).
/// </summary>
internal sealed record LoopAttr(string Label, Sym Count, Graph Body, int Carried, int Captured, int Stacked, bool Reverse = false, bool Recompute = false) : OpAttr
{
    public int Inputs => Carried + Captured + Stacked;

    /// <summary>The body's carried results, then its stacked results (one node each).</summary>
    public IReadOnlyList<int> Results => Body.Outputs.Select(o => o.Node).ToList();

    public int StackedResults => Body.Outputs.Count - Carried;

    public override IEnumerable<string> PrintParts()
    {
        yield return Label;
        yield return "count=" + Count;
        yield return $"carried={I(Carried)}";
        yield return $"captured={I(Captured)}";
        yield return $"stacked={I(Stacked)}";
        if (Reverse) yield return "reverse";
        if (Recompute) yield return "recompute";
    }
}

/// <summary>Which loop input a body argument is (see <see cref="LoopAttr"/> for the order) and its element type.</summary>
internal sealed record LoopArgAttr(int Index, DType DType) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "#" + I(Index) };
}

/// <summary>Which loop result a projection reads: a carried value (index &lt; Carried) or a stacked result.</summary>
internal sealed record LoopOutAttr(int Index) : OpAttr
{
    public override IEnumerable<string> PrintParts() => new[] { "#" + I(Index) };
}

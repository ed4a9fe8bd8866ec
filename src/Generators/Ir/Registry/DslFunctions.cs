using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Generators.Ir;

/// <summary>
/// One call of an <c>Ops</c> function as a DSL function's lowering sees it: its arguments (already evaluated, in
/// parameter order with defaults filled in), typed accessors that report misuse at the argument, and the builder
/// the result goes into. The lowerer implements it for model code; tests implement it over fixed nodes.
/// </summary>
internal abstract class DslCall
{
    public abstract GraphBuilder G { get; }
    /// <summary>The function's name (<c>Softmax</c>).</summary>
    public abstract string Name { get; }
    public abstract int Count { get; }
    public abstract bool IsTensor(int i);
    /// <summary>Argument <paramref name="i"/> as a tensor of any element type.</summary>
    public abstract int Tensor(int i, string what = "an operand");
    /// <summary>Argument <paramref name="i"/> as a float tensor (an integer tensor is reported at the argument).</summary>
    public abstract int Float(int i);
    /// <summary>Argument <paramref name="i"/> as an axis of a rank-<paramref name="rank"/> tensor (negative counts from the end).</summary>
    public abstract int Axis(int i, int rank);
    /// <summary>Argument <paramref name="i"/> as an integer the program's structure depends on (known at build time).</summary>
    public abstract long Constant(int i, string what);
    /// <summary>Argument <paramref name="i"/> as a symbolic size.</summary>
    public abstract Sym Size(int i, string what);
    /// <summary>Argument <paramref name="i"/> as a symbolic float.</summary>
    public abstract Scalar Number(int i);
    /// <summary>Argument <paramref name="i"/> as a list of sizes (a params array or an array literal).</summary>
    public abstract IReadOnlyList<Sym> Sizes(int i, string what);
    /// <summary>Argument <paramref name="i"/> as a list of axes of a rank-<paramref name="rank"/> tensor.</summary>
    public abstract IReadOnlyList<int> Axes(int i, int rank, string what);
    /// <summary>Argument <paramref name="i"/> as a list of tensors (possibly empty).</summary>
    public abstract IReadOnlyList<int> Tensors(int i, string what);
    /// <summary>An error located at the call.</summary>
    public abstract Exception Fail(string id, string message);
}

/// <summary>A function of the model DSL (<c>Ops.X</c>) that is not one primitive op: a composition or an argument mapping.</summary>
internal sealed class DslFunction
{
    public DslFunction(string name, Func<DslCall, int> lower) { Name = name; Lower = lower; }
    public string Name { get; }
    public Func<DslCall, int> Lower { get; }
    public override string ToString() => Name;
}

/// <summary>
/// The DSL functions that lower to more than one primitive op, or map their arguments before they do: activations
/// and losses written as compositions (autodiff, fusion and every backend then handle them for free), and the
/// functions whose arguments are axes, sizes or lists. An <c>Ops</c> method that is exactly one primitive op is
/// named by that op's registry entry (<see cref="OpDef.Dsl"/>) instead.
/// </summary>
internal static class DslFunctions
{
    private static readonly Dictionary<string, DslFunction> Table = Build().ToDictionary(f => f.Name, StringComparer.Ordinal);

    public static IReadOnlyCollection<DslFunction> All => Table.Values;

    private static readonly Dictionary<string, OpDef> Primitives =
        OpRegistry.All.Where(d => d.Dsl is not null).ToDictionary(d => d.Dsl!, StringComparer.Ordinal);

    /// <summary>The primitive op an <c>Ops</c> method is, if it is one.</summary>
    public static OpDef? Primitive(string name) => Primitives.TryGetValue(name, out var d) ? d : null;

    public static DslFunction? Find(string name) => Table.TryGetValue(name, out var f) ? f : null;

    /// <summary>Lowers <c>Ops.{call.Name}</c>; null when no primitive or function has that name.</summary>
    public static int? Lower(DslCall call)
    {
        if (Primitive(call.Name) is { } def)
        {
            // Elementwise operands must be float tensors (reported at the argument); other primitives check dtypes in their shape rule.
            var inputs = Enumerable.Range(0, call.Count).Select(i => def.IsFusible ? call.Float(i) : call.Tensor(i)).ToArray();
            return call.G.Add(def.Op, inputs);
        }
        return Find(call.Name)?.Lower(call);
    }

    /// <summary>Mean over one axis: the sum scaled by 1/n (n symbolic).</summary>
    public static int Mean(GraphBuilder g, int x, int axis, bool keep)
    {
        var n = g[x].Shape[axis];
        return g.Scale(g.Reduce(Op.ReduceSum, x, axis, keep), Scalar.Const(1) / Scalar.FromSym(n));
    }

    private static bool IsLastTwoSwap(GraphBuilder g, int node)
    {
        var n = g[node];
        if (n.Op != Op.Permute || n.Rank < 2) return false;
        var order = n.A<PermuteAttr>().Order;
        for (int i = 0; i < n.Rank - 2; i++) if (order[i] != i) return false;
        return order[n.Rank - 2] == n.Rank - 1 && order[n.Rank - 1] == n.Rank - 2;
    }

    private static IEnumerable<DslFunction> Build()
    {
        yield return new DslFunction("MatMul", c =>
        {
            int a = c.Float(0), b = c.Float(1);
            bool ta = false, tb = false;
            // x·Wᵀ written as MatMul(x, w.T) becomes a transposed GEMM, not a copy.
            if (IsLastTwoSwap(c.G, a)) { a = c.G[a].Inputs[0]; ta = true; }
            if (IsLastTwoSwap(c.G, b)) { b = c.G[b].Inputs[0]; tb = true; }
            return c.G.MatMul(a, b, ta, tb);
        });

        // Fused attention: the kernel writes the output and each row's log-sum-exp ([.., d + 1]); the user sees the output.
        yield return new DslFunction("Attention", c =>
        {
            int q = c.Float(0), k = c.Float(1), v = c.Float(2);
            bool masked = c.Count > 3 && c.IsTensor(3);
            bool causal = !masked && c.Count > 3 && c.Constant(3, "causal") != 0;
            var fused = c.G.Add(Op.Attention, masked ? new[] { q, k, v, c.Float(3) } : new[] { q, k, v }, new AttentionAttr(causal, masked));
            return c.G.Add(Op.Slice, new[] { fused }, new SliceAttr(3, Sym.Zero, c.G[q].Shape[3]));
        });

        yield return new DslFunction("Pow", c =>
        {
            var e = c.Number(1);
            if (e.IsConst && e.Value == 1) return c.Float(0);
            if (e.IsConst && e.Value == 2) return c.G.Unary(Op.Square, c.Float(0));
            if (e.IsConst && e.Value == 0.5) return c.G.Unary(Op.Sqrt, c.Float(0));
            return c.G.Add(Op.PowScalar, new[] { c.Float(0) }, new ScalarAttr(e));
        });

        // softplus(x) = log(1 + eˣ), written as ½(x + |x|) + log(1 + e^−|x|): e^−|x| never overflows, and the
        // gradient is σ(x) everywhere, including ½ at x = 0 (max(x, 0) would give 0 there).
        yield return new DslFunction("Softplus", c =>
        {
            var g = c.G; var x = c.Float(0);
            var abs = g.Unary(Op.Abs, x);
            var positive = g.Scale(g.Binary(Op.Add, x, abs), 0.5);
            return g.Binary(Op.Add, positive, g.Unary(Op.Log, g.AddScalar(g.Unary(Op.Exp, g.Unary(Op.Neg, abs)), 1)));
        });

        // SiLU (swish): x·σ(x).
        yield return new DslFunction("Silu", c => { var x = c.Float(0); return c.G.Binary(Op.Mul, x, c.G.Unary(Op.Sigmoid, x)); });

        foreach (var name in new[] { "Softmax", "LogSoftmax" })
        {
            bool log = name == "LogSoftmax";
            yield return new DslFunction(name, c =>
            {
                var g = c.G; var x = c.Float(0);
                int axis = c.Axis(1, g[x].Rank);
                var m = g.Unary(Op.StopGradient, g.Reduce(Op.ReduceMax, x, axis, true));
                var z = g.Binary(Op.Sub, x, m);
                var ez = g.Unary(Op.Exp, z);
                var sum = g.Reduce(Op.ReduceSum, ez, axis, true);
                return log ? g.Binary(Op.Sub, z, g.Unary(Op.Log, sum)) : g.Binary(Op.Div, ez, sum);
            });
        }

        foreach (var name in new[] { "Sum", "Mean", "Max" })
        {
            yield return new DslFunction(name, c =>
            {
                var g = c.G; var x = c.Float(0);
                if (c.Count == 1)
                {
                    var flat = g.Reshape(x, new[] { Shapes.Numel(g[x].Shape) });
                    return name == "Sum" ? g.Reduce(Op.ReduceSum, flat, 0, false) : Mean(g, flat, 0, false);
                }
                int axis = c.Axis(1, g[x].Rank);
                bool keep = c.Count > 2 && c.Constant(2, "keepDim") != 0;
                return name switch
                {
                    "Sum" => g.Reduce(Op.ReduceSum, x, axis, keep),
                    "Mean" => Mean(g, x, axis, keep),
                    _ => g.Reduce(Op.ReduceMax, x, axis, keep),
                };
            });
        }

        yield return new DslFunction("Reshape", c =>
        {
            var g = c.G; var x = c.Tensor(0);
            var dims = c.Sizes(1, "dimensions");
            var shape = new Sym?[dims.Count];
            int infer = -1;
            for (int i = 0; i < shape.Length; i++)
            {
                var d = dims[i];
                if (d.TryConst(out var k) && k == -1)
                {
                    if (infer >= 0) throw c.Fail("KILN1004", "Reshape can infer only one dimension (-1)");
                    infer = i;
                }
                else if (d.TryConst(out var k2) && k2 <= 0) throw c.Fail("KILN1004", $"Reshape dimension {i} is {k2}; dimensions must be positive (or -1 once)");
                else shape[i] = d;
            }
            if (infer >= 0)
            {
                var known = Sym.One;
                foreach (var d in shape) if (d is not null) known *= d;
                var numel = Shapes.Numel(g[x].Shape);
                var inferred = Sym.Div(numel, known);
                if (!(inferred * known).Equals(numel))
                {
                    if (numel.IsConst && known.IsConst)
                        throw c.Fail("KILN1004", $"Reshape cannot infer dimension {infer}: {numel} elements do not divide by {known}, the product of the other dimensions");
                    g.RequireDivisible(numel, known, $"Reshape infers dimension {infer}: {Shapes.Format(g[x].Shape)} must divide by {known}");
                }
                shape[infer] = inferred;
            }
            return g.Add(Op.Reshape, new[] { x }, shape: shape.Select(d => d!).ToArray());
        });

        yield return new DslFunction("Transpose", c =>
        {
            var x = c.Tensor(0); int r = c.G[x].Rank;
            int a0 = c.Axis(1, r), a1 = c.Axis(2, r);
            var order = Enumerable.Range(0, r).ToArray();
            (order[a0], order[a1]) = (order[a1], order[a0]);
            return c.G.Add(Op.Permute, new[] { x }, new PermuteAttr(order));
        });

        yield return new DslFunction("Permute", c =>
        {
            var x = c.Tensor(0);
            return c.G.Add(Op.Permute, new[] { x }, new PermuteAttr(c.Axes(1, c.G[x].Rank, "axes")));
        });

        yield return new DslFunction("Slice", c =>
        {
            var x = c.Tensor(0); var xs = c.G[x].Shape;
            int axis = c.Axis(1, xs.Length);
            Sym Bound(int i)
            {
                var b = c.Size(i, "a slice bound");
                return b.TryConst(out var k) && k < 0 ? xs[axis] + b : b;
            }
            return c.G.Add(Op.Slice, new[] { x }, new SliceAttr(axis, Bound(2), Bound(3)));
        });

        yield return new DslFunction("Concat", c =>
        {
            var nodes = c.Tensors(1, "a part");
            if (nodes.Count == 0) throw c.Fail("KILN1008", "Concat needs at least one tensor");
            int axis = c.Axis(0, c.G[nodes[0]].Rank);
            return nodes.Count == 1 ? nodes[0] : c.G.Add(Op.Concat, nodes.ToArray(), new AxisAttr(axis));
        });

        // The sinusoidal position table of "Attention is all you need": PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(…),
        // built from Arange, Exp, Sin and Cos as [length, d/2, 2] and flattened to [length, d].
        yield return new DslFunction("SinusoidalPositions", c =>
        {
            var g = c.G;
            Sym length = c.Size(0, "the length"), dim = c.Size(1, "the dimension");
            if (dim.TryConst(out var d))
            {
                if (d % 2 != 0) throw c.Fail("KILN1004", $"SinusoidalPositions lays out sin and cos pairs as [length, dim], so dim must be even; got {d}");
            }
            else g.RequireDivisible(dim, Sym.Const(2), "SinusoidalPositions: dim must be even (it holds sin and cos pairs)");
            var half = Sym.Div(dim, Sym.Const(2));
            var positions = g.Reshape(g.Unary(Op.ToFloat, g.Add(Op.Arange, Array.Empty<int>(), shape: new[] { length })), new[] { length, Sym.One });
            var index = g.Unary(Op.ToFloat, g.Add(Op.Arange, Array.Empty<int>(), shape: new[] { half }));
            var frequencies = g.Unary(Op.Exp, g.Scale(index, Scalar.Const(-2 * Math.Log(10000)) / Scalar.FromSym(dim)));
            var angles = g.Binary(Op.Mul, positions, g.Reshape(frequencies, new[] { Sym.One, half }));
            var pair = new[] { length, half, Sym.One };
            var table = g.Add(Op.Concat, new[] { g.Reshape(g.Unary(Op.Sin, angles), pair), g.Reshape(g.Unary(Op.Cos, angles), pair) }, new AxisAttr(2));
            return g.Reshape(table, new[] { length, dim });
        });

        yield return new DslFunction("Arange", c => c.G.Add(Op.Arange, Array.Empty<int>(), shape: new[] { c.Size(0, "the length") }));

        yield return new DslFunction("Where", c =>
        {
            var cond = c.Float(0); var a = c.Float(1);
            var b = c.IsTensor(2) ? c.Float(2) : c.G.Fill(c.Number(2), Array.Empty<Sym>());
            return c.G.Add(Op.Where, new[] { cond, a, b });
        });

        // Mean cross-entropy over the positions whose target is not ignoreIndex (log-softmax, pick, masked mean).
        yield return new DslFunction("CrossEntropy", c =>
        {
            var g = c.G; var logits = c.Float(0); var targets = c.Tensor(1);
            var ignore = (int)c.Constant(2, "ignoreIndex");
            int last = g[logits].Rank - 1;
            if (last < 0) throw c.Fail("KILN1003", "CrossEntropy needs logits of rank ≥ 1");
            var m = g.Unary(Op.StopGradient, g.Reduce(Op.ReduceMax, logits, last, true));
            var z = g.Binary(Op.Sub, logits, m);
            var lse = g.Unary(Op.Log, g.Reduce(Op.ReduceSum, g.Unary(Op.Exp, z), last, true));
            var logp = g.Binary(Op.Sub, z, lse);
            var picked = g.Add(Op.PickLast, new[] { logp, targets }, new IgnoreAttr(ignore));
            var mask = g.Add(Op.IndexMask, new[] { targets }, new IgnoreAttr(ignore));
            var numel = Shapes.Numel(g[picked].Shape);
            var flatPicked = g.Reshape(g.Binary(Op.Mul, picked, mask), new[] { numel });
            var total = g.Reduce(Op.ReduceSum, flatPicked, 0, false);
            var count = g.Reduce(Op.ReduceSum, g.Reshape(mask, new[] { numel }), 0, false);
            var denom = g.Binary(Op.Maximum, count, g.Fill(1, Array.Empty<Sym>()));
            return g.Unary(Op.Neg, g.Binary(Op.Div, total, denom));
        });

        yield return new DslFunction("MseLoss", c =>
        {
            var g = c.G; var p = c.Float(0); var t = c.Float(1);
            var ps = g[p].Shape; var ts = g[t].Shape;
            if (ps.Length != ts.Length) throw c.Fail("KILN1005", $"MseLoss needs prediction and target of the same shape; got {Shapes.Format(ps)} and {Shapes.Format(ts)}");
            for (int i = 0; i < ps.Length; i++)
            {
                var cmp = Sym.Compare(ps[i], ts[i]);
                if (cmp == SymCompare.Unknown) g.Require(ps[i], ts[i], $"MseLoss prediction {Shapes.Format(ps)} and target {Shapes.Format(ts)} must agree on axis {i}");
                else if (cmp != SymCompare.Equal) throw c.Fail("KILN1005", $"MseLoss needs prediction and target of the same shape; got {Shapes.Format(ps)} and {Shapes.Format(ts)}");
            }
            var d = g.Binary(Op.Sub, p, t);
            var sq = g.Reshape(g.Unary(Op.Square, d), new[] { Shapes.Numel(ps) });
            return Mean(g, sq, 0, false);
        });
    }
}

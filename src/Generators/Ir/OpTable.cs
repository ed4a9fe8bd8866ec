using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Generators.Ir;

/// <summary>Category of an op, which decides how fusion and the emitters treat it.</summary>
internal enum OpKind { Source, Elementwise, Reduction, MatMul, Movement, Indexing }

/// <summary>
/// The per-op facts, side by side: category, shape and dtype rule (<see cref="Infer"/>), gradient rule
/// (<see cref="Vjp"/>) and CPU lowering of elementwise ops (<see cref="CpuVector"/>, <see cref="CpuScalar"/>).
/// Adding an op means adding a case to each switch in this file (and a kernel if it is not elementwise).
/// </summary>
internal static class OpTable
{
    public static OpKind KindOf(Op op) => op switch
    {
        Op.Input or Op.Param or Op.Fill or Op.Arange or Op.DropoutMask => OpKind.Source,
        Op.ReduceSum or Op.ReduceMax or Op.SumTo => OpKind.Reduction,
        Op.MatMul => OpKind.MatMul,
        Op.Reshape or Op.Permute or Op.Slice or Op.Pad or Op.Concat => OpKind.Movement,
        Op.Gather or Op.GatherGrad or Op.PickLast or Op.PickLastGrad or Op.ToFloat or Op.IndexMask => OpKind.Indexing,
        _ => OpKind.Elementwise,
    };

    /// <summary>Elementwise ops a fused CPU kernel can compute in registers.</summary>
    public static bool IsFusible(Op op) => KindOf(op) == OpKind.Elementwise;

    // ───────────────────────────── shape and dtype rules ─────────────────────────────

    /// <summary>
    /// The dtype and shape of an op applied to <paramref name="inputs"/>. <paramref name="shape"/> is the
    /// declared shape for ops that take one (Input, Param, Fill, Arange, Reshape, BroadcastTo, SumTo).
    /// Unprovable symbolic equalities become run-time constraints via <paramref name="require"/>.
    /// </summary>
    public static (DType, Sym[]) Infer(Op op, Node[] inputs, OpAttr? attr, Sym[]? shape, Action<Sym, Sym, string> require)
    {
        switch (op)
        {
            case Op.Input: case Op.Param: case Op.Fill: case Op.DropoutMask:
                return (op == Op.Input ? ((InputAttr)attr!).DType : DType.F32, shape!);
            case Op.Arange:
                return (DType.I32, shape!);
            case Op.ToFloat:
                RequireInt(inputs[0], "ToFloat");
                return (DType.F32, inputs[0].Shape);
            case Op.IndexMask:
                RequireInt(inputs[0], "an index mask");
                return (DType.F32, inputs[0].Shape);
            case Op.Add: case Op.Sub: case Op.Mul: case Op.Div: case Op.Maximum: case Op.Minimum:
            case Op.Greater: case Op.Less: case Op.Equal:
                RequireFloat(inputs[0], op.ToString()); RequireFloat(inputs[1], op.ToString());
                return (DType.F32, Broadcast(inputs[0].Shape, inputs[1].Shape, op.ToString(), require));
            case Op.Where:
                foreach (var i in inputs) RequireFloat(i, "Where");
                return (DType.F32, Broadcast(Broadcast(inputs[0].Shape, inputs[1].Shape, "Where", require), inputs[2].Shape, "Where", require));
            case Op.BroadcastTo:
                RequireFloat(inputs[0], "BroadcastTo");
                var b = Broadcast(inputs[0].Shape, shape!, "BroadcastTo", require);
                if (b.Length != shape!.Length) throw new ShapeException("KILN1002", $"cannot broadcast {Shapes.Format(inputs[0].Shape)} to {Shapes.Format(shape)}");
                return (DType.F32, shape);
            case Op.SumTo:
                Broadcast(shape!, inputs[0].Shape, "SumTo", require);
                return (DType.F32, shape!);
            case Op.ReduceSum: case Op.ReduceMax:
            {
                RequireFloat(inputs[0], op == Op.ReduceSum ? "Sum" : "Max");
                var x = inputs[0].Shape;
                var (axis, keep) = (ReduceAttr)attr!;
                if (axis < 0 || axis >= x.Length) throw new ShapeException("KILN1003", $"axis {axis} is out of range for a rank-{x.Length} tensor {Shapes.Format(x)}");
                var outShape = keep ? x.Select((d, i) => i == axis ? Sym.One : d).ToArray() : x.Where((_, i) => i != axis).ToArray();
                return (DType.F32, outShape);
            }
            case Op.MatMul:
            {
                var a = inputs[0]; var bb = inputs[1];
                RequireFloat(a, "MatMul"); RequireFloat(bb, "MatMul");
                if (a.Rank < 2 || bb.Rank < 2)
                    throw new ShapeException("KILN1003", $"MatMul needs tensors of rank ≥ 2, got {Shapes.Format(a.Shape)} and {Shapes.Format(bb.Shape)}; reshape a vector to [1, n] or [n, 1] first");
                var (ta, tb) = (MatMulAttr)attr!;
                var m = a.Shape[a.Rank - (ta ? 1 : 2)]; var k1 = a.Shape[a.Rank - (ta ? 2 : 1)];
                var k2 = bb.Shape[bb.Rank - (tb ? 1 : 2)]; var n = bb.Shape[bb.Rank - (tb ? 2 : 1)];
                Unify(k1, k2, () => $"MatMul inner dimensions differ: {Shapes.Format(a.Shape)}{(ta ? "ᵀ" : "")} · {Shapes.Format(bb.Shape)}{(tb ? "ᵀ" : "")} has {k1} vs {k2}", "KILN1001", require);
                var batch = Broadcast(a.Shape.Take(a.Rank - 2).ToArray(), bb.Shape.Take(bb.Rank - 2).ToArray(), "MatMul batch", require);
                return (DType.F32, batch.Concat(new[] { m, n }).ToArray());
            }
            case Op.Reshape:
            {
                var from = Shapes.Numel(inputs[0].Shape); var to = Shapes.Numel(shape!);
                Unify(from, to, () => $"cannot reshape {Shapes.Format(inputs[0].Shape)} ({from} elements) to {Shapes.Format(shape!)} ({to} elements)", "KILN1004", require);
                return (inputs[0].DType, shape!);
            }
            case Op.Permute:
            {
                var x = inputs[0].Shape;
                var order = ((PermuteAttr)attr!).Order;
                if (order.Count != x.Length || order.OrderBy(i => i).Where((v, i) => v != i).Any())
                    throw new ShapeException("KILN1003", $"Permute order ({string.Join(", ", order)}) is not a permutation of the {x.Length} axes of {Shapes.Format(x)}");
                return (inputs[0].DType, order.Select(i => x[i]).ToArray());
            }
            case Op.Slice:
            {
                var x = inputs[0].Shape;
                var (axis, start, end) = (SliceAttr)attr!;
                if (axis < 0 || axis >= x.Length) throw new ShapeException("KILN1003", $"Slice axis {axis} is out of range for {Shapes.Format(x)}");
                var len = end - start;
                if (Sym.Compare(end, start) == SymCompare.Less || (len.TryConst(out var l) && l <= 0))
                    throw new ShapeException("KILN1006", $"Slice [{start}, {end}) along axis {axis} is empty or reversed");
                if (Sym.Compare(end, x[axis]) == SymCompare.Greater)
                    throw new ShapeException("KILN1006", $"Slice end {end} is past the size {x[axis]} of axis {axis} of {Shapes.Format(x)}");
                // end ≤ size as an equality the program can check: ⌊end / (size + 1)⌋ = 0 (both are non-negative).
                if (Sym.Compare(end, x[axis]) == SymCompare.Unknown)
                    require(Sym.Div(end, x[axis] + Sym.One), Sym.Zero, $"Slice end {end} must not exceed {x[axis]}");
                return (inputs[0].DType, x.Select((d, i) => i == axis ? len : d).ToArray());
            }
            case Op.Pad:
            {
                var x = inputs[0].Shape;
                var (axis, before, after) = (PadAttr)attr!;
                return (DType.F32, x.Select((d, i) => i == axis ? d + before + after : d).ToArray());
            }
            case Op.Concat:
            {
                int axis = ((AxisAttr)attr!).Axis; var first = inputs[0].Shape;
                if (axis < 0 || axis >= first.Length) throw new ShapeException("KILN1003", $"Concat axis {axis} is out of range for {Shapes.Format(first)}");
                var total = Sym.Zero;
                foreach (var part in inputs)
                {
                    if (part.Rank != first.Length) throw new ShapeException("KILN1003", $"Concat parts have different ranks: {Shapes.Format(first)} and {Shapes.Format(part.Shape)}");
                    if (part.DType != inputs[0].DType) throw new ShapeException("KILN1007", "Concat parts have different element types");
                    for (int i = 0; i < first.Length; i++)
                        if (i != axis) Unify(first[i], part.Shape[i], () => $"Concat parts differ on axis {i}: {Shapes.Format(first)} vs {Shapes.Format(part.Shape)}", "KILN1002", require);
                    total += part.Shape[axis];
                }
                return (inputs[0].DType, first.Select((d, i) => i == axis ? total : d).ToArray());
            }
            case Op.Gather:
            {
                RequireFloat(inputs[0], "Gather (the table)");
                RequireInt(inputs[1], "Gather (the indices)");
                if (inputs[0].Rank != 2) throw new ShapeException("KILN1003", $"Gather needs a rank-2 table [N, D], got {Shapes.Format(inputs[0].Shape)}");
                return (DType.F32, inputs[1].Shape.Concat(new[] { inputs[0].Shape[1] }).ToArray());
            }
            case Op.GatherGrad:
                return (DType.F32, new[] { ((GatherGradAttr)attr!).Rows, inputs[0].Shape[inputs[0].Rank - 1] });
            case Op.PickLast:
            {
                RequireFloat(inputs[0], "CrossEntropy (the logits)");
                RequireInt(inputs[1], "CrossEntropy (the targets)");
                var x = inputs[0].Shape; var t = inputs[1].Shape;
                if (x.Length != t.Length + 1)
                    throw new ShapeException("KILN1003", $"CrossEntropy needs logits [..., C] and targets [...] with one dimension less; got {Shapes.Format(x)} and {Shapes.Format(t)}");
                for (int i = 0; i < t.Length; i++)
                    Unify(x[i], t[i], () => $"CrossEntropy logits {Shapes.Format(x)} and targets {Shapes.Format(t)} differ on axis {i}", "KILN1002", require);
                return (DType.F32, t);
            }
            case Op.PickLastGrad:
                return (DType.F32, inputs[0].Shape.Concat(new[] { ((PickGradAttr)attr!).Classes }).ToArray());
            default:
                // Unary elementwise: same shape, float.
                RequireFloat(inputs[0], op.ToString());
                return (DType.F32, inputs[0].Shape);
        }
    }

    public static void RequireFloat(Node n, string what)
    {
        if (n.DType != DType.F32)
            throw new ShapeException("KILN1007", $"{what} needs a float tensor but got an integer tensor {Shapes.Format(n.Shape)}; convert it with Ops.ToFloat(...)");
    }

    public static void RequireInt(Node n, string what)
    {
        if (n.DType != DType.I32)
            throw new ShapeException("KILN1007", $"{what} needs an integer tensor (Tensor<int>) but got a float tensor {Shapes.Format(n.Shape)}");
    }

    private static void Unify(Sym a, Sym b, Func<string> message, string id, Action<Sym, Sym, string> require)
    {
        switch (Sym.Compare(a, b))
        {
            case SymCompare.Equal: return;
            case SymCompare.Unknown: require(a, b, message()); return;
            default: throw new ShapeException(id, message());
        }
    }

    /// <summary>NumPy broadcasting: align right; equal dims or a constant 1 on one side.</summary>
    public static Sym[] Broadcast(Sym[] a, Sym[] b, string what, Action<Sym, Sym, string> require)
    {
        int r = Math.Max(a.Length, b.Length);
        var result = new Sym[r];
        for (int i = 0; i < r; i++)
        {
            var da = i < r - a.Length ? Sym.One : a[i - (r - a.Length)];
            var db = i < r - b.Length ? Sym.One : b[i - (r - b.Length)];
            if (da.Equals(db)) result[i] = da;
            else if (da.Equals(Sym.One)) result[i] = db;
            else if (db.Equals(Sym.One)) result[i] = da;
            else
            {
                Unify(da, db, () => $"{what}: shapes {Shapes.Format(a)} and {Shapes.Format(b)} do not broadcast ({da} vs {db} on axis {i - r})", "KILN1002", require);
                result[i] = da;
            }
        }
        return result;
    }

    // ───────────────────────────── gradient rules ─────────────────────────────

    /// <summary>
    /// The vector-Jacobian product: given the gradient <paramref name="dy"/> of node <paramref name="n"/>,
    /// the gradient of each input (null where none flows). Results have the input's exact shape.
    /// </summary>
    public static int?[] Vjp(GraphBuilder g, Node n, int dy)
    {
        var x = n.Inputs.Length > 0 ? g[n.Inputs[0]] : null;
        int y = n.Id;
        switch (n.Op)
        {
            case Op.Input: case Op.Param: case Op.Fill: case Op.Arange: case Op.DropoutMask:
            case Op.StopGradient: case Op.Greater: case Op.Less: case Op.Equal: case Op.Sign:
            case Op.ToFloat: case Op.IndexMask: case Op.GeluGrad:
                return new int?[n.Inputs.Length];
            case Op.Neg: return One(g.Unary(Op.Neg, dy));
            case Op.Exp: return One(g.Binary(Op.Mul, dy, y));
            case Op.Log: return One(g.Binary(Op.Div, dy, x!.Id));
            case Op.Sqrt: return One(g.Binary(Op.Div, g.Scale(dy, 0.5), y));
            case Op.Rsqrt: // d/dx x^-1/2 = -1/2 · y³
                return One(g.Binary(Op.Mul, dy, g.Scale(g.Binary(Op.Mul, g.Unary(Op.Square, y), y), -0.5)));
            case Op.Square: return One(g.Binary(Op.Mul, dy, g.Scale(x!.Id, 2)));
            case Op.Abs: return One(g.Binary(Op.Mul, dy, g.Unary(Op.Sign, x!.Id)));
            case Op.Tanh: return One(g.Binary(Op.Mul, dy, g.AddScalar(g.Scale(g.Unary(Op.Square, y), -1), 1)));
            case Op.Relu: return One(g.Binary(Op.Mul, dy, g.Binary(Op.Greater, x!.Id, g.Fill(0, Array.Empty<Sym>()))));
            case Op.Gelu: return One(g.Binary(Op.Mul, dy, g.Unary(Op.GeluGrad, x!.Id)));
            case Op.Sigmoid: return One(g.Binary(Op.Mul, dy, g.Binary(Op.Mul, y, g.AddScalar(g.Scale(y, -1), 1))));
            case Op.Scale: return One(g.Add(Op.Scale, new[] { dy }, n.Attr));
            case Op.AddScalar: return One(dy);
            case Op.Cast: return One(dy); // rounding is treated as the identity (straight-through), as autocast does
            case Op.PowScalar:
            {
                var p = n.A<ScalarAttr>().Value;
                return One(g.Binary(Op.Mul, dy, g.Add(Op.Scale, new[] { g.Add(Op.PowScalar, new[] { x!.Id }, new ScalarAttr(p - Scalar.Const(1))) }, new ScalarAttr(p))));
            }
            case Op.BroadcastTo: return One(g.SumTo(dy, x!.Shape));
            case Op.Add: return new int?[] { g.SumTo(dy, g[n.Inputs[0]].Shape), g.SumTo(dy, g[n.Inputs[1]].Shape) };
            case Op.Sub: return new int?[] { g.SumTo(dy, g[n.Inputs[0]].Shape), g.SumTo(g.Unary(Op.Neg, dy), g[n.Inputs[1]].Shape) };
            case Op.Mul:
                return new int?[] { g.SumTo(g.Binary(Op.Mul, dy, n.Inputs[1]), g[n.Inputs[0]].Shape), g.SumTo(g.Binary(Op.Mul, dy, n.Inputs[0]), g[n.Inputs[1]].Shape) };
            case Op.Div:
            {
                var da = g.Binary(Op.Div, dy, n.Inputs[1]);
                var db = g.Unary(Op.Neg, g.Binary(Op.Mul, da, y)); // -dy·a/b² = -(dy/b)·y
                return new int?[] { g.SumTo(da, g[n.Inputs[0]].Shape), g.SumTo(db, g[n.Inputs[1]].Shape) };
            }
            case Op.Maximum: case Op.Minimum:
            {
                // Ties send the gradient to the second operand.
                var mask = g.Binary(n.Op == Op.Maximum ? Op.Greater : Op.Less, n.Inputs[0], n.Inputs[1]);
                var da = g.Binary(Op.Mul, dy, mask);
                var db = g.Binary(Op.Sub, dy, da);
                return new int?[] { g.SumTo(da, g[n.Inputs[0]].Shape), g.SumTo(db, g[n.Inputs[1]].Shape) };
            }
            case Op.Where:
            {
                var zero = g.Fill(0, Array.Empty<Sym>());
                var da = g.Add(Op.Where, new[] { n.Inputs[0], dy, zero });
                var db = g.Add(Op.Where, new[] { n.Inputs[0], zero, dy });
                return new int?[] { null, g.SumTo(da, g[n.Inputs[1]].Shape), g.SumTo(db, g[n.Inputs[2]].Shape) };
            }
            case Op.ReduceSum:
            {
                var r = n.A<ReduceAttr>();
                var keep = r.KeepDim ? dy : g.Reshape(dy, KeepShape(x!.Shape, r.Axis));
                return One(g.BroadcastTo(keep, x!.Shape));
            }
            case Op.ReduceMax:
            {
                var r = n.A<ReduceAttr>();
                var yk = r.KeepDim ? y : g.Reshape(y, KeepShape(x!.Shape, r.Axis));
                var dyk = r.KeepDim ? dy : g.Reshape(dy, KeepShape(x!.Shape, r.Axis));
                var mask = g.Binary(Op.Equal, x!.Id, yk);
                return One(g.Binary(Op.Mul, mask, dyk));
            }
            case Op.SumTo: return One(g.BroadcastTo(dy, x!.Shape));
            case Op.MatMul: return MatMulVjp(g, n, dy);
            case Op.Reshape: return One(g.Reshape(dy, x!.Shape));
            case Op.Permute:
            {
                var order = n.A<PermuteAttr>().Order;
                var inv = new int[order.Count];
                for (int i = 0; i < inv.Length; i++) inv[order[i]] = i;
                return One(g.Add(Op.Permute, new[] { dy }, new PermuteAttr(inv)));
            }
            case Op.Slice:
            {
                var (axis, start, end) = n.A<SliceAttr>();
                return One(g.Add(Op.Pad, new[] { dy }, new PadAttr(axis, start, x!.Shape[axis] - end)));
            }
            case Op.Pad:
            {
                var (axis, before, _) = n.A<PadAttr>();
                return One(g.Add(Op.Slice, new[] { dy }, new SliceAttr(axis, before, before + x!.Shape[axis])));
            }
            case Op.Concat:
            {
                int axis = n.A<AxisAttr>().Axis; var start = Sym.Zero;
                var result = new int?[n.Inputs.Length];
                for (int i = 0; i < n.Inputs.Length; i++)
                {
                    var len = g[n.Inputs[i]].Shape[axis];
                    result[i] = g.Add(Op.Slice, new[] { dy }, new SliceAttr(axis, start, start + len));
                    start += len;
                }
                return result;
            }
            case Op.Gather:
                return new int?[] { g.Add(Op.GatherGrad, new[] { dy, n.Inputs[1] }, new GatherGradAttr(x!.Shape[0])), null };
            case Op.PickLast:
                return new int?[] { g.Add(Op.PickLastGrad, new[] { dy, n.Inputs[1] }, new PickGradAttr(n.A<IgnoreAttr>().Ignore, x!.Shape[x.Rank - 1])), null };
            case Op.GatherGrad: case Op.PickLastGrad:
                throw new ShapeException("KILN2002", $"second-order gradients through {n.Op} are not supported");
            default:
                throw new ShapeException("KILN2001", $"op {n.Op} has no gradient rule");
        }
    }

    private static int?[] One(int v) => new int?[] { v };

    private static Sym[] KeepShape(Sym[] x, int axis) => x.Select((d, i) => i == axis ? Sym.One : d).ToArray();

    private static int?[] MatMulVjp(GraphBuilder g, Node n, int dy)
    {
        var a = g[n.Inputs[0]]; var b = g[n.Inputs[1]];
        var (ta, tb) = n.A<MatMulAttr>();
        int da, db;
        // dA: stored layout of A.
        da = !ta ? g.MatMul(dy, b.Id, false, !tb) : g.MatMul(b.Id, dy, tb, true);
        // dB for a rank-2 B shared over a batched A: fold the batch into one GEMM instead of summing
        // per-batch products, so the weight gradient is a single [K, N] accumulation.
        if (b.Rank == 2 && a.Rank > 2 && !ta)
        {
            var k = a.Shape[a.Rank - 1]; var nn = n.Shape[n.Rank - 1];
            var a2 = g.Reshape(a.Id, new[] { Sym.Div(Shapes.Numel(a.Shape), k), k });
            var dy2 = g.Reshape(dy, new[] { Sym.Div(Shapes.Numel(n.Shape), nn), nn });
            db = !tb ? g.MatMul(a2, dy2, true, false) : g.MatMul(dy2, a2, true, false);
        }
        else
            db = !tb ? g.MatMul(a.Id, dy, !ta, false) : g.MatMul(dy, a.Id, true, ta);
        return new int?[] { g.SumTo(da, a.Shape), g.SumTo(db, b.Shape) };
    }

    // ───────────────────────────── CPU lowering (elementwise) ─────────────────────────────

    /// <summary>
    /// C# for one SIMD lane group (<c>Vector256&lt;float&gt;</c>) of an elementwise op; {0},{1},{2} are
    /// the operands and {s} the op's scalar as a float vector.
    /// </summary>
    public static string CpuVector(Op op) => op switch
    {
        Op.Neg => "(-{0})",
        Op.Exp => "V.Exp({0})",
        Op.Log => "V.Log({0})",
        Op.Sqrt => "V.Sqrt({0})",
        Op.Rsqrt => "V.Rsqrt({0})",
        Op.Square => "({0} * {0})",
        Op.Abs => "V.Abs({0})",
        Op.Sign => "V.Sign({0})",
        Op.Tanh => "V.Tanh({0})",
        Op.Relu => "V.Relu({0})",
        Op.Gelu => "V.Gelu({0})",
        Op.GeluGrad => "V.GeluGrad({0})",
        Op.Sigmoid => "V.Sigmoid({0})",
        Op.Scale => "({0} * {s})",
        Op.AddScalar => "({0} + {s})",
        Op.PowScalar => "V.Pow({0}, {s})",
        Op.StopGradient or Op.BroadcastTo or Op.Cast => "{0}",
        Op.Fill => "{s}",
        Op.Add => "({0} + {1})",
        Op.Sub => "({0} - {1})",
        Op.Mul => "({0} * {1})",
        Op.Div => "({0} / {1})",
        Op.Maximum => "V.Max({0}, {1})",
        Op.Minimum => "V.Min({0}, {1})",
        Op.Greater => "V.Greater({0}, {1})",
        Op.Less => "V.Less({0}, {1})",
        Op.Equal => "V.Equal({0}, {1})",
        Op.Where => "V.Where({0}, {1}, {2})",
        _ => throw new InvalidOperationException($"{op} is not elementwise"),
    };

    /// <summary>C# for one float element of an elementwise op (the loop tail).</summary>
    public static string CpuScalar(Op op) => op switch
    {
        Op.Neg => "(-{0})",
        Op.Exp => "S.Exp({0})",
        Op.Log => "S.Log({0})",
        Op.Sqrt => "S.Sqrt({0})",
        Op.Rsqrt => "S.Rsqrt({0})",
        Op.Square => "({0} * {0})",
        Op.Abs => "S.Abs({0})",
        Op.Sign => "S.Sign({0})",
        Op.Tanh => "S.Tanh({0})",
        Op.Relu => "S.Relu({0})",
        Op.Gelu => "S.Gelu({0})",
        Op.GeluGrad => "S.GeluGrad({0})",
        Op.Sigmoid => "S.Sigmoid({0})",
        Op.Scale => "({0} * {s})",
        Op.AddScalar => "({0} + {s})",
        Op.PowScalar => "S.Pow({0}, {s})",
        Op.StopGradient or Op.BroadcastTo or Op.Cast => "{0}",
        Op.Fill => "{s}",
        Op.Add => "({0} + {1})",
        Op.Sub => "({0} - {1})",
        Op.Mul => "({0} * {1})",
        Op.Div => "({0} / {1})",
        Op.Maximum => "S.Max({0}, {1})",
        Op.Minimum => "S.Min({0}, {1})",
        Op.Greater => "S.Greater({0}, {1})",
        Op.Less => "S.Less({0}, {1})",
        Op.Equal => "S.Equal({0}, {1})",
        Op.Where => "S.Where({0}, {1}, {2})",
        _ => throw new InvalidOperationException($"{op} is not elementwise"),
    };

    /// <summary>Float64 semantics of elementwise ops, shared by constant folding and documented for the reference.</summary>
    public static IReadOnlyList<Op> ElementwiseOps { get; } = Enum.GetValues(typeof(Op)).Cast<Op>().Where(IsFusible).ToArray();
}

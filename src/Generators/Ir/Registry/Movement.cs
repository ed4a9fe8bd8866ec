using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Emit;

namespace Kiln.Generators.Ir;

// Movement: ops that rearrange elements without arithmetic; they keep their input's dtype and precision.
internal static partial class OpRegistry
{
    private static IEnumerable<OpDef> MovementOps()
    {
        yield return new OpDef(Op.Reshape, OpKind.Movement, 1)
        {
            Shape = a =>
            {
                var from = Shapes.Numel(a.X.Shape); var to = Shapes.Numel(a.Declared!);
                ShapeRules.Unify(from, to, () => $"cannot reshape {Shapes.Format(a.X.Shape)} ({from} elements) to {Shapes.Format(a.Declared!)} ({to} elements)", "KILN1004", a.Require);
                return (a.X.DType, a.Declared!);
            },
            Grad = (g, n, dy) => One(g.Reshape(dy, g[n.Inputs[0]].Shape)),
            Precision = PrecisionPolicy.LikeInputs, PassesAdoption = true,
            Fold = (x, n) => x,
            Lowering = new NoKernel("a reshape is a view of its input (row-major, same elements)"),
        };

        yield return new OpDef(Op.Permute, OpKind.Movement, 1)
        {
            Attr = typeof(PermuteAttr),
            Shape = a =>
            {
                var x = a.X.Shape;
                var order = a.A<PermuteAttr>().Order;
                if (order.Count != x.Length || order.OrderBy(i => i).Where((v, i) => v != i).Any())
                    throw new ShapeException("KILN1003", $"Permute order ({string.Join(", ", order)}) is not a permutation of the {x.Length} axes of {Shapes.Format(x)}");
                return (a.X.DType, order.Select(i => x[i]).ToArray());
            },
            Grad = (g, n, dy) =>
            {
                var order = n.A<PermuteAttr>().Order;
                var inv = new int[order.Count];
                for (int i = 0; i < inv.Length; i++) inv[order[i]] = i;
                return One(g.Add(Op.Permute, new[] { dy }, new PermuteAttr(inv)));
            },
            Precision = PrecisionPolicy.LikeInputs,
            Lowering = new KernelLowering(
                c => c.Call("Permute", c.In(0), c.Out, "new long[] { " + string.Join(", ", c.X.Shape.Select(c.S)) + " }",
                    "new int[] { " + string.Join(", ", c.Node.A<PermuteAttr>().Order) + " }"),
                CudaPermute),
        };

        yield return new OpDef(Op.Slice, OpKind.Movement, 1)
        {
            Attr = typeof(SliceAttr),
            Shape = a =>
            {
                var x = a.X.Shape;
                var (axis, start, end) = a.A<SliceAttr>();
                if (axis < 0 || axis >= x.Length) throw new ShapeException("KILN1003", $"Slice axis {axis} is out of range for {Shapes.Format(x)}");
                var len = end - start;
                if (Sym.Compare(end, start) == SymCompare.Less || (len.TryConst(out var l) && l <= 0))
                    throw new ShapeException("KILN1006", $"Slice [{start}, {end}) along axis {axis} is empty or reversed");
                if (Sym.Compare(end, x[axis]) == SymCompare.Greater)
                    throw new ShapeException("KILN1006", $"Slice end {end} is past the size {x[axis]} of axis {axis} of {Shapes.Format(x)}");
                // end ≤ size as an equality the program can check: ⌊end / (size + 1)⌋ = 0 (both are non-negative).
                if (Sym.Compare(end, x[axis]) == SymCompare.Unknown)
                    a.Require(Sym.Div(end, x[axis] + Sym.One), Sym.Zero, $"Slice end {end} must not exceed {x[axis]}");
                return (a.X.DType, x.Select((d, i) => i == axis ? len : d).ToArray());
            },
            Grad = (g, n, dy) =>
            {
                var (axis, start, end) = n.A<SliceAttr>();
                return One(g.Add(Op.Pad, new[] { dy }, new PadAttr(axis, start, g[n.Inputs[0]].Shape[axis] - end)));
            },
            Precision = PrecisionPolicy.LikeInputs,
            Lowering = new KernelLowering(
                c =>
                {
                    var x = c.X; var (axis, start, _) = c.Node.A<SliceAttr>();
                    c.Call("SliceAxis", c.In(0), c.Out, c.N(x.Shape.Take(axis)), c.S(x.Shape[axis]), c.S(start), c.S(c.Node.Shape[axis]), c.N(x.Shape.Skip(axis + 1)));
                },
                c => CudaSliceOrPad(c, slice: true)),
        };

        yield return new OpDef(Op.Pad, OpKind.Movement, 1)
        {
            Attr = typeof(PadAttr),
            Shape = a =>
            {
                var x = a.X.Shape;
                var (axis, before, after) = a.A<PadAttr>();
                return (DType.F32, x.Select((d, i) => i == axis ? d + before + after : d).ToArray());
            },
            Grad = (g, n, dy) =>
            {
                var (axis, before, _) = n.A<PadAttr>();
                return One(g.Add(Op.Slice, new[] { dy }, new SliceAttr(axis, before, before + g[n.Inputs[0]].Shape[axis])));
            },
            Precision = PrecisionPolicy.LikeInputs,
            Lowering = new KernelLowering(
                c =>
                {
                    var x = c.X; var (axis, before, _) = c.Node.A<PadAttr>();
                    c.Call("PadAxis", c.In(0), c.Out, c.N(x.Shape.Take(axis)), c.S(x.Shape[axis]), c.S(before), c.S(c.Node.Shape[axis]), c.N(x.Shape.Skip(axis + 1)));
                },
                c => CudaSliceOrPad(c, slice: false)),
        };

        yield return new OpDef(Op.Concat, OpKind.Movement, -1)
        {
            Attr = typeof(AxisAttr),
            Shape = a =>
            {
                int axis = a.A<AxisAttr>().Axis; var first = a.X.Shape;
                if (axis < 0 || axis >= first.Length) throw new ShapeException("KILN1003", $"Concat axis {axis} is out of range for {Shapes.Format(first)}");
                var total = Sym.Zero;
                foreach (var part in a.Inputs)
                {
                    if (part.Rank != first.Length) throw new ShapeException("KILN1003", $"Concat parts have different ranks: {Shapes.Format(first)} and {Shapes.Format(part.Shape)}");
                    if (part.DType != a.X.DType) throw new ShapeException("KILN1007", "Concat parts have different element types");
                    for (int i = 0; i < first.Length; i++)
                        if (i != axis) ShapeRules.Unify(first[i], part.Shape[i], () => $"Concat parts differ on axis {i}: {Shapes.Format(first)} vs {Shapes.Format(part.Shape)}", "KILN1002", a.Require);
                    total += part.Shape[axis];
                }
                return (a.X.DType, first.Select((d, i) => i == axis ? total : d).ToArray());
            },
            Grad = (g, n, dy) =>
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
            },
            Precision = PrecisionPolicy.LikeInputs,
            Lowering = new KernelLowering(
                c =>
                {
                    var n = c.Node; int axis = n.A<AxisAttr>().Axis;
                    var start = Sym.Zero;
                    for (int i = 0; i < n.Inputs.Length; i++)
                    {
                        var part = c.Input(i);
                        c.Call("CopyIntoAxis", c.In(i), c.Out, c.N(n.Shape.Take(axis)), c.S(part.Shape[axis]), c.S(n.Shape[axis]), c.S(start), c.N(n.Shape.Skip(axis + 1)));
                        start += part.Shape[axis];
                    }
                },
                CudaConcat),
        };
    }

    private static void CudaPermute(CudaKernelContext c)
    {
        var n = c.Node; var x = c.X;
        int r = n.Rank;
        var order = n.A<PermuteAttr>().Order;
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, x.Id, "in0");
        for (int d = 0; d < r; d++) c.SizeParam(ps, "d" + d, n.Shape[d]);
        // Input element stride of the input axis each output axis reads.
        for (int d = 0; d < r; d++) c.SizeParam(ps, "s" + d, c.Numel(x.Shape.Skip(order[d] + 1)));
        c.Kernel("permute", ps, CudaGrid.Elements, c.Numel(n.Shape), () =>
        {
            c.Line($"    // d = output dims, s = input element stride of each output axis (order {string.Join(",", order)}).");
            c.Line($"    KILN_FOR_ELEMENTS(i, {(r == 0 ? "1" : string.Join(" * ", Enumerable.Range(0, r).Select(d => "d" + d)))})");
            c.Line("    {");
            c.Line(r == 0 ? "        kiln_i64 src = 0;" : "        kiln_i64 rem = i, src = 0;");
            for (int d = r - 1; d >= 0; d--) c.Line($"        src += (rem % d{d}) * s{d}; rem /= d{d};");
            c.Line("        out[i] = in0[src];");
            c.Line("    }");
        });
    }

    private static void CudaSliceOrPad(CudaKernelContext c, bool slice)
    {
        var n = c.Node; var x = c.X;
        var (axis, first) = slice ? (n.A<SliceAttr>().Axis, n.A<SliceAttr>().Start) : (n.A<PadAttr>().Axis, n.A<PadAttr>().Before);
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, x.Id, "in0");
        c.SizeParam(ps, "outer", c.Numel(x.Shape.Take(axis))); c.SizeParam(ps, "srcLen", x.Shape[axis]);
        c.SizeParam(ps, slice ? "start" : "before", first); c.SizeParam(ps, "dstLen", n.Shape[axis]); c.SizeParam(ps, "inner", c.Numel(x.Shape.Skip(axis + 1)));
        // Movement keeps the storage type (a pad of a low tensor is low), except that a mixed input is converted.
        string Move(string index) => c.Ty(x.Id) == c.Ty(n.Id) ? $"in0[{index}]" : c.Ty(n.Id) == "kiln_low" ? $"kiln_float_to_low({c.Load(x.Id, "in0", index)})" : c.Load(x.Id, "in0", index);
        string Zero() => c.Ty(n.Id) == "kiln_low" ? "kiln_float_to_low(0.0f)" : c.Ty(n.Id) == "int" ? "0" : "0.0f";
        c.Kernel(slice ? "slice" : "pad", ps, CudaGrid.Elements, c.Numel(n.Shape), () =>
        {
            c.Line("    KILN_FOR_ELEMENTS(i, outer * dstLen * inner)");
            c.Line("    {");
            c.Line("        kiln_i64 k = i % inner, j = (i / inner) % dstLen, o = i / (inner * dstLen);");
            if (slice) c.Line($"        out[i] = {Move("(o * srcLen + start + j) * inner + k")};");
            else
            {
                c.Line("        kiln_i64 sj = j - before;");
                c.Line($"        out[i] = (sj >= 0 && sj < srcLen) ? {Move("(o * srcLen + sj) * inner + k")} : {Zero()};");
            }
            c.Line("    }");
        });
    }

    private static void CudaConcat(CudaKernelContext c)
    {
        var n = c.Node;
        int parts = n.Inputs.Length, axis = n.A<AxisAttr>().Axis;
        var ps = c.Params();
        c.OutParam(ps);
        for (int p = 0; p < parts; p++) c.InParam(ps, n.Inputs[p], "in" + p);
        c.SizeParam(ps, "outer", c.Numel(n.Shape.Take(axis))); c.SizeParam(ps, "dstLen", n.Shape[axis]); c.SizeParam(ps, "inner", c.Numel(n.Shape.Skip(axis + 1)));
        for (int p = 0; p < parts; p++) c.SizeParam(ps, "len" + p, c.Input(p).Shape[axis]);
        string Move(int p, string index)
        {
            var id = n.Inputs[p];
            return c.Ty(id) == c.Ty(n.Id) ? $"in{p}[{index}]" : c.Ty(n.Id) == "kiln_low" ? $"kiln_float_to_low({c.Load(id, "in" + p, index)})" : c.Load(id, "in" + p, index);
        }
        c.Kernel("concat", ps, CudaGrid.Elements, c.Numel(n.Shape), () =>
        {
            c.Line("    KILN_FOR_ELEMENTS(i, outer * dstLen * inner)");
            c.Line("    {");
            c.Line("        kiln_i64 k = i % inner, j = (i / inner) % dstLen, o = i / (inner * dstLen);");
            c.Line("        kiln_i64 s0 = 0" + string.Concat(Enumerable.Range(1, parts - 1).Select(p => $", s{p} = s{p - 1} + len{p - 1}")) + ";");
            for (int p = 0; p < parts; p++)
            {
                var test = p == parts - 1 ? (parts == 1 ? "" : "else ") : (p == 0 ? $"if (j < s{p + 1}) " : $"else if (j < s{p + 1}) ");
                c.Line($"        {test}out[i] = {Move(p, $"(o * len{p} + j - s{p}) * inner + k")};");
            }
            c.Line("    }");
        });
    }
}

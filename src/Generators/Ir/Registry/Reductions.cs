using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Emit;

namespace Kiln.Generators.Ir;

// Reductions: fp32 results whatever their inputs (autocast's policy), one kernel each.
internal static partial class OpRegistry
{
    private static IEnumerable<OpDef> ReductionOps()
    {
        foreach (var op in new[] { Op.ReduceSum, Op.ReduceMax })
        {
            bool sum = op == Op.ReduceSum;
            yield return new OpDef(op, OpKind.Reduction, 1)
            {
                Attr = typeof(ReduceAttr),
                Shape = a =>
                {
                    ShapeRules.RequireFloat(a.X, sum ? "Sum" : "Max");
                    var x = a.X.Shape;
                    var (axis, keep) = a.A<ReduceAttr>();
                    if (axis < 0 || axis >= x.Length) throw new ShapeException("KILN1003", $"axis {axis} is out of range for a rank-{x.Length} tensor {Shapes.Format(x)}");
                    return (DType.F32, keep ? ShapeRules.KeepAxis(x, axis) : x.Where((_, i) => i != axis).ToArray());
                },
                Grad = sum
                    ? (g, n, dy) =>
                    {
                        var x = g[n.Inputs[0]]; var r = n.A<ReduceAttr>();
                        var keep = r.KeepDim ? dy : g.Reshape(dy, ShapeRules.KeepAxis(x.Shape, r.Axis));
                        return One(g.BroadcastTo(keep, x.Shape));
                    }
                    : (g, n, dy) =>
                    {
                        var x = g[n.Inputs[0]]; var r = n.A<ReduceAttr>();
                        var yk = r.KeepDim ? n.Id : g.Reshape(n.Id, ShapeRules.KeepAxis(x.Shape, r.Axis));
                        var dyk = r.KeepDim ? dy : g.Reshape(dy, ShapeRules.KeepAxis(x.Shape, r.Axis));
                        return One(g.Binary(Op.Mul, g.Binary(Op.Equal, x.Id, yk), dyk));
                    },
                Lowering = new KernelLowering(
                    c =>
                    {
                        var x = c.X; int axis = c.Node.A<ReduceAttr>().Axis;
                        c.Call(sum ? "ReduceSum" : "ReduceMax", c.In(0), c.Out, c.N(x.Shape.Take(axis)), c.S(x.Shape[axis]), c.N(x.Shape.Skip(axis + 1)), sum ? c.Acc : null);
                    },
                    c => CudaReduce(c, sum), CanAccumulate: sum),
            };
        }

        yield return new OpDef(Op.SumTo, OpKind.Reduction, 1)
        {
            Shape = a =>
            {
                ShapeRules.Broadcast(a.Declared!, a.X.Shape, "SumTo", a.Require);
                return (DType.F32, a.Declared!);
            },
            Grad = (g, n, dy) => One(g.BroadcastTo(dy, g[n.Inputs[0]].Shape)),
            Lowering = new KernelLowering(
                c =>
                {
                    var (dims, reduced) = KernelPlans.SumToPattern(c.X.Shape, c.Node.Shape);
                    c.Call("SumTo", c.In(0), c.Out, "new long[] { " + string.Join(", ", dims.Select(c.S)) + " }",
                        "new bool[] { " + string.Join(", ", reduced.Select(r => r ? "true" : "false")) + " }", c.Acc);
                },
                CudaSumTo, CanAccumulate: true),
        };
    }

    private static void CudaReduce(CudaKernelContext c, bool sum)
    {
        var n = c.Node; var x = c.X;
        int axis = n.A<ReduceAttr>().Axis;
        var outer = c.Numel(x.Shape.Take(axis)); var inner = c.Numel(x.Shape.Skip(axis + 1));
        var what = sum ? "reducesum" : "reducemax";
        if (!inner.Equals(Sym.One))
        {
            c.ColumnReduce(x.Id, outer, x.Shape[axis], inner, sum, what);
            return;
        }
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, x.Id, "in0");
        c.SizeParam(ps, "outer", outer); c.SizeParam(ps, "len", x.Shape[axis]); c.SizeParam(ps, "inner", inner);
        c.Kernel(what, ps, CudaGrid.Warps, outer * inner, () =>
        {
            c.Line("    // One warp per output element; lanes stride along the reduced axis.");
            c.Line("    KILN_FOR_WARPS(row, outer * inner)");
            c.Line("    {");
            c.Line("        kiln_i64 o = row / inner, k = row % inner;");
            c.Line($"        const {c.Ty(x.Id)}* x = in0 + o * len * inner + k;");
            c.Line($"        float acc = {(sum ? "0.0f" : "kiln_NegInf()")};");
            var item = c.Load(x.Id, "x", "j * inner");
            c.Line($"        for (kiln_i64 j = threadIdx.x % KILN_WARP; j < len; j += KILN_WARP) acc = {(sum ? $"acc + {item}" : $"fmaxf(acc, {item})")};");
            c.Line($"        acc = {(sum ? "kiln_warp_sum(acc)" : "kiln_warp_max(acc)")};");
            c.Line($"        if (threadIdx.x % KILN_WARP == 0) {c.Store(n.Id, "row", "acc")}");
            c.Line("    }");
        });
    }

    private static void CudaSumTo(CudaKernelContext c)
    {
        var n = c.Node; var x = c.X;
        var (dimSyms, runs) = KernelPlans.SumToPattern(x.Shape, n.Shape);
        int m = runs.Count;
        // Summing leading rows into trailing columns reads across rows: the column kernel keeps loads coalesced.
        if (m == 2 && runs[0] && !runs[1]) { c.ColumnReduce(x.Id, Sym.One, dimSyms[0], dimSyms[1], true, "sumto"); return; }
        if (m == 3 && !runs[0] && runs[1] && !runs[2]) { c.ColumnReduce(x.Id, dimSyms[0], dimSyms[1], dimSyms[2], true, "sumto"); return; }
        var dims = Enumerable.Range(0, m).Select(d => "d" + d).ToArray();
        string Stride(int d) => d == m - 1 ? "1" : string.Join(" * ", dims.Skip(d + 1));
        var kept = Enumerable.Range(0, m).Where(d => !runs[d]).ToList();
        var summed = Enumerable.Range(0, m).Where(d => runs[d]).ToList();
        string Prod(List<int> ds) => ds.Count == 0 ? "1" : string.Join(" * ", ds.Select(d => "d" + d));
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, x.Id, "in0");
        for (int d = 0; d < m; d++) c.SizeParam(ps, dims[d], dimSyms[d]);
        var rows = Shapes.Numel(kept.Select(d => dimSyms[d]).ToList());
        c.Kernel("sumto", ps, CudaGrid.Warps, rows, () =>
        {
            c.Line($"    // Collapsed dims d0..d{m - 1}; summed: {(summed.Count == 0 ? "none" : string.Join(", ", summed.Select(d => "d" + d)))}. One warp per output element.");
            c.Line($"    KILN_FOR_WARPS(row, {Prod(kept)})");
            c.Line("    {");
            // (No index arithmetic when every axis is summed: NVRTC warns about an unused variable.)
            c.Line(kept.Count == 0 ? "        kiln_i64 base = 0;" : "        kiln_i64 rem = row, base = 0;");
            for (int i = kept.Count - 1; i >= 0; i--) c.Line($"        base += (rem % d{kept[i]}) * ({Stride(kept[i])}); rem /= d{kept[i]};");
            c.Line("        float acc = 0.0f;");
            c.Line($"        for (kiln_i64 t = threadIdx.x % KILN_WARP; t < {Prod(summed)}; t += KILN_WARP)");
            c.Line("        {");
            c.Line(summed.Count == 0 ? "            kiln_i64 src = base;" : "            kiln_i64 r = t, src = base;");
            for (int i = summed.Count - 1; i >= 0; i--) c.Line($"            src += (r % d{summed[i]}) * ({Stride(summed[i])}); r /= d{summed[i]};");
            c.Line($"            acc += {c.Load(x.Id, "in0", "src")};");
            c.Line("        }");
            c.Line("        acc = kiln_warp_sum(acc);");
            c.Line($"        if (threadIdx.x % KILN_WARP == 0) {c.Store(n.Id, "row", "acc")}");
            c.Line("    }");
        });
    }
}

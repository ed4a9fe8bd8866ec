using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Emit;

namespace Kiln.Generators.Ir;

// Indexing: ops that read or scatter by integer indices, and the integer → float conversions.
internal static partial class OpRegistry
{
    private static GradRule SecondOrder => (g, n, dy) => throw new ShapeException("KILN2002", $"second-order gradients through {n.Op} are not supported");

    private static IEnumerable<OpDef> IndexingOps()
    {
        yield return new OpDef(Op.ToFloat, OpKind.Indexing, 1)
        {
            Dsl = "ToFloat",
            Shape = a => { ShapeRules.RequireInt(a.X, "ToFloat"); return (DType.F32, a.X.Shape); },
            Lowering = new KernelLowering(
                c => c.Call("ToFloat", c.In(0), c.N(c.Node.Shape), c.Out),
                c => SimpleElementKernel(c, "tofloat", "float v = (float)in0[i];")),
        };

        yield return new OpDef(Op.IndexMask, OpKind.Indexing, 1)
        {
            Attr = typeof(IgnoreAttr),
            Shape = a => { ShapeRules.RequireInt(a.X, "an index mask"); return (DType.F32, a.X.Shape); },
            Lowering = new KernelLowering(
                c => c.Call("IndexMask", c.In(0), c.N(c.Node.Shape), I(c.Node.A<IgnoreAttr>().Ignore), c.Out),
                c => SimpleElementKernel(c, "indexmask", $"float v = in0[i] != {I(c.Node.A<IgnoreAttr>().Ignore)} ? 1.0f : 0.0f;")),
        };

        yield return new OpDef(Op.Gather, OpKind.Indexing, 2)
        {
            Dsl = "Gather",
            Shape = a =>
            {
                ShapeRules.RequireFloat(a.Inputs[0], "Gather (the table)");
                ShapeRules.RequireInt(a.Inputs[1], "Gather (the indices)");
                if (a.Inputs[0].Rank != 2) throw new ShapeException("KILN1003", $"Gather needs a rank-2 table [N, D], got {Shapes.Format(a.Inputs[0].Shape)}");
                // Positions 0..n-1 (Ops.Arange(n)) looked up in a table of fewer rows: an error when both are known, else checked.
                if (a.Inputs[1].Op == Op.Arange)
                {
                    Sym n = a.Inputs[1].Shape[0], rows = a.Inputs[0].Shape[0];
                    var message = $"Ops.Arange({n}) looks up rows 0 to {n - Sym.One} of a table with {rows} rows";
                    switch (Sym.Compare(n, rows))
                    {
                        case SymCompare.Greater: throw new ShapeException("KILN1013", message + "; make the table larger or the range shorter");
                        case SymCompare.Unknown: a.Require(Sym.Div(n, rows + Sym.One), Sym.Zero, message); break;
                    }
                }
                return (DType.F32, a.Inputs[1].Shape.Concat(new[] { a.Inputs[0].Shape[1] }).ToArray());
            },
            Grad = (g, n, dy) => new int?[] { g.Add(Op.GatherGrad, new[] { dy, n.Inputs[1] }, new GatherGradAttr(g[n.Inputs[0]].Shape[0])), null },
            Lowering = new KernelLowering(
                c => c.Call("Gather", c.In(0), c.S(c.X.Shape[0]), c.S(c.X.Shape[1]), c.In(1), c.N(c.Input(1).Shape), c.Out),
                CudaGather),
        };

        yield return new OpDef(Op.GatherGrad, OpKind.Indexing, 2)
        {
            Attr = typeof(GatherGradAttr),
            Shape = a => (DType.F32, new[] { a.A<GatherGradAttr>().Rows, a.X.Shape[a.X.Rank - 1] }),
            Grad = SecondOrder,
            Lowering = new KernelLowering(
                c => c.Call("GatherGrad", c.In(0), c.In(1), c.N(c.Input(1).Shape), c.S(c.Node.Shape[0]), c.S(c.Node.Shape[1]), c.Out, c.Acc),
                CudaGatherGrad, CanAccumulate: true),
        };

        yield return new OpDef(Op.PickLast, OpKind.Indexing, 2)
        {
            Attr = typeof(IgnoreAttr),
            Shape = a =>
            {
                ShapeRules.RequireFloat(a.Inputs[0], "CrossEntropy (the logits)");
                ShapeRules.RequireInt(a.Inputs[1], "CrossEntropy (the targets)");
                var x = a.Inputs[0].Shape; var t = a.Inputs[1].Shape;
                if (x.Length != t.Length + 1)
                    throw new ShapeException("KILN1003", $"CrossEntropy needs logits [..., C] and targets [...] with one dimension less; got {Shapes.Format(x)} and {Shapes.Format(t)}");
                for (int i = 0; i < t.Length; i++)
                    ShapeRules.Unify(x[i], t[i], () => $"CrossEntropy logits {Shapes.Format(x)} and targets {Shapes.Format(t)} differ on axis {i}", "KILN1002", a.Require);
                return (DType.F32, t);
            },
            Grad = (g, n, dy) =>
            {
                var x = g[n.Inputs[0]];
                return new int?[] { g.Add(Op.PickLastGrad, new[] { dy, n.Inputs[1] }, new PickGradAttr(n.A<IgnoreAttr>().Ignore, x.Shape[x.Rank - 1])), null };
            },
            Lowering = new KernelLowering(
                c => c.Call("PickLast", c.In(0), c.In(1), c.N(c.Node.Shape), c.S(c.X.Shape[c.X.Rank - 1]), I(c.Node.A<IgnoreAttr>().Ignore), c.Out),
                CudaPickLast),
        };

        yield return new OpDef(Op.PickLastGrad, OpKind.Indexing, 2)
        {
            Attr = typeof(PickGradAttr),
            Shape = a => (DType.F32, a.X.Shape.Concat(new[] { a.A<PickGradAttr>().Classes }).ToArray()),
            Grad = SecondOrder,
            Lowering = new KernelLowering(
                c => c.Call("PickLastGrad", c.In(0), c.In(1), c.N(c.X.Shape), c.S(c.Node.Shape[c.Node.Rank - 1]), I(c.Node.A<PickGradAttr>().Ignore), c.Out),
                CudaPickLastGrad),
        };
    }

    private static string I(long v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A one-input kernel computing <c>v</c> per element with <paramref name="statement"/> and storing it.</summary>
    private static void SimpleElementKernel(CudaKernelContext c, string what, string statement)
    {
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, c.X.Id, "in0"); c.SizeParam(ps, "count", c.Numel(c.Node.Shape));
        c.Kernel(what, ps, CudaGrid.Elements, c.Numel(c.Node.Shape), () =>
            c.Line($"    KILN_FOR_ELEMENTS(i, count) {{ {statement} {c.Store(c.Node.Id, "i", "v")} }}"));
    }

    private static void CudaGather(CudaKernelContext c)
    {
        var n = c.Node; var x = c.X; var idx = c.Input(1);
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, x.Id, "in0"); c.InParam(ps, idx.Id, "in1");
        c.SizeParam(ps, "rows", x.Shape[0]); c.SizeParam(ps, "dim", x.Shape[1]); c.SizeParam(ps, "count", c.Numel(idx.Shape));
        c.Kernel("gather", ps, CudaGrid.Elements, c.Numel(n.Shape), () =>
        {
            c.Line("    // An index outside the table reads zeros; the host validates ids before the step.");
            c.Line("    KILN_FOR_ELEMENTS(i, count * dim)");
            c.Line("    {");
            c.Line("        kiln_i64 t = i / dim;");
            c.Line("        int r = in1[t];");
            c.Line($"        float v = (r >= 0 && r < rows) ? {c.Load(x.Id, "in0", "(kiln_i64)r * dim + i % dim")} : 0.0f;");
            c.Line($"        {c.Store(n.Id, "i", "v")}");
            c.Line("    }");
        });
    }

    private static void CudaGatherGrad(CudaKernelContext c)
    {
        var n = c.Node; var x = c.X; var idx = c.Input(1);
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, x.Id, "in0"); c.InParam(ps, idx.Id, "in1");
        c.SizeParam(ps, "rows", n.Shape[0]); c.SizeParam(ps, "dim", n.Shape[1]); c.SizeParam(ps, "count", c.Numel(idx.Shape));
        bool acc = c.Accumulate(n.Id);
        c.Kernel("gathergrad", ps, CudaGrid.Elements, c.Numel(x.Shape), () =>
        {
            c.Line(acc ? "    // Scatter-add into the gradient slab (accumulates)." : "    // Scatter-add: the host zeroes out [rows, dim] before the launch.");
            c.Line("    KILN_FOR_ELEMENTS(i, count * dim)");
            c.Line("    {");
            c.Line("        int r = in1[i / dim];");
            c.Line($"        if (r >= 0 && r < rows) atomicAdd(&out[(kiln_i64)r * dim + i % dim], {c.Load(x.Id, "in0", "i")});");
            c.Line("    }");
        }, zeroFirst: acc ? -1 : n.Id);
    }

    private static void CudaPickLast(CudaKernelContext c)
    {
        var n = c.Node; var x = c.X; var idx = c.Input(1);
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, x.Id, "in0"); c.InParam(ps, idx.Id, "in1");
        c.SizeParam(ps, "count", c.Numel(n.Shape)); c.SizeParam(ps, "classes", x.Shape[x.Rank - 1]);
        c.Kernel("picklast", ps, CudaGrid.Elements, c.Numel(n.Shape), () =>
        {
            c.Line("    KILN_FOR_ELEMENTS(i, count)");
            c.Line("    {");
            c.Line("        int t = in1[i];");
            c.Line($"        float v = (t != {I(n.A<IgnoreAttr>().Ignore)} && t >= 0 && t < classes) ? {c.Load(x.Id, "in0", "i * classes + t")} : 0.0f;");
            c.Line($"        {c.Store(n.Id, "i", "v")}");
            c.Line("    }");
        });
    }

    private static void CudaPickLastGrad(CudaKernelContext c)
    {
        var n = c.Node; var x = c.X; var idx = c.Input(1);
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, x.Id, "in0"); c.InParam(ps, idx.Id, "in1");
        c.SizeParam(ps, "count", c.Numel(x.Shape)); c.SizeParam(ps, "classes", n.Shape[n.Rank - 1]);
        c.Kernel("picklastgrad", ps, CudaGrid.Elements, c.Numel(n.Shape), () =>
        {
            c.Line("    KILN_FOR_ELEMENTS(i, count * classes)");
            c.Line("    {");
            c.Line("        kiln_i64 r = i / classes; int c = (int)(i % classes); int t = in1[r];");
            c.Line($"        float v = (t != {I(n.A<PickGradAttr>().Ignore)} && c == t) ? {c.Load(x.Id, "in0", "r")} : 0.0f;");
            c.Line($"        {c.Store(n.Id, "i", "v")}");
            c.Line("    }");
        });
    }
}

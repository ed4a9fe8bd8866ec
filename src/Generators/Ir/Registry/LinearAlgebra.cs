using System.Collections.Generic;
using System.Linq;

namespace Kiln.Generators.Ir;

// Matrix products: GEMMs on every backend (the runtime's blocked SIMD GEMM, cuBLASLt), never emitted kernels.
internal static partial class OpRegistry
{
    private static IEnumerable<OpDef> LinearAlgebraOps()
    {
        yield return new OpDef(Op.MatMul, OpKind.MatMul, 2)
        {
            Attr = typeof(MatMulAttr),
            Shape = a =>
            {
                var x = a.Inputs[0]; var y = a.Inputs[1];
                ShapeRules.RequireFloat(x, "MatMul"); ShapeRules.RequireFloat(y, "MatMul");
                if (x.Rank < 2 || y.Rank < 2)
                    throw new ShapeException("KILN1003", $"MatMul needs tensors of rank ≥ 2, got {Shapes.Format(x.Shape)} and {Shapes.Format(y.Shape)}; reshape a vector to [1, n] or [n, 1] first");
                var (ta, tb) = a.A<MatMulAttr>();
                var m = x.Shape[x.Rank - (ta ? 1 : 2)]; var k1 = x.Shape[x.Rank - (ta ? 2 : 1)];
                var k2 = y.Shape[y.Rank - (tb ? 1 : 2)]; var n = y.Shape[y.Rank - (tb ? 2 : 1)];
                ShapeRules.Unify(k1, k2, () => $"MatMul inner dimensions differ: {Shapes.Format(x.Shape)}{(ta ? "ᵀ" : "")} · {Shapes.Format(y.Shape)}{(tb ? "ᵀ" : "")} has {k1} vs {k2}", "KILN1001", a.Require);
                var batch = ShapeRules.Broadcast(x.Shape.Take(x.Rank - 2).ToArray(), y.Shape.Take(y.Rank - 2).ToArray(), "MatMul batch", a.Require);
                return (DType.F32, batch.Concat(new[] { m, n }).ToArray());
            },
            Grad = MatMulGrad,
            Precision = PrecisionPolicy.LowOperands,
            Lowering = new GemmLowering(),
        };
    }

    private static int?[] MatMulGrad(GraphBuilder g, Node n, int dy)
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
}

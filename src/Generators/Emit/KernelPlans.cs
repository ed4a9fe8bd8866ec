using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Emit;

/// <summary>
/// Backend-neutral plans of the kernels both emitters write: the collapsed iteration space of a fused elementwise
/// group, the GEMM call of a matmul and the dimension runs of a SumTo. The CPU and CUDA emitters only spell them.
/// </summary>
internal static class KernelPlans
{
    /// <summary>Collapses a SumTo into alternating kept/summed dimension runs (at least one run).</summary>
    public static (List<Sym> Dims, List<bool> Reduced) SumToPattern(Sym[] from, Sym[] to)
    {
        var dims = new List<Sym>(); var reduced = new List<bool>();
        int off = from.Length - to.Length;
        for (int d = 0; d < from.Length; d++)
        {
            if (from[d].Equals(Sym.One)) continue;
            bool r = d < off || to[d - off].Equals(Sym.One);
            if (reduced.Count > 0 && reduced[reduced.Count - 1] == r) dims[dims.Count - 1] *= from[d];
            else { dims.Add(from[d]); reduced.Add(r); }
        }
        if (dims.Count == 0) { dims.Add(Sym.One); reduced.Add(false); }
        return (dims, reduced);
    }
}

/// <summary>
/// The iteration space of a fused elementwise group: its tensor inputs, its uniform constants (fills passed as
/// scalars), its members' scalar operands, and the output dimensions collapsed wherever every input agrees on
/// broadcasting, with a broadcast flag per input and collapsed axis.
/// </summary>
internal sealed class ElementwisePlan
{
    public ElementwisePlan(Graph g, FusionGroup gr, IReadOnlyDictionary<int, FusionGroup> groupOfRoot)
    {
        Root = g[gr.Root];
        var outShape = Root.Shape;
        int r = outShape.Length;
        bool IsConst(int i) => groupOfRoot.TryGetValue(i, out var ig) && ig.Kind == GroupKind.Const;
        Inputs = gr.ExternalInputs.Where(i => !IsConst(i)).ToList();
        Consts = gr.ExternalInputs.Where(IsConst).ToList();
        Scalars = gr.Members.Where(m => g[m].ScalarParam is not null).ToList();

        var aligned = Inputs.Select(i => { var s = g[i].Shape; return Enumerable.Repeat(Sym.One, r - s.Length).Concat(s).ToArray(); }).ToList();
        var dims = new List<Sym>();
        var bc = Inputs.Select(_ => new List<bool>()).ToList();
        for (int d = 0; d < r; d++)
        {
            if (outShape[d].Equals(Sym.One)) continue;
            var flags = aligned.Select(s => s[d].Equals(Sym.One)).ToList();
            if (dims.Count > 0 && Enumerable.Range(0, Inputs.Count).All(k => bc[k][bc[k].Count - 1] == flags[k]))
                dims[dims.Count - 1] *= outShape[d];
            else
            {
                dims.Add(outShape[d]);
                for (int k = 0; k < Inputs.Count; k++) bc[k].Add(flags[k]);
            }
        }
        if (dims.Count == 0) { dims.Add(Sym.One); foreach (var f in bc) f.Add(true); }
        Dims = dims;
        Broadcast = bc;
    }

    public Node Root { get; }
    /// <summary>Tensor operands read from memory.</summary>
    public List<int> Inputs { get; }
    /// <summary>Uniform operands (constant fills) passed as float scalars.</summary>
    public List<int> Consts { get; }
    /// <summary>Members whose op has a scalar operand (Scale, AddScalar, PowScalar).</summary>
    public List<int> Scalars { get; }
    /// <summary>Collapsed output dimensions, outermost first.</summary>
    public List<Sym> Dims { get; }
    /// <summary>Broadcast[k][d]: input k is broadcast (stride 0) along collapsed axis d.</summary>
    public List<List<bool>> Broadcast { get; }
    public int Rank => Dims.Count;

    /// <summary>The element stride of input <paramref name="k"/> along collapsed axis <paramref name="d"/> (0 where it broadcasts).</summary>
    public Sym Stride(int k, int d) =>
        Broadcast[k][d] ? Sym.Zero : Shapes.Numel(Enumerable.Range(d + 1, Rank - d - 1).Where(e => !Broadcast[k][e]).Select(e => Dims[e]).ToList());
}

/// <summary>
/// The GEMM of a matmul node, as both backends call it: when B is a matrix and A is not transposed, A's batch
/// dimensions fold into M (one GEMM over all rows); otherwise a batched GEMM over the broadcast batch dimensions
/// with each operand's element stride per batch dimension (0 where it broadcasts).
/// </summary>
internal sealed class GemmPlan
{
    public GemmPlan(Graph g, Node n)
    {
        A = g[n.Inputs[0]]; B = g[n.Inputs[1]]; C = n;
        (TransA, TransB) = n.A<MatMulAttr>();
        M = n.Shape[n.Rank - 2]; N = n.Shape[n.Rank - 1];
        K = A.Shape[A.Rank - (TransA ? 2 : 1)];
        FoldsBatch = B.Rank == 2 && !TransA;
        Rows = Sym.Div(Shapes.Numel(A.Shape), K);
        Batch = n.Shape.Take(n.Rank - 2).ToArray();
    }

    public Node A { get; }
    public Node B { get; }
    public Node C { get; }
    public bool TransA { get; }
    public bool TransB { get; }
    public Sym M { get; }
    public Sym N { get; }
    public Sym K { get; }
    /// <summary>A's leading dimensions fold into the rows of one GEMM (B is a matrix, A not transposed).</summary>
    public bool FoldsBatch { get; }
    /// <summary>The rows of the folded GEMM (all of A's elements over K).</summary>
    public Sym Rows { get; }
    /// <summary>The broadcast batch dimensions of a batched GEMM.</summary>
    public Sym[] Batch { get; }

    /// <summary>The element stride of <paramref name="x"/> (A or B) along each batch dimension; null marks a broadcast (0).</summary>
    public Sym?[] Strides(Node x)
    {
        var xb = x.Shape.Take(x.Rank - 2).ToArray();
        var mat = x.Shape[x.Rank - 2] * x.Shape[x.Rank - 1];
        var strides = new Sym?[Batch.Length];
        for (int d = 0; d < Batch.Length; d++)
        {
            int xd = d - (Batch.Length - xb.Length);
            if (xd < 0 || (xb[xd].Equals(Sym.One) && !Batch[d].Equals(Sym.One))) continue;
            var stride = mat;
            for (int e = xd + 1; e < xb.Length; e++) stride *= xb[e];
            strides[d] = stride;
        }
        return strides;
    }
}

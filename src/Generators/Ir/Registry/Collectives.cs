using System.Collections.Generic;
using Kiln.Generators.Emit;

namespace Kiln.Generators.Ir;

// Collectives of tensor parallelism, Megatron's conjugate pair around a column-parallel then row-parallel layer:
// TensorReplicate (f) marks where a replicated activation enters the split layers: identity forward, and its gradient
// is the sum over the tensor ranks. TensorReduce (g) sums the row-parallel partial results over the tensor ranks; its
// gradient passes through. Without a tensor group (one rank) both are identities: TensorReplicate is a view, and
// TensorReduce works in place on its input's buffer where the memory plan can alias them (MemoryPlanner), so a model
// that declares them costs nothing on one device.
internal static partial class OpRegistry
{
    private static IEnumerable<OpDef> CollectiveOps()
    {
        yield return new OpDef(Op.TensorReplicate, OpKind.Collective, 1)
        {
            Dsl = "TensorReplicate",
            Shape = a => { ShapeRules.RequireFloat(a.X, "TensorReplicate"); return (a.X.DType, a.X.Shape); },
            Grad = (g, n, dy) => One(g.Add(Op.TensorReduce, new[] { dy })),
            Precision = PrecisionPolicy.LikeInputs,
            Lowering = new NoKernel("identity forward: a view of its input (its gradient is the all-reduce)"),
        };

        yield return new OpDef(Op.TensorReduce, OpKind.Collective, 1)
        {
            Dsl = "TensorReduce",
            Shape = a => { ShapeRules.RequireFloat(a.X, "TensorReduce"); return (a.X.DType, a.X.Shape); },
            Grad = (g, n, dy) => One(dy),
            Precision = PrecisionPolicy.LikeInputs,
            Lowering = new KernelLowering(
                c =>
                {
                    // In place when the memory plan aliased the result to its input (the program then copies nothing).
                    c.Line($"TensorReduceInto({c.In(0)}, {c.Out}, {c.N(c.Node.Shape)}, {Site(c.Node)});");
                },
                // The GPU path has no tensor group yet (NCCL is not bound; the program refuses one): the identity.
                c => CopyKernel(c, "tensorreduce")),
        };

        // Pipeline stages: the repeated blocks' input and output cross stage boundaries (point-to-point on the pipeline
        // group). Each is a copy on one stage (and on the GPU, which refuses a pipeline group).
        foreach (var (op, grad, method, what) in new[]
        {
            (Op.StageInput, (Op?)Op.StageInputGrad, "StageInputInto", "stageinput"),
            (Op.StageInputGrad, null, "StageInputGradInto", "stageinputgrad"),
            (Op.StageOutput, Op.StageOutputGrad, "StageOutputInto", "stageoutput"),
            (Op.StageOutputGrad, null, "StageOutputGradInto", "stageoutputgrad"),
        })
        {
            var gradOp = grad;
            var call = method;
            yield return new OpDef(op, OpKind.Collective, 1)
            {
                Shape = a => { ShapeRules.RequireFloat(a.X, op.ToString()); return (a.X.DType, a.X.Shape); },
                Grad = gradOp is { } go ? (g, n, dy) => One(g.Add(go, new[] { dy })) : SecondOrder,
                Precision = PrecisionPolicy.LikeInputs,
                Lowering = new KernelLowering(c => c.Line($"{call}({c.In(0)}, {c.Out}, {c.N(c.Node.Shape)}, {Site(c.Node)});"), c => CopyKernel(c, what)),
            };
        }
    }

    /// <summary>Where a collective comes from, for the message of a timeout: the IR node and its C# line and text (the build knows every collective of a step).</summary>
    private static string Site(Node n) =>
        SymbolNames.Str($"%{n.Id} ({n.Op}){(n.Src.Line > 0 ? $", {n.Src}: {(n.Src.Text.Length > 80 ? n.Src.Text.Substring(0, 77) + "..." : n.Src.Text)}" : "")}");

    /// <summary>A CUDA kernel that copies its input (the identity of a collective on one rank).</summary>
    private static void CopyKernel(CudaKernelContext c, string what)
    {
        var ps = c.Params();
        c.OutParam(ps); c.InParam(ps, c.X.Id, "in0"); c.SizeParam(ps, "count", c.Numel(c.Node.Shape));
        c.Kernel(what, ps, CudaGrid.Elements, c.Numel(c.Node.Shape), () =>
            c.Line($"    KILN_FOR_ELEMENTS(i, count) {{ float v = {c.Load(c.X.Id, "in0", "i")}; {c.Store(c.Node.Id, "i", "v")} }}"));
    }
}

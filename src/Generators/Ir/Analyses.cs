using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Generators.Ir;

/// <summary>
/// An analysis attached to a graph in a typed side table: precision marks, fusion groups, the memory plan (and,
/// later, sharding). A rewrite of the graph asks each analysis to rebase itself; the verifier asks it to check its
/// invariants after every pass.
/// </summary>
internal interface IGraphAnalysis
{
    /// <summary>This analysis for <paramref name="rewritten"/> (the same program with new nodes), or null when it no longer holds.</summary>
    IGraphAnalysis? Rebase(Graph rewritten);

    /// <summary>Reports through <paramref name="fail"/> every node that breaks this analysis's invariants in <paramref name="g"/>.</summary>
    void Verify(Graph g, Action<Node, string> fail);
}

/// <summary>What the passes have established about a graph; a pass states which it requires and which it produces.</summary>
[Flags]
internal enum GraphFacts
{
    None = 0,
    /// <summary>Every node's dtype and shape are what its op's rule infers, and the constraints are collected.</summary>
    ShapesInferred = 1,
    /// <summary>The backward pass and the optimizer update are in the graph (training programs).</summary>
    Differentiated = 2,
    /// <summary>StopGradient is gone, common subexpressions are merged and dead nodes dropped.</summary>
    Simplified = 4,
    /// <summary>Every node's storage precision is decided (<see cref="PrecisionMarks"/>).</summary>
    PrecisionPlanned = 8,
    /// <summary>The nodes are partitioned into kernels (<see cref="FusionPlan"/>).</summary>
    Fused = 16,
    /// <summary>Every materialised tensor has a place (<see cref="MemoryPlan"/>).</summary>
    MemoryPlanned = 32,
}

/// <summary>
/// The nodes stored in the program's low-precision type. A rewrite keeps the marks of nodes that survive (by id);
/// new nodes are fp32 until a pass marks them, and the verifier checks the policy's invariants on every graph.
/// </summary>
internal sealed class PrecisionMarks : IGraphAnalysis
{
    public PrecisionMarks(IEnumerable<int> low) => Low = new HashSet<int>(low);

    public HashSet<int> Low { get; }

    public IGraphAnalysis? Rebase(Graph rewritten) => new PrecisionMarks(Low.Where(rewritten.Contains));

    public void Verify(Graph g, Action<Node, string> fail)
    {
        foreach (var n in g.Nodes)
        {
            if (Low.Contains(n.Id) && n.DType != DType.F32) fail(n, "it is marked low precision but is not a float tensor");
            if (n.Op == Op.Cast && !Low.Contains(n.Id)) fail(n, "a cast must produce a low-precision tensor");
            if (OpRegistry.Of(n.Op).Precision == PrecisionPolicy.LowOperands && n.Inputs.Any(i => !Low.Contains(i)))
                fail(n, "a matmul operand is not in low precision");
        }
        foreach (var o in g.Outputs)
            if (o.Role == OutputRole.ParamGrad && Low.Contains(o.Node))
                fail(g[o.Node], $"it is the gradient of parameter #{o.Param}, which accumulates in fp32, but it is marked low precision");
        // A loop's arguments and results are stored as its inputs and projections are (a carried value may widen a low input).
        foreach (var n in g.Nodes.Where(x => x.Attr is LoopAttr))
        {
            var loop = n.A<LoopAttr>();
            if (loop.Body.Find<PrecisionMarks>() is not { } inner) { fail(n, "its body has no precision marks"); continue; }
            foreach (var arg in loop.Body.Nodes.Where(b => b.Op == Op.LoopArg))
            {
                int i = arg.A<LoopArgAttr>().Index;
                bool argLow = inner.Low.Contains(arg.Id), inLow = Low.Contains(n.Inputs[i]);
                if (argLow && !inLow || !argLow && inLow && i >= loop.Carried)
                    fail(n, $"loop input #{i} is stored {(inLow ? "low" : "fp32")} but the body reads it as {(argLow ? "low" : "fp32")}");
            }
            foreach (var p in g.Nodes.Where(x => x.Op == Op.LoopOut && x.Inputs[0] == n.Id))
            {
                var result = loop.Body.Outputs[p.A<LoopOutAttr>().Index].Node;
                if (inner.Low.Contains(result) != Low.Contains(p.Id))
                    fail(p, $"it is stored {(Low.Contains(p.Id) ? "low" : "fp32")} but the loop body's result %{result} is {(inner.Low.Contains(result) ? "low" : "fp32")}");
            }
        }
    }
}

/// <summary>The kernels of the program: fusion groups that partition its nodes, in schedule order.</summary>
internal sealed class FusionPlan : IGraphAnalysis
{
    public FusionPlan(IReadOnlyList<FusionGroup> groups) => Groups = groups;

    public IReadOnlyList<FusionGroup> Groups { get; }

    /// <summary>A rewritten graph has other kernels: the plan is dropped.</summary>
    public IGraphAnalysis? Rebase(Graph rewritten) => null;

    public void Verify(Graph g, Action<Node, string> fail)
    {
        var seen = new HashSet<int>();
        foreach (var gr in Groups)
            foreach (var m in gr.Members)
            {
                if (!g.Contains(m)) throw new InvalidOperationException($"fusion group k{gr.Id} names missing node %{m}");
                if (!seen.Add(m)) fail(g[m], $"it is in more than one fusion group (k{gr.Id})");
            }
        foreach (var n in g.Nodes)
            if (!seen.Contains(n.Id)) fail(n, "it is in no fusion group");
    }
}

using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Checks a graph's invariants after every pass: topological order, known inputs, and that each node's
/// dtype and shape are what its op's rule infers. Failures name the pass, node, op, dtype and shape.
/// </summary>
internal static class Verifier
{
    public static void Verify(Graph g, string afterPass)
    {
        var seen = new HashSet<int>();
        foreach (var n in g.Nodes)
        {
            foreach (var i in n.Inputs)
                if (!seen.Contains(i))
                    throw Error(afterPass, n, $"input %{i} is not defined before it");
            if (!seen.Add(n.Id)) throw Error(afterPass, n, "the id is defined twice");
            var inputs = n.Inputs.Select(i => g[i]).ToArray();
            (DType dtype, Sym[] shape) inferred;
            try
            {
                inferred = OpRegistry.Infer(n.Op, inputs, n.Attr, n.Shape, (_, _, _) => { });
            }
            catch (ShapeException e) { throw Error(afterPass, n, "its shape rule fails: " + e.Message); }
            if (inferred.dtype != n.DType || !Shapes.Same(inferred.shape, n.Shape))
                throw Error(afterPass, n, $"its rule infers {IrPrinter.Type(inferred.dtype, inferred.shape)}");
            if (n.Op == Op.Param && (n.Attr is not ParamAttr pa || pa.Index < 0 || pa.Index >= g.Parameters.Count))
                throw Error(afterPass, n, "it names no parameter of the table");
            if (n.Op == Op.LoopArg && g.Kind != GraphKind.Body) throw Error(afterPass, n, "a loop argument outside a loop body");
            if (n.Attr is LoopAttr loop) VerifyLoop(g, n, loop, afterPass);
        }
        foreach (var o in g.Outputs)
            if (!seen.Contains(o.Node)) throw new InvalidOperationException($"IR verification failed after {afterPass}: output {o.Role} names missing node %{o.Node}.");
        // Each attached analysis checks its own invariants (precision policy, fusion partition, memory placements).
        foreach (var analysis in g.Analyses.OrderBy(a => a.GetType().Name, StringComparer.Ordinal))
            analysis.Verify(g, (n, what) => throw Error(afterPass, n, what));
    }

    /// <summary>A loop's body is a graph of its own, verified like any other, plus the contract between the two.</summary>
    private static void VerifyLoop(Graph g, Node n, LoopAttr loop, string afterPass)
    {
        var body = loop.Body;
        if (body.Kind != GraphKind.Body) throw Error(afterPass, n, "its body is not a body graph");
        var args = new HashSet<int>();
        foreach (var a in body.Nodes.Where(b => b.Op == Op.LoopArg))
        {
            int index = a.A<LoopArgAttr>().Index;
            if (index < 0 || index >= loop.Inputs) throw Error(afterPass, n, $"body argument %{a.Id} reads loop input #{index}, which does not exist");
            if (!args.Add(index)) throw Error(afterPass, n, $"loop input #{index} has two body arguments");
        }
        if (body.Nodes.Any(b => b.Op == Op.Loop)) throw Error(afterPass, n, "its body holds another loop (inner loops are unrolled)");
        for (int i = 0; i < body.Outputs.Count; i++)
        {
            var o = body.Outputs[i];
            var expected = i < loop.Carried ? OutputRole.Carried : OutputRole.Stacked;
            int index = i < loop.Carried ? i : i - loop.Carried;
            if (o.Role != expected || o.Param != index) throw Error(afterPass, n, $"body output {i} is {o.Role} #{o.Param}, expected {expected} #{index}");
        }
        Verify(body, $"{afterPass} (body of %{n.Id})");
    }

    private static Exception Error(string pass, Node n, string what) =>
        new InvalidOperationException($"IR verification failed after {pass}: %{n.Id} = {IrPrinter.Node(n)} (from {n.Src}): {what}.");
}

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
        }
        if (g.Low is not null)
        {
            foreach (var n in g.Nodes)
            {
                if (g.Low.Contains(n.Id) && n.DType != DType.F32) throw Error(afterPass, n, "it is marked low precision but is not a float tensor");
                if (n.Op == Op.Cast && !g.Low.Contains(n.Id)) throw Error(afterPass, n, "a cast must produce a low-precision tensor");
                if (n.Op == Op.MatMul && n.Inputs.Any(i => !g.Low.Contains(i))) throw Error(afterPass, n, "a matmul operand is not in low precision");
            }
            foreach (var o in g.Outputs)
                if (o.Role == OutputRole.ParamGrad && g.Low.Contains(o.Node))
                    throw new InvalidOperationException($"IR verification failed after {afterPass}: the gradient of parameter #{o.Param} (%{o.Node}) is low precision; gradients accumulate in fp32.");
        }
        foreach (var o in g.Outputs)
            if (!seen.Contains(o.Node)) throw new InvalidOperationException($"IR verification failed after {afterPass}: output {o.Role} names missing node %{o.Node}.");
        if (g.Groups is not null)
        {
            var covered = g.Groups.SelectMany(x => x.Members).ToList();
            if (covered.Count != covered.Distinct().Count() || covered.Count != g.Nodes.Count)
                throw new InvalidOperationException($"IR verification failed after {afterPass}: fusion groups do not partition the nodes.");
        }
    }

    private static Exception Error(string pass, Node n, string what) =>
        new InvalidOperationException($"IR verification failed after {pass}: %{n.Id} = {IrPrinter.Node(n)} (from {n.Src}): {what}.");
}

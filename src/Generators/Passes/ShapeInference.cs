using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Re-derives every node's dtype and shape from its op's rule (the lowering already checked them as it
/// built the graph) and gathers the symbolic facts that need a run-time check into the graph's constraints.
/// </summary>
internal static class ShapeInference
{
    public static Graph Run(Graph g)
    {
        var b = new GraphBuilder();
        var nodes = Infer(g, b);
        var constraints = g.Constraints.Concat(b.Constraints).Distinct().ToList();
        return g.WithNodes(nodes, g.Outputs, constraints: constraints);
    }

    /// <summary>The nodes of <paramref name="g"/> re-inferred into <paramref name="b"/>; a loop's body first (its constraints join the enclosing graph's).</summary>
    private static List<Node> Infer(Graph g, GraphBuilder b)
    {
        foreach (var n in g.Nodes)
        {
            b.Src = n.Src;
            var attr = n.Attr;
            if (attr is LoopAttr loop)
            {
                var inner = new GraphBuilder();
                var bodyNodes = Infer(loop.Body, inner);
                b.AddConstraints(inner.Constraints);
                attr = loop with { Body = loop.Body.WithNodes(bodyNodes, loop.Body.Outputs) };
            }
            var inputs = n.Inputs.Select(i => b[i]).ToArray();
            var (dtype, shape) = OpRegistry.Infer(n.Op, inputs, attr, n.Shape, b.Require);
            b.Import(new Node(n.Id, n.Op, n.Inputs, dtype, shape, attr, n.Src));
        }
        return b.Nodes.ToList();
    }
}

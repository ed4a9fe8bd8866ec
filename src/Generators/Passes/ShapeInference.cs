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
        var map = new Dictionary<int, int>();
        var nodes = new List<Node>();
        foreach (var n in g.Nodes)
        {
            b.Src = n.Src;
            var inputs = n.Inputs.Select(i => b[i]).ToArray();
            var (dtype, shape) = OpRegistry.Infer(n.Op, inputs, n.Attr, n.Shape, b.Require);
            var inferred = new Node(n.Id, n.Op, n.Inputs, dtype, shape, n.Attr, n.Src);
            b.Import(inferred);
        }
        var constraints = g.Constraints.Concat(b.Constraints).Distinct().ToList();
        return g.WithNodes(b.Nodes.ToList(), g.Outputs, constraints: constraints);
    }
}

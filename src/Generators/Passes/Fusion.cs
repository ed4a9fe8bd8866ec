using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Groups nodes into CPU kernels. An elementwise node is computed inside its consumer's kernel (never
/// written to memory) when it has exactly one user, that user is elementwise too and both have the same
/// shape; constants are folded into every elementwise kernel that reads them. Everything else is a
/// kernel of its own kind (matmul, reduce, movement, indexing, source) or an alias (reshape, inputs, parameters).
/// </summary>
internal static class Fusion
{
    public static Graph Run(Graph g)
    {
        // A loop's body is fused on its own, its outputs (carried and stacked results) materialised.
        if (g.Nodes.Any(n => n.Op == Op.Loop))
            g = g.WithNodes(g.Nodes.Select(n => n.Attr is LoopAttr loop
                ? new Node(n.Id, n.Op, n.Inputs, n.DType, n.Shape, loop with { Body = Run(loop.Body) }, n.Src) : n).ToList(), g.Outputs);
        var users = g.Users();
        bool Fusible(Op op) => OpRegistry.Of(op).IsFusible;
        var outputs = new HashSet<int>(g.Outputs.Select(o => o.Node));
        var inlined = new HashSet<int>();
        var constants = new HashSet<int>();
        foreach (var n in g.Nodes)
        {
            if (outputs.Contains(n.Id)) continue;
            var us = users[n.Id];
            // A uniform value needs no memory: every elementwise kernel that reads it takes it as a scalar.
            if (n.Op == Op.Fill && us.Count > 0 && us.All(u => Fusible(g[u].Op))) { constants.Add(n.Id); continue; }
            if (!Fusible(n.Op)) continue;
            if (us.Count == 1 && Fusible(g[us[0]].Op) && Shapes.Same(n.Shape, g[us[0]].Shape) && g[us[0]].Op != Op.Fill)
                inlined.Add(n.Id);
        }

        var groups = new List<FusionGroup>();
        foreach (var n in g.Nodes)
        {
            if (inlined.Contains(n.Id)) continue;
            if (constants.Contains(n.Id)) { groups.Add(new FusionGroup(groups.Count, n.Id, new[] { n.Id }, System.Array.Empty<int>(), GroupKind.Const)); continue; }
            var members = new List<int>();
            var external = new List<int>();
            if (Fusible(n.Op)) Collect(g, n.Id, inlined, members, external);
            else { members.Add(n.Id); external.AddRange(n.Inputs.Distinct()); }
            members.Sort((a, b) => g.IndexOf(a).CompareTo(g.IndexOf(b)));
            groups.Add(new FusionGroup(groups.Count, n.Id, members.ToArray(), external.Distinct().ToArray(), MemoryPlanner.IsParamCast(g, n) ? GroupKind.Alias : KindOf(n)));
        }
        return g.With(new FusionPlan(groups));
    }

    private static void Collect(Graph g, int id, HashSet<int> inlined, List<int> members, List<int> external)
    {
        if (members.Contains(id)) return;
        members.Add(id);
        foreach (var i in g[id].Inputs)
        {
            if (inlined.Contains(i)) Collect(g, i, inlined, members, external);
            else if (!external.Contains(i)) external.Add(i);
        }
    }

    /// <summary>The kind of a group rooted at <paramref name="n"/>, from its op's lowering and category.</summary>
    public static GroupKind KindOf(Node n)
    {
        var def = OpRegistry.Of(n.Op);
        return def.Lowering switch
        {
            NoKernel => GroupKind.Alias,
            RegionLowering => GroupKind.Loop,
            ElementwiseLowering => GroupKind.Elementwise,
            GemmLowering => GroupKind.MatMul,
            _ => def.Kind switch
            {
                OpKind.Reduction => GroupKind.Reduce,
                OpKind.Movement => GroupKind.Movement,
                OpKind.Indexing => GroupKind.Indexing,
                OpKind.Attention => GroupKind.Attention,
                OpKind.Collective => GroupKind.Collective,
                OpKind.Elementwise => GroupKind.Elementwise,
                _ => GroupKind.Source,
            },
        };
    }
}

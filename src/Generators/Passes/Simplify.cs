using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Common;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Clean-up between passes: StopGradient becomes its input (it only matters to autodiff), identical pure
/// nodes are merged (common-subexpression elimination), and nodes no output needs are dropped.
/// </summary>
internal static class Simplify
{
    public static Graph Run(Graph g)
    {
        var replace = new Dictionary<int, int>();
        int R(int id) => replace.TryGetValue(id, out var r) ? r : id;
        var seen = new Dictionary<CseKey, int>();
        var nodes = new List<Node>();
        var byIdSoFar = new Dictionary<int, Node>();
        var originalUsers = g.Users();
        int nextId = g.Nodes.Count == 0 ? 0 : g.Nodes.Max(x => x.Id) + 1;
        foreach (var n0 in g.Nodes)
        {
            var n = n0.Inputs.Any(replace.ContainsKey) ? n0.With(n0.Id, n0.Inputs.Select(R).ToArray()) : n0;
            if (n.Attr is LoopAttr loop) n = new Node(n.Id, n.Op, n.Inputs, n.DType, n.Shape, loop with { Body = Run(loop.Body) }, n.Src);
            if (n.Op == Op.StopGradient) { replace[n.Id] = n.Inputs[0]; continue; }
            n = FoldConstant(n, byIdSoFar);
            // Σ(−x) = −Σx: negate the small reduced tensor, not the large input (LayerNorm and softmax backward).
            if (n.Op is Op.SumTo or Op.ReduceSum && byIdSoFar.TryGetValue(n.Inputs[0], out var neg) && neg.Op == Op.Neg && originalUsers[n0.Inputs[0]].Count == 1)
            {
                var sum = new Node(nextId++, n.Op, new[] { neg.Inputs[0] }, n.DType, n.Shape, n.Attr, n.Src);
                nodes.Add(sum); byIdSoFar[sum.Id] = sum;
                n = new Node(n.Id, Op.Neg, new[] { sum.Id }, n.DType, n.Shape, null, n.Src);
            }
            var key = Key(n);
            if (seen.TryGetValue(key, out var same)) { replace[n.Id] = same; continue; }
            seen[key] = n.Id;
            nodes.Add(n);
            byIdSoFar[n.Id] = n;
        }
        var outputs = g.Outputs.Select(o => o with { Node = R(o.Node) }).ToList();

        var live = new HashSet<int>(outputs.Select(o => o.Node));
        var byId = nodes.ToDictionary(n => n.Id);
        for (int i = nodes.Count - 1; i >= 0; i--)
            if (live.Contains(nodes[i].Id) || nodes[i].Op == Op.Param)
                foreach (var inp in nodes[i].Inputs) live.Add(inp);
        // Parameters, inputs and loop arguments stay even when unused: they are the graph's interface.
        var kept = nodes.Where(n => live.Contains(n.Id) || n.Op is Op.Param or Op.Input or Op.LoopArg).ToList();
        return g.WithNodes(PruneLoopResults(kept), outputs);
    }

    /// <summary>A stacked loop result nothing reads is not computed: the body drops it (and what only it needed).</summary>
    private static List<Node> PruneLoopResults(List<Node> nodes)
    {
        if (!nodes.Any(n => n.Op == Op.Loop)) return nodes;
        var read = nodes.Where(n => n.Op == Op.LoopOut).GroupBy(n => n.Inputs[0]).ToDictionary(x => x.Key, x => new HashSet<int>(x.Select(p => p.A<LoopOutAttr>().Index)));
        var renumber = new Dictionary<(int Loop, int Index), int>();
        var result = new List<Node>(nodes.Count);
        foreach (var n in nodes)
        {
            if (n.Attr is LoopAttr loop)
            {
                var used = read.TryGetValue(n.Id, out var r) ? r : new HashSet<int>();
                var keep = Enumerable.Range(0, loop.Body.Outputs.Count).Where(i => i < loop.Carried || used.Contains(i)).ToList();
                if (keep.Count < loop.Body.Outputs.Count)
                {
                    var outputs = keep.Select((i, k) => i < loop.Carried ? loop.Body.Outputs[i] : loop.Body.Outputs[i] with { Param = k - loop.Carried }).ToList();
                    for (int k = 0; k < keep.Count; k++) renumber[(n.Id, keep[k])] = k;
                    var body = Run(loop.Body.WithNodes(loop.Body.Nodes, outputs));
                    result.Add(new Node(n.Id, n.Op, n.Inputs, n.DType, n.Shape, loop with { Body = body }, n.Src));
                    continue;
                }
            }
            if (n.Op == Op.LoopOut && renumber.TryGetValue((n.Inputs[0], n.A<LoopOutAttr>().Index), out var index))
            {
                result.Add(new Node(n.Id, n.Op, n.Inputs, n.DType, n.Shape, new LoopOutAttr(index), n.Src));
                continue;
            }
            result.Add(n);
        }
        return result;
    }

    /// <summary>
    /// A uniform value stays a Fill through scaling, shifting, negation, reshaping and broadcasting, so
    /// the loss gradient's seed (and similar constants) never becomes a kernel writing a constant buffer.
    /// </summary>
    private static Node FoldConstant(Node n, Dictionary<int, Node> byId)
    {
        if (n.Inputs.Length != 1 || !byId.TryGetValue(n.Inputs[0], out var x) || x.Op != Op.Fill) return n;
        var value = OpRegistry.Of(n.Op).Fold?.Invoke(x.A<ScalarAttr>().Value, n);
        return value is null ? n : new Node(n.Id, Op.Fill, System.Array.Empty<int>(), DType.F32, n.Shape, new ScalarAttr(value), n.Src);
    }

    /// <summary>What makes two nodes the same computation: op, inputs, attribute (record equality), shape and dtype.</summary>
    private readonly record struct CseKey(Op Op, EquatableArray<int> Inputs, OpAttr? Attr, EquatableArray<Sym> Shape, DType DType);

    private static CseKey Key(Node n) => new(n.Op, n.Inputs.ToEquatableArray(), n.Attr, n.Shape.ToEquatableArray(), n.DType);
}

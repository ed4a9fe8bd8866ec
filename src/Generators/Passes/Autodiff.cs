using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Reverse-mode differentiation: appends to the forward graph the gradient of the loss with respect to
/// every parameter (via each op's gradient rule in <see cref="OpRegistry"/>, and <see cref="LoopAutodiff"/> for loop
/// regions) and marks the optimizer update, so one graph holds forward, backward and update.
/// </summary>
internal static class Autodiff
{
    /// <summary>
    /// The float symbol the backward pass is seeded with: the loss scale of mixed-precision training
    /// (1 unless fp16 dynamic loss scaling is on). Not a C# identifier, so no hyperparameter can take it.
    /// </summary>
    public const string LossScaleSymbol = "$lossScale";

    public static Graph Run(Graph fwd)
    {
        var loss = fwd.Outputs.Single(o => o.Role == OutputRole.Loss).Node;
        var g = new GraphBuilder();
        foreach (var n in fwd.Nodes) g.Import(n);

        var needs = Needs(fwd.Nodes, n => n.Op == Op.Param);
        var outputs = new List<GraphOutput> { new(OutputRole.Loss, loss, -1) };
        if (!needs.Contains(loss)) return fwd.WithNodes(g.Nodes.ToList(), outputs, optimizer: true);

        g.Src = fwd[loss].Src;
        var seeds = new Dictionary<int, int> { [loss] = g.Fill(Scalar.Hyper(LossScaleSymbol), fwd[loss].Shape) };
        var grads = Backprop(g, fwd.Nodes, needs, seeds);
        foreach (var n in fwd.Nodes)
            if (n.Op == Op.Param && grads.TryGetValue(n.Id, out var dp)) outputs.Add(new GraphOutput(OutputRole.ParamGrad, dp, n.A<ParamAttr>().Index));
        // Parameter order keeps the emitted program stable.
        var ordered = outputs.Take(1).Concat(outputs.Skip(1).OrderBy(o => o.Param)).ToList();
        return fwd.WithNodes(g.Nodes.ToList(), ordered, optimizer: true, constraints: fwd.Constraints.Concat(g.Constraints).Distinct().ToList());
    }

    /// <summary>The nodes a gradient flows through: the sources, and every differentiable node that depends on one.</summary>
    public static HashSet<int> Needs(IEnumerable<Node> nodes, System.Func<Node, bool> isSource)
    {
        var needs = new HashSet<int>();
        foreach (var n in nodes)
            if (isSource(n) || (OpRegistry.Of(n.Op).Differentiable && n.Op is not (Op.Param or Op.LoopArg) && n.Inputs.Any(needs.Contains)))
                needs.Add(n.Id);
        return needs;
    }

    /// <summary>
    /// Propagates <paramref name="seeds"/> (gradients of some nodes) back through <paramref name="nodes"/> in reverse
    /// order, appending the gradient nodes to <paramref name="g"/>; returns the accumulated gradient of every node in
    /// <paramref name="needs"/> that one reaches (sources included). A loop's gradient is another loop, built by
    /// <see cref="LoopAutodiff"/> from the gradients of its results.
    /// </summary>
    public static Dictionary<int, int> Backprop(GraphBuilder g, IReadOnlyList<Node> nodes, HashSet<int> needs, Dictionary<int, int> seeds)
    {
        var grads = new Dictionary<int, int>(seeds);
        var loopResultGrads = new Dictionary<int, Dictionary<int, int>>();
        void Accumulate(int node, int grad, SourceRef src)
        {
            g.Src = src;
            grads[node] = grads.TryGetValue(node, out var prev) ? g.Binary(Op.Add, prev, grad) : grad;
        }
        for (int k = nodes.Count - 1; k >= 0; k--)
        {
            var n = nodes[k];
            if (!needs.Contains(n.Id) || n.Op is Op.Param or Op.LoopArg) continue;
            if (n.Op == Op.Loop)
            {
                if (!loopResultGrads.TryGetValue(n.Id, out var dys)) continue;
                g.Src = n.Src;
                var inputGrads = LoopAutodiff.Backward(g, n, dys, n.Inputs.Select(needs.Contains).ToArray());
                for (int i = 0; i < n.Inputs.Length; i++)
                    if (inputGrads[i] is int gi && needs.Contains(n.Inputs[i])) Accumulate(n.Inputs[i], gi, n.Src);
                continue;
            }
            if (!grads.TryGetValue(n.Id, out var dy)) continue;
            if (n.Op == Op.LoopOut)
            {
                // The loop's gradient needs the gradients of all its results at once: collect them here.
                if (!loopResultGrads.TryGetValue(n.Inputs[0], out var perLoop)) loopResultGrads[n.Inputs[0]] = perLoop = new Dictionary<int, int>();
                int index = n.A<LoopOutAttr>().Index;
                g.Src = n.Src;
                perLoop[index] = perLoop.TryGetValue(index, out var prev) ? g.Binary(Op.Add, prev, dy) : dy;
                continue;
            }
            g.Src = n.Src;
            var ins = OpRegistry.Of(n.Op).Grad!(g, n, dy);
            for (int i = 0; i < n.Inputs.Length; i++)
                if (ins[i] is int gi && needs.Contains(n.Inputs[i])) Accumulate(n.Inputs[i], gi, n.Src);
        }
        return grads;
    }
}

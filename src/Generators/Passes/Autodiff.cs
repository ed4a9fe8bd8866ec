using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Reverse-mode differentiation: appends to the forward graph the gradient of the loss with respect to
/// every parameter (via each op's gradient rule in <see cref="OpRegistry"/>) and marks the optimizer update, so one
/// graph holds forward, backward and update.
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

        // Which nodes carry a gradient back to a parameter.
        var needs = new HashSet<int>();
        foreach (var n in fwd.Nodes)
            if (n.Op == Op.Param || (OpRegistry.Of(n.Op).Differentiable && n.Inputs.Any(needs.Contains)))
                needs.Add(n.Id);

        var grads = new Dictionary<int, int>();
        var outputs = new List<GraphOutput> { new(OutputRole.Loss, loss, -1) };
        if (!needs.Contains(loss)) return fwd.WithNodes(g.Nodes.ToList(), outputs, optimizer: true);

        g.Src = fwd[loss].Src;
        grads[loss] = g.Fill(Scalar.Hyper(LossScaleSymbol), fwd[loss].Shape);
        foreach (var n in fwd.Nodes.Reverse())
        {
            if (!grads.TryGetValue(n.Id, out var dy) || !needs.Contains(n.Id)) continue;
            if (n.Op == Op.Param) { outputs.Add(new GraphOutput(OutputRole.ParamGrad, dy, n.A<ParamAttr>().Index)); continue; }
            g.Src = n.Src;
            var ins = OpRegistry.Of(n.Op).Grad!(g, n, dy);
            for (int i = 0; i < n.Inputs.Length; i++)
            {
                var input = n.Inputs[i];
                if (ins[i] is not int gi || !needs.Contains(input)) continue;
                g.Src = n.Src;
                grads[input] = grads.TryGetValue(input, out var prev) ? g.Binary(Op.Add, prev, gi) : gi;
            }
        }
        // Parameter order keeps the emitted program stable.
        var ordered = outputs.Take(1).Concat(outputs.Skip(1).OrderBy(o => o.Param)).ToList();
        return fwd.WithNodes(g.Nodes.ToList(), ordered, optimizer: true, constraints: fwd.Constraints.Concat(g.Constraints).Distinct().ToList());
    }
}

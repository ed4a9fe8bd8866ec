using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Makes a lowered graph a pipeline stage program (for models declared with [Parallel(Pipeline = p)], p &gt; 1): the
/// repeated blocks' loop gets a <c>StageInput</c> on its carried input and a <c>StageOutput</c> on its carried result,
/// and the loop's stacked parameters are marked <see cref="ParamDecl.Staged"/>. Each stage runs the same program built
/// with its share of the layers; at run time stages after the first receive the blocks' input from the previous stage
/// and stages before the last send their output on (the backward mirrors it), the loss counts only on the last stage,
/// and parameters outside the blocks have their gradient summed over the stages. One stage is the plain program.
/// </summary>
internal static class PipelineStages
{
    /// <summary>The rewritten graph, or the reason it cannot be pipelined (no loop, several, or several carried values).</summary>
    public static (Graph? Graph, string? Problem) Rewrite(Graph g)
    {
        var loops = g.Nodes.Where(n => n.Op == Op.Loop).ToList();
        if (loops.Count == 0) return (null, "has no repeated blocks");
        if (loops.Count > 1) return (null, $"has {loops.Count} loops of repeated blocks; a pipeline cuts one");
        var loop = loops[0];
        var attr = loop.A<LoopAttr>();
        if (attr.Carried != 1) return (null, $"carries {attr.Carried} values through its repeated blocks; a pipeline passes one tensor between stages");
        var carriedOut = g.Nodes.FirstOrDefault(n => n.Op == Op.LoopOut && n.Inputs[0] == loop.Id && n.A<LoopOutAttr>().Index == 0);
        if (carriedOut is null) return (null, "does not use its repeated blocks' result");

        int next = g.Nodes.Max(n => n.Id) + 1;
        int inputId = next++, outputId = next++;
        var input = g[loop.Inputs[0]];
        var stageInput = new Node(inputId, Op.StageInput, new[] { input.Id }, input.DType, input.Shape, null, loop.Src);
        var stageOutput = new Node(outputId, Op.StageOutput, new[] { carriedOut.Id }, carriedOut.DType, carriedOut.Shape, null, loop.Src);
        var nodes = new List<Node>(g.Nodes.Count + 2);
        foreach (var n in g.Nodes)
        {
            if (n.Id == loop.Id)
            {
                nodes.Add(stageInput);
                var inputs = (int[])n.Inputs.Clone();
                inputs[0] = inputId;
                nodes.Add(new Node(n.Id, n.Op, inputs, n.DType, n.Shape, n.Attr, n.Src));
                continue;
            }
            nodes.Add(n.Id == carriedOut.Id || !n.Inputs.Contains(carriedOut.Id) ? n
                : new Node(n.Id, n.Op, n.Inputs.Select(i => i == carriedOut.Id ? outputId : i).ToArray(), n.DType, n.Shape, n.Attr, n.Src));
            if (n.Id == carriedOut.Id) nodes.Add(stageOutput);
        }
        var outputs = g.Outputs.Select(o => o.Node == carriedOut.Id ? o with { Node = outputId } : o).ToList();

        // The loop's stacked inputs that are parameters: each stage holds its layers' slices.
        var staged = new HashSet<int>();
        for (int i = attr.Carried + attr.Captured; i < attr.Inputs; i++)
            if (g[loop.Inputs[i]] is { Op: Op.Param } p) staged.Add(p.A<ParamAttr>().Index);
        var parameters = g.Parameters.Select((p, i) => staged.Contains(i) ? p with { Staged = true } : p).ToList();
        return (new Graph(g.Kind, nodes, outputs, parameters, g.Inputs, g.Constraints, g.HasOptimizerStep), null);
    }
}

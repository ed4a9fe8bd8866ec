using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// The decode program (generation with a KV cache) derived from the predict graph: the same computation, run on new
/// positions only. Every op of a GPT except attention and positions works position by position, so two rewrites make
/// the predict graph a decode step: each fused causal attention becomes a cached one (it appends its keys and values to a
/// KV cache and attends to all cached positions), and each <c>Arange</c> over the sequence length becomes the absolute
/// positions of the new tokens (<c>Positions</c>, offset by the program's <c>DecodePosition</c>). A model qualifies when
/// its Forward takes token ids [B, T] and has at least one attention, all fused, causal and unmasked. A model that mixes
/// positions some other way (attention written as MatMul/Softmax) would compute something else; the runtime's
/// generation checks the first cached step against the uncached forward and refuses the cache when they differ.
/// </summary>
internal static class DecodeProgram
{
    private static IEnumerable<Node> All(Graph g) => g.Nodes.Concat(g.Nodes.Where(n => n.Attr is LoopAttr).SelectMany(n => All(n.A<LoopAttr>().Body)));

    /// <summary>Whether the (compiled) predict graph can have a decode program.</summary>
    public static bool Applies(Graph predict)
    {
        var tokens = predict.Inputs.FirstOrDefault(i => i.DType == DType.I32 && i.Shape.Length == 2);
        if (tokens is null) return false;
        var attention = All(predict).Where(n => n.Op == Op.Attention).ToList();
        return attention.Count > 0 && attention.All(n => n.A<AttentionAttr>() is { Causal: true, Masked: false });
    }

    /// <summary>The lowered predict graph rewritten into a decode step (null when it does not qualify).</summary>
    public static Graph? Rewrite(Graph lowered)
    {
        var tokens = lowered.Inputs.FirstOrDefault(i => i.DType == DType.I32 && i.Shape.Length == 2);
        if (tokens is null) return null;
        var sequence = tokens.Shape[1];
        int site = 0;
        Graph Walk(Graph g)
        {
            var nodes = new List<Node>(g.Nodes.Count);
            foreach (var n in g.Nodes)
            {
                if (n.Op == Op.Attention)
                {
                    var a = n.A<AttentionAttr>();
                    nodes.Add(new Node(n.Id, n.Op, n.Inputs, n.DType, n.Shape, a with { Site = site++ }, n.Src));
                }
                else if (n.Op == Op.Arange && n.Shape.Length == 1 && n.Shape[0].Equals(sequence))
                    nodes.Add(new Node(n.Id, Op.Positions, n.Inputs, n.DType, n.Shape, null, n.Src));
                else if (n.Attr is LoopAttr loop)
                    nodes.Add(new Node(n.Id, n.Op, n.Inputs, n.DType, n.Shape, loop with { Body = Walk(loop.Body) }, n.Src));
                else nodes.Add(n);
            }
            return g.WithNodes(nodes, g.Outputs);
        }
        var rewritten = Walk(lowered);
        return site > 0 ? rewritten : null;
    }
}

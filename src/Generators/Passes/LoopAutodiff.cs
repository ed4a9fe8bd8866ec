using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// The gradient of a loop region is a loop running the other way (as for JAX's <c>scan</c>). Its body is the
/// forward body followed by the body's backward pass; it carries the gradient of the forward carried values (and
/// accumulates the gradient of captured values), reads slice l of the forward's stacked inputs (parameters) and of
/// what the forward loop saved, and stacks the gradient of each stacked input (a parameter's gradient, layer by
/// layer). The forward loop saves every carried value it starts an iteration with (the checkpoint) and, unless it
/// recomputes (<see cref="LoopAttr.Recompute"/>), the activations the backward body reads; cheap values (constants,
/// ranges, dropout masks, which are a function of the step and layer) are always recomputed.
/// </summary>
internal static class LoopAutodiff
{
    /// <summary>
    /// Appends the backward loop of forward loop <paramref name="loopNode"/> to <paramref name="g"/>, given the gradients
    /// of its results (by result index), and returns the gradient of each loop input that <paramref name="needIn"/> marks.
    /// The forward loop is replaced (same id) by one that also saves what the backward loop reads.
    /// </summary>
    public static int?[] Backward(GraphBuilder g, Node loopNode, IReadOnlyDictionary<int, int> resultGrads, bool[] needIn)
    {
        var f = loopNode.A<LoopAttr>();
        var fwd = f.Body;
        int C = f.Carried, K = f.Captured, S = f.Stacked;
        var argOf = fwd.Nodes.Where(n => n.Op == Op.LoopArg).ToDictionary(n => n.A<LoopArgAttr>().Index, n => n);

        // ── the backward body: the forward body, then its backward pass ──
        var b = new GraphBuilder();
        foreach (var n in fwd.Nodes) b.Import(n);
        int firstNew = b.NextId;
        Node Arg(Sym[] shape, DType dtype) => b[b.Add(Op.LoopArg, Array.Empty<int>(), new LoopArgAttr(-1, dtype), shape)];
        var carriedResults = Enumerable.Range(0, C).Select(i => fwd[fwd.Outputs[i].Node]).ToList();
        var dCarry = carriedResults.Select(r => Arg(r.Shape, r.DType)).ToList();
        var capturedNeeding = Enumerable.Range(C, K).Where(i => needIn[i] && argOf.ContainsKey(i)).ToList();
        var dCaptured = capturedNeeding.Select(i => Arg(argOf[i].Shape, argOf[i].DType)).ToList();

        // Sources: the carried arguments (earlier iterations need their gradient), and captured and stacked arguments
        // whose loop input needs one.
        bool Source(Node n) => n.Op == Op.LoopArg && n.A<LoopArgAttr>().Index is var i && (i < C || needIn[i]);
        var needs = Autodiff.Needs(fwd.Nodes, Source);
        var seeds = new Dictionary<int, int>();
        for (int i = 0; i < C; i++)
        {
            var r = carriedResults[i].Id;
            if (!needs.Contains(r)) continue;
            b.Src = loopNode.Src;
            seeds[r] = seeds.TryGetValue(r, out var prev) ? b.Binary(Op.Add, prev, dCarry[i].Id) : dCarry[i].Id;
        }
        var grads = Autodiff.Backprop(b, fwd.Nodes, needs, seeds);
        int GradOrZero(Node arg) => grads.TryGetValue(arg.Id, out var d) ? d : b.Fill(0, arg.Shape);

        var outputs = new List<GraphOutput>();
        for (int i = 0; i < C; i++) outputs.Add(new GraphOutput(OutputRole.Carried, argOf.TryGetValue(i, out var a) ? GradOrZero(a) : b.Fill(0, carriedResults[i].Shape), i));
        for (int j = 0; j < capturedNeeding.Count; j++)
        {
            var a = argOf[capturedNeeding[j]];
            var acc = grads.TryGetValue(a.Id, out var d) ? b.Binary(Op.Add, dCaptured[j].Id, d) : dCaptured[j].Id;
            outputs.Add(new GraphOutput(OutputRole.Carried, acc, C + j));
        }
        var stackedNeeding = Enumerable.Range(C + K, S).Where(i => needIn[i]).ToList();
        for (int j = 0; j < stackedNeeding.Count; j++)
            outputs.Add(new GraphOutput(OutputRole.Stacked, argOf.TryGetValue(stackedNeeding[j], out var a) ? GradOrZero(a) : b.Fill(0, StackedSlice(g[loopNode.Inputs[stackedNeeding[j]]])), j));

        // ── what the backward body reads of the forward iteration: carried values always, activations unless recomputed ──
        var reachable = Reachable(b, outputs);
        var readByBackward = new HashSet<int>(b.Nodes.Where(x => x.Id >= firstNew && reachable.Contains(x.Id)).SelectMany(x => x.Inputs).Concat(outputs.Select(o => o.Node)));
        var saved = f.Recompute ? new List<int>()
            : fwd.Nodes.Where(n => n.Op != Op.LoopArg && readByBackward.Contains(n.Id) && !Cheap(n)).Select(n => n.Id).ToList();

        // Forward arguments and saved nodes become arguments of the backward body (same ids, so users are unchanged).
        var order = new Dictionary<int, int>();   // backward body node id → backward loop input index
        var inputs = new List<int>();
        var fwdStackedOut = new List<int>();      // forward body nodes the forward loop now also stacks
        int AddInput(int mainNode) { inputs.Add(mainNode); return inputs.Count - 1; }
        // Carried: dCarry, then the captured accumulators (zero to start).
        for (int i = 0; i < C; i++) order[dCarry[i].Id] = AddInput(resultGrads.TryGetValue(i, out var dy) ? dy : g.Fill(0, g[loopNode.Inputs[i]].Shape));
        for (int j = 0; j < capturedNeeding.Count; j++) order[dCaptured[j].Id] = AddInput(g.Fill(0, g[loopNode.Inputs[capturedNeeding[j]]].Shape));
        int carriedCount = inputs.Count;
        // Captured: the forward's captured inputs.
        foreach (var i in Enumerable.Range(C, K).Where(argOf.ContainsKey)) order[argOf[i].Id] = AddInput(loopNode.Inputs[i]);
        int capturedCount = inputs.Count - carriedCount;
        // Stacked: the forward's stacked inputs, then the carried history and the saved activations, as forward results.
        foreach (var i in Enumerable.Range(C + K, S).Where(argOf.ContainsKey)) order[argOf[i].Id] = AddInput(loopNode.Inputs[i]);
        var historyOf = new List<(int BodyNode, int ResultIndex)>();
        int existingStacked = fwd.Outputs.Count - C;
        foreach (var i in Enumerable.Range(0, C).Where(argOf.ContainsKey))
        {
            historyOf.Add((argOf[i].Id, existingStacked + fwdStackedOut.Count));
            fwdStackedOut.Add(argOf[i].Id);
        }
        foreach (var s in saved)
        {
            historyOf.Add((s, existingStacked + fwdStackedOut.Count));
            fwdStackedOut.Add(s);
        }

        // The forward loop, saving the history: same id, its body's outputs extended.
        var fwdOutputs = fwd.Outputs.Concat(fwdStackedOut.Select((n, j) => new GraphOutput(OutputRole.Stacked, n, existingStacked + j))).ToList();
        var newForward = f with { Body = fwd.WithNodes(fwd.Nodes, fwdOutputs) };
        g.Replace(new Node(loopNode.Id, loopNode.Op, loopNode.Inputs, loopNode.DType, loopNode.Shape, newForward, loopNode.Src));
        foreach (var (bodyNode, resultIndex) in historyOf)
        {
            g.Src = loopNode.Src;
            order[bodyNode] = AddInput(g.Add(Op.LoopOut, new[] { loopNode.Id }, new LoopOutAttr(C + resultIndex)));
        }

        // The backward body's nodes: arguments renumbered, saved nodes turned into arguments, the rest kept if used.
        var keep = Reachable(b, outputs);
        foreach (var id in order.Keys) keep.Add(id);
        var nodes = new List<Node>();
        foreach (var n in b.Nodes)
        {
            if (!keep.Contains(n.Id)) continue;
            if (order.TryGetValue(n.Id, out var index)) nodes.Add(new Node(n.Id, Op.LoopArg, Array.Empty<int>(), n.DType, n.Shape, new LoopArgAttr(index, n.DType), n.Src));
            else nodes.Add(n);
        }
        // Saved nodes are arguments now: whatever only fed them is gone.
        var live = Reachable(nodes, outputs);
        nodes = nodes.Where(n => live.Contains(n.Id) || n.Op == Op.LoopArg).ToList();
        var body = new Graph(GraphKind.Body, nodes, outputs, Array.Empty<ParamDecl>(), Array.Empty<InputDecl>(), Array.Empty<Constraint>());
        int stackedCount = inputs.Count - carriedCount - capturedCount;
        g.Src = loopNode.Src;
        var backward = g.Add(Op.Loop, inputs.ToArray(), new LoopAttr(f.Label + "ᵀ", f.Count, body, carriedCount, capturedCount, stackedCount, Reverse: !f.Reverse));

        // ── gradients of the forward loop's inputs: the backward loop's results ──
        var result = new int?[loopNode.Inputs.Length];
        for (int i = 0; i < C; i++) if (needIn[i]) result[i] = g.Add(Op.LoopOut, new[] { backward }, new LoopOutAttr(i));
        for (int j = 0; j < capturedNeeding.Count; j++) result[capturedNeeding[j]] = g.Add(Op.LoopOut, new[] { backward }, new LoopOutAttr(C + j));
        for (int j = 0; j < stackedNeeding.Count; j++) result[stackedNeeding[j]] = g.Add(Op.LoopOut, new[] { backward }, new LoopOutAttr(carriedCount + j));
        return result;
    }

    /// <summary>Values the backward body recomputes rather than saves: constants, ranges and dropout masks.</summary>
    private static bool Cheap(Node n) => n.Op is Op.Fill or Op.Arange or Op.DropoutMask;

    private static Sym[] StackedSlice(Node stackedInput) => stackedInput.Shape.Skip(1).ToArray();

    private static HashSet<int> Reachable(GraphBuilder b, IEnumerable<GraphOutput> outputs) => Reachable(b.Nodes, outputs);

    private static HashSet<int> Reachable(IReadOnlyList<Node> nodes, IEnumerable<GraphOutput> outputs)
    {
        var byId = nodes.ToDictionary(n => n.Id);
        var live = new HashSet<int>(outputs.Select(o => o.Node));
        for (int i = nodes.Count - 1; i >= 0; i--)
            if (live.Contains(nodes[i].Id))
                foreach (var input in nodes[i].Inputs) live.Add(input);
        return live;
    }
}

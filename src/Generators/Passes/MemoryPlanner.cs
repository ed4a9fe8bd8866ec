using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Liveness over the kernel schedule gives every materialised tensor an arena slot; slots are reused
/// when a dead tensor's size is symbolically equal (or provably larger), so offsets and the arena size
/// are formulas of the bound symbols (B, T, hyperparameters). Reshapes and TensorReplicate alias their input, and so
/// does a TensorReduce that can sum in place (see InPlace); a weight
/// gradient whose kernel can accumulate is written straight into the gradient slab.
/// A loop's body is planned on its own: its arguments live in the loop's inputs (sliced at the iteration for
/// stacked ones), its results in the loop's results, each carried value in two buffers it alternates between, and
/// its intermediates in arenas of their own. Those arenas are scratch space of the enclosing graph, live only
/// while the loop runs; the loop's results get their slots when it starts (a stacked result holds one slice per
/// iteration, so saved activations are a formula of the count).
/// </summary>
internal static class MemoryPlanner
{
    private const long SlotElements = 8;

    public static Graph Run(Graph g)
    {
        // Bodies first: a loop's scratch size is its body's arenas.
        if (g.Nodes.Any(n => n.Op == Op.Loop))
            g = g.WithNodes(g.Nodes.Select(n => n.Attr is LoopAttr loop
                ? new Node(n.Id, n.Op, n.Inputs, n.DType, n.Shape, loop with { Body = Run(loop.Body) }, n.Src) : n).ToList(), g.Outputs)
                .With(g.Get<FusionPlan>());
        return g.With(Plan(g));
    }

    private static MemoryPlan Plan(Graph g)
    {
        var groups = g.Groups!;
        var gradOf = g.Outputs.Where(o => o.Role == OutputRole.ParamGrad).GroupBy(o => o.Node).ToDictionary(x => x.Key, x => x.ToList());
        var users = g.Users();
        var outputNodes = new HashSet<int>(g.Outputs.Select(o => o.Node));
        bool isBody = g.Kind == GraphKind.Body;
        // A body writes each result straight into the loop's result (the first time a node is one).
        var resultOf = new Dictionary<int, int>();
        if (isBody)
            for (int i = 0; i < g.Outputs.Count; i++)
                if (!resultOf.ContainsKey(g.Outputs[i].Node)) resultOf[g.Outputs[i].Node] = i;
        var projections = g.Nodes.Where(n => n.Op == Op.LoopOut).GroupBy(n => n.Inputs[0]).ToDictionary(x => x.Key, x => x.ToList());

        // Storage owner of each materialised node (aliases resolve to their source).
        var owner = new Dictionary<int, int>();
        var placements = new Dictionary<int, Placement>();
        var aliases = new HashSet<int>();
        BufferKind BufferOf(Node n) => n.DType == DType.I32 ? BufferKind.IntArena : g.IsLow(n.Id) ? BufferKind.LowArena : BufferKind.Arena;
        foreach (var gr in groups)
        {
            var n = g[gr.Root];
            if (gr.Kind == GroupKind.Const) { placements[n.Id] = new Placement(BufferKind.Fused, Sym.Zero); continue; }
            if (n.Op is Op.Reshape or Op.TensorReplicate || (n.Op == Op.TensorReduce && InPlace(n)))
            {
                owner[n.Id] = owner[n.Inputs[0]];
                aliases.Add(n.Id);
                continue;
            }
            owner[n.Id] = n.Id;
        }

        // TensorReduce sums into its input's buffer when nothing else reads that buffer: the input is computed by a kernel
        // of this graph into a slot of its own, has no other reader and is neither an output nor a parameter gradient.
        bool InPlace(Node n)
        {
            var x = g[n.Inputs[0]];
            return owner.TryGetValue(x.Id, out var o) && o == x.Id && users[x.Id].Count == 1
                && x.Op is not (Op.Param or Op.Input or Op.LoopArg or Op.LoopOut or Op.Loop) && !IsParamCast(g, x)
                && !outputNodes.Contains(x.Id) && !outputNodes.Contains(n.Id) && !gradOf.ContainsKey(x.Id) && !gradOf.ContainsKey(n.Id)
                && !resultOf.ContainsKey(x.Id) && !resultOf.ContainsKey(n.Id) && BufferOf(x) == BufferOf(n);
        }

        // Last kernel index that reads each owner.
        var lastUse = new Dictionary<int, int>();
        for (int k = 0; k < groups.Count; k++)
            foreach (var i in groups[k].ExternalInputs)
                if (owner.TryGetValue(i, out var o)) lastUse[o] = k;
        foreach (var o in outputNodes) if (owner.TryGetValue(o, out var ow)) lastUse[ow] = int.MaxValue;
        foreach (var kv in owner) if (kv.Key != kv.Value && outputNodes.Contains(kv.Key)) lastUse[kv.Value] = int.MaxValue;

        var slots = new List<(Sym Size, BufferKind Buffer)>();
        var slotOf = new Dictionary<int, int>();
        var free = new List<int>();
        int Allocate(Sym elements, BufferKind buffer)
        {
            // Slots are whole multiples of 8 elements (32 bytes in fp32, 16 in bf16/fp16), so every tensor in an arena
            // starts 16-byte aligned: the CUDA kernels' vector loads and cuBLASLt's fast paths depend on it.
            var size = elements.RoundUpTo(SlotElements);
            int slot = -1;
            foreach (var f in free)
                if (slots[f].Buffer == buffer && slots[f].Size.Equals(size)) { slot = f; break; }
            if (slot < 0)
                foreach (var f in free)
                    if (slots[f].Buffer == buffer && Sym.ProvablyGreaterOrEqual(slots[f].Size, size)) { slot = f; break; }
            if (slot >= 0) free.Remove(slot);
            else { slot = slots.Count; slots.Add((size, buffer)); }
            return slot;
        }

        // A body's carried values alternate between two buffers each, for the whole loop.
        var carriedSlots = new List<(BufferKind Buffer, int Ping, int Pong)>();
        if (isBody)
            foreach (var o in g.Outputs.Where(o => o.Role == OutputRole.Carried))
            {
                var arg = g.Nodes.FirstOrDefault(n => n.Op == Op.LoopArg && n.A<LoopArgAttr>().Index == o.Param);
                var like = arg ?? g[o.Node];
                var buffer = BufferOf(like);
                carriedSlots.Add((buffer, Allocate(Shapes.Numel(like.Shape), buffer), Allocate(Shapes.Numel(like.Shape), buffer)));
            }

        var loopSlots = new Dictionary<int, (int F, int L, int I)>();
        for (int k = 0; k < groups.Count; k++)
        {
            var gr = groups[k];
            var n = g[gr.Root];
            if (gr.Kind == GroupKind.Const || aliases.Contains(n.Id) || n.Op == Op.LoopOut) continue;
            if (n.Op == Op.Param) { placements[n.Id] = new Placement(BufferKind.Params, Sym.Zero, Param: n.A<ParamAttr>().Index); continue; }
            if (n.Op == Op.Input) { placements[n.Id] = new Placement(BufferKind.Input, Sym.Zero, InputName: n.Name); continue; }
            if (n.Op == Op.LoopArg) { placements[n.Id] = new Placement(BufferKind.LoopIn, Sym.Zero, Param: n.A<LoopArgAttr>().Index); continue; }
            // A parameter's low-precision copy is the shadow slab the optimizer keeps: no kernel, no slot.
            if (IsParamCast(g, n)) { placements[n.Id] = new Placement(BufferKind.LowParams, Sym.Zero, Param: g[n.Inputs[0]].A<ParamAttr>().Index); continue; }
            if (isBody && resultOf.TryGetValue(n.Id, out var resultIndex) && gr.Kind.RunsKernel())
            {
                placements[n.Id] = new Placement(BufferKind.LoopOut, Sym.Zero, Param: resultIndex);
                FreeInputs(k, gr);
                continue;
            }
            if (n.Op == Op.Loop)
            {
                // Results first (the loop writes them while it reads its inputs), then the body's scratch, dead when the loop ends.
                var body = n.A<LoopAttr>().Body;
                foreach (var p in projections.TryGetValue(n.Id, out var ps) ? ps : new List<Node>())
                {
                    var result = body[body.Outputs[p.A<LoopOutAttr>().Index].Node];
                    // Only a stacked result is written in place by the body's kernels (a carried one is copied out at the end),
                    // so only it can accumulate straight into the gradient slab.
                    int index = p.A<LoopOutAttr>().Index;
                    bool direct = index >= n.A<LoopAttr>().Carried && body.Plan!.Placements.TryGetValue(result.Id, out var rp) && rp.Buffer == BufferKind.LoopOut && rp.Param == index;
                    if (gradOf.TryGetValue(p.Id, out var pg) && pg.Count == 1 && users[p.Id].Count == 0 && direct && OpRegistry.Of(result.Op).CanAccumulate && !g.IsLow(p.Id))
                    {
                        placements[p.Id] = new Placement(BufferKind.Grads, Sym.Zero, Param: pg[0].Param);
                        continue;
                    }
                    slotOf[p.Id] = Allocate(Shapes.Numel(p.Shape), BufferOf(p));
                    if (!lastUse.ContainsKey(p.Id)) free.Add(slotOf[p.Id]);
                }
                var plan = body.Plan!;
                var scratch = (F: Allocate(plan.FloatArenaElements, BufferKind.Arena), L: Allocate(plan.LowArenaElements, BufferKind.LowArena), I: Allocate(plan.IntArenaElements, BufferKind.IntArena));
                loopSlots[n.Id] = scratch;
                FreeInputs(k, gr);
                free.Add(scratch.F); free.Add(scratch.L); free.Add(scratch.I);
                continue;
            }
            if (gradOf.TryGetValue(n.Id, out var gl) && gl.Count == 1 && users[n.Id].Count == 0 && OpRegistry.Of(n.Op).CanAccumulate && !g.IsLow(n.Id))
            {
                placements[n.Id] = new Placement(BufferKind.Grads, Sym.Zero, Param: gl[0].Param);
                continue;
            }
            var slot = Allocate(Shapes.Numel(n.Shape), BufferOf(n));
            slotOf[n.Id] = slot;
            FreeInputs(k, gr);
            if (!lastUse.ContainsKey(n.Id)) free.Add(slot); // dead on arrival (result unused)
        }

        // Inputs whose last reader is kernel k are free once it has run (never reused by its own output).
        void FreeInputs(int k, FusionGroup gr)
        {
            foreach (var i in gr.ExternalInputs)
                if (owner.TryGetValue(i, out var o) && slotOf.TryGetValue(o, out var s) && lastUse.TryGetValue(o, out var lu) && lu == k && !free.Contains(s))
                    free.Add(s);
        }

        // Slot offsets: prefix sums per buffer.
        var offsets = new Sym[slots.Count];
        Sym fEnd = Sym.Zero, lEnd = Sym.Zero, iEnd = Sym.Zero;
        for (int s = 0; s < slots.Count; s++)
        {
            switch (slots[s].Buffer)
            {
                case BufferKind.Arena: offsets[s] = fEnd; fEnd += slots[s].Size; break;
                case BufferKind.LowArena: offsets[s] = lEnd; lEnd += slots[s].Size; break;
                default: offsets[s] = iEnd; iEnd += slots[s].Size; break;
            }
        }
        foreach (var kv in slotOf)
            placements[kv.Key] = new Placement(slots[kv.Value].Buffer, offsets[kv.Value]);
        // Aliases share their owner's placement.
        foreach (var gr in groups)
        {
            var n = g[gr.Root];
            if (aliases.Contains(n.Id)) placements[n.Id] = placements[owner[n.Id]];
        }
        var loops = loopSlots.ToDictionary(kv => kv.Key, kv => new LoopScratch(offsets[kv.Value.F], offsets[kv.Value.L], offsets[kv.Value.I]));
        var carried = carriedSlots.Select(c => new CarriedBuffer(c.Buffer, offsets[c.Ping], offsets[c.Pong])).ToList();
        return new MemoryPlan(placements, fEnd, lEnd, iEnd, slots, loops, carried);
    }

    /// <summary>A cast of a parameter: its value is the parameter's low-precision shadow.</summary>
    public static bool IsParamCast(Graph g, Node n) => n.Op == Op.Cast && g[n.Inputs[0]].Op == Op.Param;
}

using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// Liveness over the kernel schedule gives every materialised tensor an arena slot; slots are reused
/// when a dead tensor's size is symbolically equal (or provably larger), so offsets and the arena size
/// are formulas of the bound symbols (B, T, hyperparameters). Reshapes alias their input; a weight
/// gradient whose kernel can accumulate is written straight into the gradient slab.
/// </summary>
internal static class MemoryPlanner
{
    public static Graph Run(Graph g)
    {
        var groups = g.Groups!;
        var groupOfRoot = groups.ToDictionary(x => x.Root);
        var gradOf = g.Outputs.Where(o => o.Role == OutputRole.ParamGrad).GroupBy(o => o.Node).ToDictionary(x => x.Key, x => x.ToList());
        var users = g.Users();
        var outputNodes = new HashSet<int>(g.Outputs.Select(o => o.Node));

        // Storage owner of each materialised node (aliases resolve to their source).
        var owner = new Dictionary<int, int>();
        var placements = new Dictionary<int, Placement>();
        foreach (var gr in groups)
        {
            var n = g[gr.Root];
            if (gr.Kind == GroupKind.Const) { placements[n.Id] = new Placement(BufferKind.Fused, Sym.Zero); continue; }
            if (n.Op == Op.Reshape) { owner[n.Id] = owner[n.Inputs[0]]; continue; }
            owner[n.Id] = n.Id;
        }

        // Last kernel index that reads each owner.
        var lastUse = new Dictionary<int, int>();
        for (int k = 0; k < groups.Count; k++)
            foreach (var i in groups[k].ExternalInputs)
                if (owner.TryGetValue(i, out var o)) lastUse[o] = k;
        foreach (var o in outputNodes) if (owner.TryGetValue(o, out var ow)) lastUse[ow] = int.MaxValue;
        foreach (var kv in owner) if (kv.Key != kv.Value && outputNodes.Contains(kv.Key)) lastUse[kv.Value] = int.MaxValue;

        const long SlotElements = 8;
        var slots = new List<(Sym Size, BufferKind Buffer)>();
        var slotOf = new Dictionary<int, int>();
        var free = new List<int>();
        for (int k = 0; k < groups.Count; k++)
        {
            var gr = groups[k];
            var n = g[gr.Root];
            if (gr.Kind == GroupKind.Const || n.Op == Op.Reshape) continue;
            if (n.Op == Op.Param) { placements[n.Id] = new Placement(BufferKind.Params, Sym.Zero, Param: n.A<ParamAttr>().Index); continue; }
            if (n.Op == Op.Input) { placements[n.Id] = new Placement(BufferKind.Input, Sym.Zero, InputName: n.Name); continue; }
            // A parameter's low-precision copy is the shadow slab the optimizer keeps: no kernel, no slot.
            if (IsParamCast(g, n)) { placements[n.Id] = new Placement(BufferKind.LowParams, Sym.Zero, Param: g[n.Inputs[0]].A<ParamAttr>().Index); continue; }
            if (gradOf.TryGetValue(n.Id, out var gl) && gl.Count == 1 && users[n.Id].Count == 0 && OpRegistry.Of(n.Op).CanAccumulate && !g.IsLow(n.Id))
            {
                placements[n.Id] = new Placement(BufferKind.Grads, Sym.Zero, Param: gl[0].Param);
                continue;
            }
            // Slots are whole multiples of 8 elements (32 bytes in fp32, 16 in bf16/fp16), so every tensor in an arena
            // starts 16-byte aligned: the CUDA kernels' vector loads and cuBLASLt's fast paths depend on it.
            var size = Shapes.Numel(n.Shape).RoundUpTo(SlotElements);
            var buffer = n.DType == DType.I32 ? BufferKind.IntArena : g.IsLow(n.Id) ? BufferKind.LowArena : BufferKind.Arena;
            int slot = -1;
            foreach (var f in free)
                if (slots[f].Buffer == buffer && slots[f].Size.Equals(size)) { slot = f; break; }
            if (slot < 0)
                foreach (var f in free)
                    if (slots[f].Buffer == buffer && Sym.ProvablyGreaterOrEqual(slots[f].Size, size)) { slot = f; break; }
            if (slot >= 0) free.Remove(slot);
            else { slot = slots.Count; slots.Add((size, buffer)); }
            slotOf[n.Id] = slot;
            // Inputs whose last reader is this kernel are free once it has run (never reused by its own output).
            foreach (var i in gr.ExternalInputs)
                if (owner.TryGetValue(i, out var o) && slotOf.TryGetValue(o, out var s) && lastUse.TryGetValue(o, out var lu) && lu == k && !free.Contains(s))
                    free.Add(s);
            if (!lastUse.ContainsKey(n.Id)) free.Add(slot); // dead on arrival (result unused)
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
            if (n.Op == Op.Reshape) placements[n.Id] = placements[owner[n.Id]];
        }
        return g.With(new MemoryPlan(placements, fEnd, lEnd, iEnd, slots));
    }

    /// <summary>A cast of a parameter: its value is the parameter's low-precision shadow.</summary>
    public static bool IsParamCast(Graph g, Node n) => n.Op == Op.Cast && g[n.Inputs[0]].Op == Op.Param;
}

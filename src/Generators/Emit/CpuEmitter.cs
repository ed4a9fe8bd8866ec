using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Kiln.Generators.Common;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Emit;

/// <summary>
/// Emits the CPU program of one graph: a run method that binds sizes, lays out the arena from the
/// memory plan and calls one kernel per fusion group, plus the generated SIMD kernels of the fused
/// elementwise groups. Matmuls, reductions, movement and indexing call the runtime's kernels.
/// </summary>
internal sealed class CpuEmitter
{
    private const string K = "global::Kiln.Runtime.Cpu.Kernels";
    private readonly Graph _g;
    private readonly SymbolNames _names;
    private readonly string _prefix;
    private readonly CodeWriter _kernels;
    private readonly Dictionary<int, FusionGroup> _groupOfRoot;
    /// <summary>For a loop body: the enclosing graph's emitter and the loop node (null for a program).</summary>
    private readonly CpuEmitter? _outer;
    private readonly Node? _loop;
    /// <summary>The prefix of this graph's offset locals (<c>o</c>, or <c>l{loop}o</c> in a body).</summary>
    private readonly string _o;

    public CpuEmitter(Graph g, SymbolNames names, string prefix, CodeWriter kernels) : this(g, names, prefix, kernels, null, null) { }

    private CpuEmitter(Graph g, SymbolNames names, string prefix, CodeWriter kernels, CpuEmitter? outer, Node? loop)
    {
        _g = g; _names = names; _prefix = prefix; _kernels = kernels; _outer = outer; _loop = loop;
        _o = loop is null ? "o" : L(loop) + "o";
        _groupOfRoot = g.Groups!.ToDictionary(x => x.Root);
        _usesLowParams = g.Plan!.Placements.Values.Any(p => p.Buffer == BufferKind.LowParams);
    }

    private readonly bool _usesLowParams;

    /// <summary>The prefix of a loop's locals.</summary>
    private static string L(Node loop) => "l" + loop.Id.ToString(CultureInfo.InvariantCulture);

    /// <summary>Whether the tensor is stored in the low-precision arena (so a CPU store rounds it).</summary>
    private bool IsLowStore(int id) => Storage(id).Buffer == BufferKind.LowArena;

    private Placement P(int id) => _g.Plan!.Placements[id];

    private (string Array, string Offset) Buf(int id)
    {
        var (a, o, _) = Storage(id);
        return (a, o);
    }

    /// <summary>The array and element offset holding node <paramref name="id"/>, and the buffer it is really in (a body's loop input or result resolved).</summary>
    private (string Array, string Offset, BufferKind Buffer) Storage(int id)
    {
        var p = P(id);
        return p.Buffer switch
        {
            BufferKind.Arena => ("A", _o + id, p.Buffer),
            BufferKind.LowArena => ("LA", _o + id, p.Buffer),
            BufferKind.IntArena => ("IA", _o + id, p.Buffer),
            BufferKind.Params => ("P", "_po[" + p.Param + "]", p.Buffer),
            BufferKind.LowParams => ("LP", "_po[" + p.Param + "]", p.Buffer),
            BufferKind.Grads => ("G", "_po[" + p.Param + "]", p.Buffer),
            BufferKind.Input => ("in_" + p.InputName, "0L", p.Buffer),
            BufferKind.LoopIn => LoopInput(p.Param),
            BufferKind.LoopOut => LoopResult(p.Param),
            _ => throw new InvalidOperationException($"%{id} has no storage"),
        };
    }

    private static string ArrayOf(BufferKind b) => b switch { BufferKind.Arena => "A", BufferKind.LowArena => "LA", _ => "IA" };

    /// <summary>In a body: loop input <paramref name="i"/> this iteration (the carried value's read buffer; a stacked input's slice).</summary>
    private (string, string, BufferKind) LoopInput(int i)
    {
        var loop = _loop!.A<LoopAttr>();
        if (i < loop.Carried) return (ArrayOf(_g.Plan!.Carried[i].Buffer), L(_loop) + "cr" + i, _g.Plan.Carried[i].Buffer);
        var outer = _outer!.Storage(_loop.Inputs[i]);
        if (i < loop.Carried + loop.Captured) return outer;
        var arg = _g.Nodes.First(n => n.Op == Op.LoopArg && n.A<LoopArgAttr>().Index == i);
        return (outer.Array, $"{outer.Offset} + {L(_loop)}l * {N(arg.Shape)}", outer.Buffer);
    }

    /// <summary>In a body: loop result <paramref name="i"/> (the carried value's write buffer; this iteration's slice of a stacked result).</summary>
    private (string, string, BufferKind) LoopResult(int i)
    {
        var loop = _loop!.A<LoopAttr>();
        if (i < loop.Carried) return (ArrayOf(_g.Plan!.Carried[i].Buffer), L(_loop) + "cw" + i, _g.Plan.Carried[i].Buffer);
        var projection = _outer!._g.Nodes.First(n => n.Op == Op.LoopOut && n.Inputs[0] == _loop.Id && n.A<LoopOutAttr>().Index == i);
        var outer = _outer.Storage(projection.Id);
        return (outer.Array, $"{outer.Offset} + {L(_loop)}l * {N(_g[_g.Outputs[i].Node].Shape)}", outer.Buffer);
    }

    private string S(Sym s) => _names.Sym(s);
    private string N(IEnumerable<Sym> dims) => S(Shapes.Numel(dims.ToList()));

    /// <summary>The statements of the run method after inputs and sizes are bound.</summary>
    public void EmitBody(CodeWriter w)
    {
        var plan = _g.Plan!;
        w.Line($"long arenaF = {S(plan.FloatArenaElements)}, arenaL = {S(plan.LowArenaElements)}, arenaI = {S(plan.IntArenaElements)};");
        w.Line("EnsureArena(arenaF, arenaL, arenaI);");
        w.Line("float[] A = _arenaF; float[] LA = _arenaL; int[] IA = _arenaI; float[] P = Params; float[] G = Grads;");
        // Low-precision tensors live in float arrays on the CPU; R (0 fp32, 1 bf16, 2 fp16) rounds them where a GPU stores 16 bits.
        w.Line("int R = LowRounding;");
        w.Line(_usesLowParams ? "float[] LP = LowParams;" : "float[] LP = P;");
        w.Line("_ = A; _ = LA; _ = IA; _ = P; _ = G; _ = LP; _ = R;");
        foreach (var kv in plan.Placements.Where(kv => kv.Value.Buffer is BufferKind.Arena or BufferKind.LowArena or BufferKind.IntArena).OrderBy(kv => kv.Key))
            w.Line($"long o{kv.Key} = {S(kv.Value.Offset)};");
        foreach (var gr in _g.Groups!)
            EmitGroup(w, gr);
    }

    private bool Accumulate(int id) => Storage(id).Buffer == BufferKind.Grads;

    private void Comment(CodeWriter w, FusionGroup gr)
    {
        var n = _g[gr.Root];
        var ops = string.Join(" + ", gr.Members.Select(m => _g[m].Op.ToString().ToLowerInvariant()));
        var src = n.Src.Line > 0 ? $" ← {System.IO.Path.GetFileName(n.Src.File)}:{n.Src.Line} {Trim(n.Src.Text)}" : "";
        w.Line($"// k{gr.Id} {gr.Kind.Text()} %{n.Id} = {ops} {IrPrinter.Type(n.DType, n.Shape)}{src}");
    }

    private static string Trim(string s)
    {
        s = s.Replace("\r", " ").Replace("\n", " ");
        return s.Length > 60 ? s.Substring(0, 57) + "..." : s;
    }

    private void EmitGroup(CodeWriter w, FusionGroup gr)
    {
        var n = _g[gr.Root];
        if (!gr.Kind.RunsKernel()) return;
        Comment(w, gr);
        switch (OpRegistry.Of(n.Op).Lowering)
        {
            case ElementwiseLowering: EmitElementwise(w, gr); return;
            case GemmLowering:
                EmitMatMul(w, new GemmPlan(_g, n), Accumulate(n.Id) ? "true" : "false");
                if (IsLowStore(n.Id)) { var (oa, oo) = Buf(n.Id); w.Line($"{K}.RoundLow({oa}, {oo}, {N(n.Shape)}, R);"); }
                return;
            case KernelLowering k: k.Cpu(new CpuKernelContext(w, _g, n, Buf, _names, Accumulate(n.Id), _loop is null ? null : L(_loop) + "l")); return;
            case RegionLowering: EmitLoop(w, n); return;
            case var other: throw new InvalidOperationException($"no CPU lowering for {n.Op} ({other})");
        }
    }

    /// <summary>
    /// A loop: its scratch offsets and carried buffers, the carried values copied in, then per iteration the body's
    /// kernels (with the iteration's slices of stacked inputs and results) and copies of results not written in place,
    /// then the final carried values copied out.
    /// </summary>
    private void EmitLoop(CodeWriter w, Node n)
    {
        var loop = n.A<LoopAttr>();
        var body = loop.Body;
        var bp = body.Plan!;
        var scratch = _g.Plan!.Loops[n.Id];
        var l = L(n);
        string Base(BufferKind b) => b switch { BufferKind.Arena => l + "f", BufferKind.LowArena => l + "h", _ => l + "i" };
        w.Line("{").Indent();
        w.Line($"long {l}n = {S(loop.Count)};");
        w.Line($"long {l}f = {S(scratch.Float)}, {l}h = {S(scratch.Low)}, {l}i = {S(scratch.Int)};");
        w.Line($"_ = {l}f; _ = {l}h; _ = {l}i;");
        foreach (var kv in bp.Placements.Where(kv => kv.Value.Buffer is BufferKind.Arena or BufferKind.LowArena or BufferKind.IntArena).OrderBy(kv => kv.Key))
            w.Line($"long {l}o{kv.Key} = {Base(kv.Value.Buffer)} + {S(kv.Value.Offset)};");
        for (int c = 0; c < bp.Carried.Count; c++)
        {
            var cb = bp.Carried[c];
            w.Line($"long {l}c{c}a = {Base(cb.Buffer)} + {S(cb.Ping)}, {l}c{c}b = {Base(cb.Buffer)} + {S(cb.Pong)};");
            var (ia, io, _) = Storage(n.Inputs[c]);
            Copy(w, (ia, io), (ArrayOf(cb.Buffer), $"{l}c{c}a"), Shapes.Numel(_g[n.Inputs[c]].Shape));
        }
        var inner = new CpuEmitter(body, _names, _prefix + "L" + n.Id.ToString(CultureInfo.InvariantCulture), _kernels, this, n);
        w.Open($"for (long {l}t = 0; {l}t < {l}n; {l}t++)");
        w.Line($"long {l}l = {(loop.Reverse ? $"{l}n - 1 - {l}t" : $"{l}t")};");
        for (int c = 0; c < bp.Carried.Count; c++)
            w.Line($"long {l}cr{c} = ({l}t & 1) == 0 ? {l}c{c}a : {l}c{c}b, {l}cw{c} = ({l}t & 1) == 0 ? {l}c{c}b : {l}c{c}a;");
        foreach (var gr in body.Groups!) inner.EmitGroup(w, gr);
        for (int i = 0; i < body.Outputs.Count; i++)
        {
            var node = body.Outputs[i].Node;
            if (bp.Placements[node] is { Buffer: BufferKind.LoopOut } pl && pl.Param == i) continue;
            var target = inner.LoopResult(i);
            if (bp.Placements[node].Buffer == BufferKind.Fused)
                w.Line($"{K}.Fill({target.Item1}, {target.Item2}, {N(body[node].Shape)}, {_names.Scalar(body[node].A<ScalarAttr>().Value)});");
            else Copy(w, inner.Buf(node), (target.Item1, target.Item2), Shapes.Numel(body[node].Shape));
        }
        w.Close();
        for (int c = 0; c < bp.Carried.Count; c++)
            foreach (var p in _g.Nodes.Where(x => x.Op == Op.LoopOut && x.Inputs[0] == n.Id && x.A<LoopOutAttr>().Index == c))
                if (_g.Plan.Placements.ContainsKey(p.Id))
                    Copy(w, (ArrayOf(bp.Carried[c].Buffer), $"(({l}n & 1) == 0 ? {l}c{c}a : {l}c{c}b)"), Buf(p.Id), Shapes.Numel(p.Shape));
        w.Close();
    }

    private void Copy(CodeWriter w, (string Array, string Offset) from, (string Array, string Offset) to, Sym count) =>
        w.Line($"global::System.Array.Copy({from.Array}, (int)({from.Offset}), {to.Array}, (int)({to.Offset}), (int)({S(count)}));");

    private void EmitMatMul(CodeWriter w, GemmPlan p, string acc)
    {
        var (aa, ao) = Buf(p.A.Id); var (ba, bo) = Buf(p.B.Id); var (ca, co) = Buf(p.C.Id);
        string T(bool t) => t ? "true" : "false";
        if (p.FoldsBatch)
        {
            // Batch dims of A fold into M: one GEMM over all rows.
            w.Line($"{K}.MatMul(false, {T(p.TransB)}, {S(p.Rows)}, {S(p.N)}, {S(p.K)}, {aa}, {ao}, {ba}, {bo}, {ca}, {co}, null, null, null, {acc});");
            return;
        }
        string Strides(Node x) => "new long[] { " + string.Join(", ", p.Strides(x).Select(s => s is null ? "0L" : S(s))) + " }";
        w.Line($"{K}.MatMul({T(p.TransA)}, {T(p.TransB)}, {S(p.M)}, {S(p.N)}, {S(p.K)}, {aa}, {ao}, {ba}, {bo}, {ca}, {co}, new long[] {{ {string.Join(", ", p.Batch.Select(S))} }}, {Strides(p.A)}, {Strides(p.B)}, {acc});");
    }

    // ───────────────────────────── fused elementwise kernels ─────────────────────────────

    private void EmitElementwise(CodeWriter w, FusionGroup gr)
    {
        var plan = new ElementwisePlan(_g, gr, _groupOfRoot);
        var root = plan.Root;
        var (inputs, consts, scalars, dims, bc) = (plan.Inputs, plan.Consts, plan.Scalars, plan.Dims, plan.Broadcast);
        int m = plan.Rank;
        bool acc = Accumulate(root.Id);
        bool round = IsLowStore(root.Id);

        var name = $"{_prefix}K{gr.Id}";
        var (oa, oo) = Buf(root.Id);
        var args = new List<string> { oa, oo };
        foreach (var i in inputs) { var (a, o) = Buf(i); args.Add(a); args.Add(o); }
        foreach (var c in consts) args.Add(_names.Scalar(_g[c].ScalarParam!));
        foreach (var s in scalars) args.Add(_names.Scalar(_g[s].ScalarParam!));
        args.AddRange(dims.Select(S));
        if (round) args.Add("R");
        w.Line($"{name}({string.Join(", ", args)});");

        // The kernel itself.
        var kw = _kernels;
        var ps = new List<string> { "float[] o", "long oo" };
        for (int k = 0; k < inputs.Count; k++) { ps.Add($"float[] x{k}"); ps.Add($"long xo{k}"); }
        for (int c = 0; c < consts.Count; c++) ps.Add($"float c{c}");
        for (int s = 0; s < scalars.Count; s++) ps.Add($"float q{s}");
        for (int d = 0; d < m; d++) ps.Add($"long d{d}");
        if (round) ps.Add("int round");
        kw.Line($"/// <summary>{string.Join(" + ", gr.Members.Select(x => _g[x].Op.ToString().ToLowerInvariant()))} over {IrPrinter.Type(root.DType, root.Shape)}.</summary>");
        kw.Open($"private static void {name}({string.Join(", ", ps)})");
        kw.Line($"long rows = {(m == 1 ? "1" : string.Join(" * ", Enumerable.Range(0, m - 1).Select(d => "d" + d)))};");
        kw.Line($"long inner = d{m - 1};");
        // Element strides of each input along the collapsed axes (0 where it broadcasts).
        for (int k = 0; k < inputs.Count; k++)
            for (int d = 0; d < m - 1; d++)
            {
                var later = Enumerable.Range(d + 1, m - d - 1).Where(e => !bc[k][e]).Select(e => "d" + e).ToList();
                kw.Line($"long st{k}_{d} = {(bc[k][d] ? "0" : later.Count == 0 ? "1" : string.Join(" * ", later))};");
            }
        kw.Open("global::Kiln.Runtime.Cpu.KilnParallel.For(rows, inner, (lo, hi) =>");
        kw.Line("ref float ro = ref global::System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(o);");
        for (int k = 0; k < inputs.Count; k++)
            kw.Line($"ref float r{k} = ref global::System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(x{k});");
        for (int c = 0; c < consts.Count; c++) kw.Line($"var vc{c} = global::System.Runtime.Intrinsics.Vector256.Create(c{c});");
        for (int s = 0; s < scalars.Count; s++) kw.Line($"var vq{s} = global::System.Runtime.Intrinsics.Vector256.Create(q{s});");
        kw.Open("for (long r = lo; r < hi; r++)");
        kw.Line("long ob = oo + r * inner;");
        if (m > 1)
        {
            kw.Line("long rem = r;");
            for (int d = m - 2; d >= 0; d--)
            {
                kw.Line($"long i{d} = {(d == 0 ? "rem" : $"rem % d{d}")};");
                if (d > 0) kw.Line($"rem /= d{d};");
            }
        }
        for (int k = 0; k < inputs.Count; k++)
        {
            var terms = Enumerable.Range(0, m - 1).Select(d => $"i{d} * st{k}_{d}").ToList();
            kw.Line($"long b{k} = xo{k}{(terms.Count > 0 ? " + " + string.Join(" + ", terms) : "")};");
            if (bc[k][m - 1])
            {
                kw.Line($"float e{k}s = global::System.Runtime.CompilerServices.Unsafe.Add(ref r{k}, (nint)b{k});");
                kw.Line($"var v{k}s = global::System.Runtime.Intrinsics.Vector256.Create(e{k}s);");
            }
        }
        kw.Line("long j = 0;");
        kw.Open("for (; j <= inner - 8; j += 8)");
        for (int k = 0; k < inputs.Count; k++)
            if (!bc[k][m - 1]) kw.Line($"var v{k} = global::System.Runtime.Intrinsics.Vector256.LoadUnsafe(ref r{k}, (nuint)(b{k} + j));");
        var vres = Expression(gr, inputs, consts, scalars, bc, m, vector: true, kw);
        if (round) vres = $"global::Kiln.Runtime.Cpu.V.RoundLow({vres}, round)";
        if (acc) vres = $"({vres} + global::System.Runtime.Intrinsics.Vector256.LoadUnsafe(ref ro, (nuint)(ob + j)))";
        kw.Line($"global::System.Runtime.Intrinsics.Vector256.StoreUnsafe({vres}, ref ro, (nuint)(ob + j));");
        kw.Close();
        kw.Open("for (; j < inner; j++)");
        for (int k = 0; k < inputs.Count; k++)
            if (!bc[k][m - 1]) kw.Line($"float e{k} = global::System.Runtime.CompilerServices.Unsafe.Add(ref r{k}, (nint)(b{k} + j));");
        var sres = Expression(gr, inputs, consts, scalars, bc, m, vector: false, kw);
        if (round) sres = $"global::Kiln.Runtime.Cpu.S.RoundLow({sres}, round)";
        kw.Line(acc ? $"global::System.Runtime.CompilerServices.Unsafe.Add(ref ro, (nint)(ob + j)) += {sres};"
                    : $"global::System.Runtime.CompilerServices.Unsafe.Add(ref ro, (nint)(ob + j)) = {sres};");
        kw.Close();
        kw.Close();
        kw.Dedent(); kw.Line("});");
        kw.Close();
        kw.Line();
    }

    /// <summary>Writes one temporary per fused member and returns the root's value expression.</summary>
    private string Expression(FusionGroup gr, List<int> inputs, List<int> consts, List<int> scalars, List<List<bool>> bc, int m, bool vector, CodeWriter kw)
    {
        string Operand(int id)
        {
            int k = inputs.IndexOf(id);
            if (k >= 0) return vector ? (bc[k][m - 1] ? $"v{k}s" : $"v{k}") : (bc[k][m - 1] ? $"e{k}s" : $"e{k}");
            int c = consts.IndexOf(id);
            if (c >= 0) return vector ? $"vc{c}" : $"c{c}";
            return (vector ? "t" : "u") + id;
        }
        foreach (var id in gr.Members)
        {
            var n = _g[id];
            var lowering = (ElementwiseLowering)OpRegistry.Of(n.Op).Lowering;
            var text = vector ? lowering.CpuVector : lowering.CpuScalar;
            for (int i = 0; i < n.Inputs.Length; i++) text = text.Replace("{" + i + "}", Operand(n.Inputs[i]));
            int s = scalars.IndexOf(id);
            if (s >= 0) text = text.Replace("{s}", vector ? $"vq{s}" : $"q{s}");
            text = text.Replace("V.", "global::Kiln.Runtime.Cpu.V.").Replace("S.", "global::Kiln.Runtime.Cpu.S.");
            kw.Line($"var {(vector ? "t" : "u")}{id} = {text};");
        }
        return (vector ? "t" : "u") + gr.Root;
    }
}

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

    public CpuEmitter(Graph g, SymbolNames names, string prefix, CodeWriter kernels)
    {
        _g = g; _names = names; _prefix = prefix; _kernels = kernels;
        _groupOfRoot = g.Groups!.ToDictionary(x => x.Root);
        _usesLowParams = g.Plan!.Placements.Values.Any(p => p.Buffer == BufferKind.LowParams);
    }

    private readonly bool _usesLowParams;

    /// <summary>Whether the tensor is stored in the low-precision arena (so a CPU store rounds it).</summary>
    private bool IsLowStore(int id) => P(id).Buffer == BufferKind.LowArena;

    private Placement P(int id) => _g.Plan!.Placements[id];

    private (string Array, string Offset) Buf(int id)
    {
        var p = P(id);
        return p.Buffer switch
        {
            BufferKind.Arena => ("A", "o" + id),
            BufferKind.LowArena => ("LA", "o" + id),
            BufferKind.IntArena => ("IA", "o" + id),
            BufferKind.Params => ("P", "_po[" + p.Param + "]"),
            BufferKind.LowParams => ("LP", "_po[" + p.Param + "]"),
            BufferKind.Grads => ("G", "_po[" + p.Param + "]"),
            BufferKind.Input => ("in_" + p.InputName, "0L"),
            _ => throw new InvalidOperationException($"%{id} has no storage"),
        };
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

    private bool Accumulate(int id) => P(id).Buffer == BufferKind.Grads;

    private void Comment(CodeWriter w, FusionGroup gr)
    {
        var n = _g[gr.Root];
        var ops = string.Join(" + ", gr.Members.Select(m => _g[m].Op.ToString().ToLowerInvariant()));
        var src = n.Src.Line > 0 ? $" ← {System.IO.Path.GetFileName(n.Src.File)}:{n.Src.Line} {Trim(n.Src.Text)}" : "";
        w.Line($"// k{gr.Id} {gr.Kind} %{n.Id} = {ops} {IrPrinter.Type(n.DType, n.Shape)}{src}");
    }

    private static string Trim(string s)
    {
        s = s.Replace("\r", " ").Replace("\n", " ");
        return s.Length > 60 ? s.Substring(0, 57) + "..." : s;
    }

    private void EmitGroup(CodeWriter w, FusionGroup gr)
    {
        var n = _g[gr.Root];
        if (gr.Kind is "const" or "alias" || n.Op is Op.Param or Op.Input or Op.Reshape) return;
        Comment(w, gr);
        var (oa, oo) = Buf(n.Id);
        var acc = Accumulate(n.Id) ? "true" : "false";
        switch (gr.Kind)
        {
            case "elementwise": EmitElementwise(w, gr); return;
            case "matmul":
                EmitMatMul(w, n, acc);
                if (IsLowStore(n.Id)) w.Line($"{K}.RoundLow({oa}, {oo}, {N(n.Shape)}, R);");
                return;
        }
        var x = n.Inputs.Length > 0 ? _g[n.Inputs[0]] : null;
        string In(int i) { var (a, o) = Buf(n.Inputs[i]); return a + ", " + o; }
        switch (n.Op)
        {
            case Op.ReduceSum: case Op.ReduceMax:
            {
                int axis = n.A<ReduceAttr>().Axis;
                var outer = N(x!.Shape.Take(axis)); var len = S(x.Shape[axis]); var inner = N(x.Shape.Skip(axis + 1));
                var fn = n.Op == Op.ReduceSum ? "ReduceSum" : "ReduceMax";
                w.Line($"{K}.{fn}({In(0)}, {oa}, {oo}, {outer}, {len}, {inner}{(n.Op == Op.ReduceSum ? ", " + acc : "")});");
                return;
            }
            case Op.SumTo:
            {
                var (dims, reduced) = SumToPattern(x!.Shape, n.Shape);
                w.Line($"{K}.SumTo({In(0)}, {oa}, {oo}, new long[] {{ {string.Join(", ", dims.Select(S))} }}, new bool[] {{ {string.Join(", ", reduced.Select(r => r ? "true" : "false"))} }}, {acc});");
                return;
            }
            case Op.Permute:
                w.Line($"{K}.Permute({In(0)}, {oa}, {oo}, new long[] {{ {string.Join(", ", x!.Shape.Select(S))} }}, new int[] {{ {string.Join(", ", n.A<PermuteAttr>().Order)} }});");
                return;
            case Op.Slice:
            {
                var (axis, start, _) = n.A<SliceAttr>();
                w.Line($"{K}.SliceAxis({In(0)}, {oa}, {oo}, {N(x!.Shape.Take(axis))}, {S(x.Shape[axis])}, {S(start)}, {S(n.Shape[axis])}, {N(x.Shape.Skip(axis + 1))});");
                return;
            }
            case Op.Pad:
            {
                var (axis, before, _) = n.A<PadAttr>();
                w.Line($"{K}.PadAxis({In(0)}, {oa}, {oo}, {N(x!.Shape.Take(axis))}, {S(x.Shape[axis])}, {S(before)}, {S(n.Shape[axis])}, {N(x.Shape.Skip(axis + 1))});");
                return;
            }
            case Op.Concat:
            {
                int axis = n.A<AxisAttr>().Axis;
                var start = Sym.Zero;
                for (int i = 0; i < n.Inputs.Length; i++)
                {
                    var part = _g[n.Inputs[i]];
                    w.Line($"{K}.CopyIntoAxis({In(i)}, {oa}, {oo}, {N(n.Shape.Take(axis))}, {S(part.Shape[axis])}, {S(n.Shape[axis])}, {S(start)}, {N(n.Shape.Skip(axis + 1))});");
                    start += part.Shape[axis];
                }
                return;
            }
            case Op.Gather:
                w.Line($"{K}.Gather({In(0)}, {S(x!.Shape[0])}, {S(x.Shape[1])}, {In(1)}, {N(_g[n.Inputs[1]].Shape)}, {oa}, {oo});");
                return;
            case Op.GatherGrad:
                w.Line($"{K}.GatherGrad({In(0)}, {In(1)}, {N(_g[n.Inputs[1]].Shape)}, {S(n.Shape[0])}, {S(n.Shape[1])}, {oa}, {oo}, {acc});");
                return;
            case Op.PickLast:
                w.Line($"{K}.PickLast({In(0)}, {In(1)}, {N(n.Shape)}, {S(x!.Shape[x.Rank - 1])}, {n.A<IgnoreAttr>().Ignore}, {oa}, {oo});");
                return;
            case Op.PickLastGrad:
                w.Line($"{K}.PickLastGrad({In(0)}, {In(1)}, {N(x!.Shape)}, {S(n.Shape[n.Rank - 1])}, {n.A<PickGradAttr>().Ignore}, {oa}, {oo});");
                return;
            case Op.IndexMask:
                w.Line($"{K}.IndexMask({In(0)}, {N(n.Shape)}, {n.A<IgnoreAttr>().Ignore}, {oa}, {oo});");
                return;
            case Op.ToFloat:
                w.Line($"{K}.ToFloat({In(0)}, {N(n.Shape)}, {oa}, {oo});");
                return;
            case Op.Arange:
                w.Line($"{K}.Arange({oa}, {oo}, {S(n.Shape[0])});");
                return;
            case Op.Fill:
                w.Line($"{K}.Fill({oa}, {oo}, {N(n.Shape)}, {_names.Scalar(n.A<ScalarAttr>().Value)});");
                return;
            case Op.DropoutMask:
                w.Line($"global::Kiln.Runtime.Cpu.DropoutKernels.FillMask(new global::System.Span<float>({oa}, (int){oo}, (int)({N(n.Shape)})), {_names.Scalar(n.A<DropoutAttr>().P)}, ctx.Seed, global::Kiln.Runtime.Cpu.DropoutKernels.Stream(ctx.Step, ctx.MicroStep, {n.A<DropoutAttr>().Site}));");
                return;
        }
        throw new InvalidOperationException($"no CPU lowering for {n.Op}");
    }

    /// <summary>Collapses a SumTo into alternating kept/summed dimension runs.</summary>
    private static (List<Sym> Dims, List<bool> Reduced) SumToPattern(Sym[] from, Sym[] to)
    {
        var dims = new List<Sym>(); var reduced = new List<bool>();
        int off = from.Length - to.Length;
        for (int d = 0; d < from.Length; d++)
        {
            if (from[d].Equals(Sym.One)) continue;
            bool r = d < off || to[d - off].Equals(Sym.One);
            if (reduced.Count > 0 && reduced[reduced.Count - 1] == r) dims[dims.Count - 1] *= from[d];
            else { dims.Add(from[d]); reduced.Add(r); }
        }
        return (dims, reduced);
    }

    private void EmitMatMul(CodeWriter w, Node n, string acc)
    {
        var a = _g[n.Inputs[0]]; var b = _g[n.Inputs[1]];
        var (ta, tb) = n.A<MatMulAttr>();
        var (aa, ao) = Buf(a.Id); var (ba, bo) = Buf(b.Id); var (ca, co) = Buf(n.Id);
        var m = n.Shape[n.Rank - 2]; var nn = n.Shape[n.Rank - 1];
        var k = a.Shape[a.Rank - (ta ? 2 : 1)];
        string T(bool t) => t ? "true" : "false";
        if (b.Rank == 2 && !ta)
        {
            // Batch dims of A fold into M: one GEMM over all rows.
            var rows = Sym.Div(Shapes.Numel(a.Shape), k);
            w.Line($"{K}.MatMul(false, {T(tb)}, {S(rows)}, {S(nn)}, {S(k)}, {aa}, {ao}, {ba}, {bo}, {ca}, {co}, null, null, null, {acc});");
            return;
        }
        var batch = n.Shape.Take(n.Rank - 2).ToArray();
        string Strides(Node x)
        {
            var xb = x.Shape.Take(x.Rank - 2).ToArray();
            var mat = x.Shape[x.Rank - 2] * x.Shape[x.Rank - 1];
            var strides = new List<string>();
            for (int d = 0; d < batch.Length; d++)
            {
                int xd = d - (batch.Length - xb.Length);
                if (xd < 0 || (xb[xd].Equals(Sym.One) && !batch[d].Equals(Sym.One))) { strides.Add("0L"); continue; }
                var stride = mat;
                for (int e = xd + 1; e < xb.Length; e++) stride *= xb[e];
                strides.Add(S(stride));
            }
            return "new long[] { " + string.Join(", ", strides) + " }";
        }
        w.Line($"{K}.MatMul({T(ta)}, {T(tb)}, {S(m)}, {S(nn)}, {S(k)}, {aa}, {ao}, {ba}, {bo}, {ca}, {co}, new long[] {{ {string.Join(", ", batch.Select(S))} }}, {Strides(a)}, {Strides(b)}, {acc});");
    }

    // ───────────────────────────── fused elementwise kernels ─────────────────────────────

    private void EmitElementwise(CodeWriter w, FusionGroup gr)
    {
        var root = _g[gr.Root];
        var outShape = root.Shape;
        int r = outShape.Length;
        var inputs = gr.ExternalInputs.Where(i => _groupOfRoot.TryGetValue(i, out var ig) ? ig.Kind != "const" : true).ToList();
        var consts = gr.ExternalInputs.Where(i => _groupOfRoot.TryGetValue(i, out var ig) && ig.Kind == "const").ToList();
        var scalars = gr.Members.Where(m => _g[m].ScalarParam is not null).ToList();

        // Broadcast pattern per input and output axis, then merge axes where every input agrees.
        var aligned = inputs.Select(i => { var s = _g[i].Shape; return Enumerable.Repeat(Sym.One, r - s.Length).Concat(s).ToArray(); }).ToList();
        var dims = new List<Sym>();
        var bc = inputs.Select(_ => new List<bool>()).ToList();
        for (int d = 0; d < r; d++)
        {
            if (outShape[d].Equals(Sym.One)) continue;
            var flags = aligned.Select(s => s[d].Equals(Sym.One)).ToList();
            if (dims.Count > 0 && Enumerable.Range(0, inputs.Count).All(k => bc[k][bc[k].Count - 1] == flags[k]))
                dims[dims.Count - 1] *= outShape[d];
            else
            {
                dims.Add(outShape[d]);
                for (int k = 0; k < inputs.Count; k++) bc[k].Add(flags[k]);
            }
        }
        if (dims.Count == 0) { dims.Add(Sym.One); foreach (var f in bc) f.Add(true); }
        int m = dims.Count;
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
            var template = vector ? OpTable.CpuVector(n.Op) : OpTable.CpuScalar(n.Op);
            var text = template;
            for (int i = 0; i < n.Inputs.Length; i++) text = text.Replace("{" + i + "}", Operand(n.Inputs[i]));
            int s = scalars.IndexOf(id);
            if (s >= 0) text = text.Replace("{s}", vector ? $"vq{s}" : $"q{s}");
            text = text.Replace("V.", "global::Kiln.Runtime.Cpu.V.").Replace("S.", "global::Kiln.Runtime.Cpu.S.");
            kw.Line($"var {(vector ? "t" : "u")}{id} = {text};");
        }
        return (vector ? "t" : "u") + gr.Root;
    }
}

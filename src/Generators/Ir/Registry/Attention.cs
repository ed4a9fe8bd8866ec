using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Emit;

namespace Kiln.Generators.Ir;

// Fused scaled dot-product attention (flash-attention style): the forward never materialises the T×T scores, and
// writes each query row's log-sum-exp next to its output so the backward recomputes the probabilities block by block.
// CPU: Kernels.AttentionForward/AttentionBackward (SIMD over blocks of 64 keys, threads over batch × heads).
// CUDA: 16×16 tiles in shared memory, 256-thread blocks, fp32 accumulation, inputs in the program's storage type.
// The composition (MatMul, Where, Softmax, MatMul) stays available; tests check the fused op against it.
internal static partial class OpRegistry
{
    /// <summary>The largest head size the fused kernels take (the CUDA kernels keep a row in 8 registers × 16 lanes).</summary>
    public const int AttentionMaxHead = 128;

    private static IEnumerable<OpDef> AttentionOps()
    {
        yield return new OpDef(Op.Attention, OpKind.Attention, -1)
        {
            Attr = typeof(AttentionAttr),
            Shape = a =>
            {
                var (q, k, v, keep) = AttentionOperands(a.Inputs, a.A<AttentionAttr>());
                CheckAttention(q, k, v, keep, a.Require);
                return (DType.F32, new[] { q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3] + Sym.One });
            },
            Grad = (g, n, dy) =>
            {
                var attr = n.A<AttentionAttr>();
                var grad = g.Add(Op.AttentionGrad, n.Inputs.Concat(new[] { n.Id, dy }).ToArray(), attr);
                Sym tq = g[n.Inputs[0]].Shape[2], tk = g[n.Inputs[1]].Shape[2];
                int Part(Sym start, Sym end) => g.Add(Op.Slice, new[] { grad }, new SliceAttr(2, start, end));
                var result = new int?[n.Inputs.Length];
                result[0] = Part(Sym.Zero, tq);
                result[1] = Part(tq, tq + tk);
                result[2] = Part(tq + tk, tq + tk + tk);
                return result;
            },
            Lowering = new KernelLowering(
                c =>
                {
                    var attr = c.Node.A<AttentionAttr>(); var q = c.Input(0); var k = c.Input(1);
                    if (attr.Site >= 0)
                    {
                        string b = c.S(q.Shape[0]), h = c.S(q.Shape[1]), d = c.S(q.Shape[3]);
                        c.Call("AttentionDecode", c.In(0), c.In(1), c.In(2), b, h, c.S(q.Shape[2]), d,
                            $"DecodeCacheFor({attr.Site}, {c.Layer ?? "0L"}, {b}, {h}, {d})", "DecodePosition", c.Out);
                        return;
                    }
                    c.Call("AttentionForward", c.In(0), c.In(1), c.In(2), attr.Masked ? c.In(3) : "null, 0L",
                        c.S(q.Shape[0]), c.S(q.Shape[1]), c.S(q.Shape[2]), c.S(k.Shape[2]), c.S(q.Shape[3]), attr.Causal ? "true" : "false", c.Out);
                },
                CudaAttentionForward),
        };

        yield return new OpDef(Op.AttentionGrad, OpKind.Attention, -1)
        {
            Attr = typeof(AttentionAttr),
            Shape = a =>
            {
                var attr = a.A<AttentionAttr>();
                int operands = attr.Masked ? 4 : 3;
                if (a.Inputs.Length != operands + 2) throw new System.InvalidOperationException($"AttentionGrad takes {operands + 2} inputs, got {a.Inputs.Length}");
                var (q, k, _, _) = AttentionOperands(a.Inputs.Take(operands).ToArray(), attr);
                return (DType.F32, new[] { q.Shape[0], q.Shape[1], q.Shape[2] + k.Shape[2] + k.Shape[2], q.Shape[3] });
            },
            Grad = SecondOrder,
            Lowering = new KernelLowering(
                c =>
                {
                    var attr = c.Node.A<AttentionAttr>(); var q = c.Input(0); var k = c.Input(1);
                    int o = attr.Masked ? 4 : 3;
                    c.Call("AttentionBackward", c.In(0), c.In(1), c.In(2), attr.Masked ? c.In(3) : "null, 0L", c.In(o), c.In(o + 1),
                        c.S(q.Shape[0]), c.S(q.Shape[1]), c.S(q.Shape[2]), c.S(k.Shape[2]), c.S(q.Shape[3]), attr.Causal ? "true" : "false", c.Out);
                },
                CudaAttentionBackward),
        };
    }

    private static (Node Q, Node K, Node V, Node? Keep) AttentionOperands(Node[] inputs, AttentionAttr attr)
    {
        int expected = attr.Masked ? 4 : 3;
        if (inputs.Length != expected) throw new System.InvalidOperationException($"Attention{(attr.Masked ? " (masked)" : "")} takes {expected} inputs, got {inputs.Length}");
        return (inputs[0], inputs[1], inputs[2], attr.Masked ? inputs[3] : null);
    }

    private static void CheckAttention(Node q, Node k, Node v, Node? keep, System.Action<Sym, Sym, string> require)
    {
        foreach (var (x, what) in new[] { (q, "the queries"), (k, "the keys"), (v, "the values") })
        {
            ShapeRules.RequireFloat(x, "Attention (" + what + ")");
            if (x.Rank != 4) throw new ShapeException("KILN1003", $"Attention needs {what} as [batch, heads, sequence, head size], got {Shapes.Format(x.Shape)}");
        }
        string Shapes3() => $"q {Shapes.Format(q.Shape)}, k {Shapes.Format(k.Shape)}, v {Shapes.Format(v.Shape)}";
        for (int axis = 0; axis < 4; axis++)
        {
            var ax = axis;
            if (axis != 2) ShapeRules.Unify(q.Shape[axis], k.Shape[axis], () => $"Attention: queries and keys differ on axis {ax} ({Shapes3()})", "KILN1002", require);
            ShapeRules.Unify(k.Shape[axis], v.Shape[axis], () => $"Attention: keys and values differ on axis {ax} ({Shapes3()})", "KILN1002", require);
        }
        var d = q.Shape[3];
        var tooWide = $"Attention: the head size {d} is over {AttentionMaxHead}, the largest the fused kernels take; use more heads or write the attention as MatMul/Softmax/MatMul";
        if (d.IsConst) { if (d.ConstValue > AttentionMaxHead) throw new ShapeException("KILN1003", tooWide); }
        else require(Sym.Div(d, Sym.Const(AttentionMaxHead + 1)), Sym.Zero, tooWide);
        if (keep is not null)
        {
            ShapeRules.RequireFloat(keep, "Attention (the keep mask)");
            if (keep.Rank != 2) throw new ShapeException("KILN1003", $"Attention needs the keep mask as [batch, keys] (1 keep, 0 hide), got {Shapes.Format(keep.Shape)}");
            ShapeRules.Unify(keep.Shape[0], q.Shape[0], () => $"Attention: the keep mask {Shapes.Format(keep.Shape)} and the queries {Shapes.Format(q.Shape)} differ in batch", "KILN1002", require);
            ShapeRules.Unify(keep.Shape[1], k.Shape[2], () => $"Attention: the keep mask {Shapes.Format(keep.Shape)} and the keys {Shapes.Format(k.Shape)} differ in length", "KILN1002", require);
        }
    }

    // ───────────────────────────── CUDA ─────────────────────────────

    private static void AttentionParams(CudaKernelContext c, CudaParams ps, AttentionAttr attr)
    {
        var q = c.Input(0); var k = c.Input(1);
        c.InParam(ps, q.Id, "q"); c.InParam(ps, k.Id, "k"); c.InParam(ps, c.Input(2).Id, "v");
        if (attr.Masked) c.InParam(ps, c.Input(3).Id, "keep");
        c.SizeParam(ps, "heads", q.Shape[1]); c.SizeParam(ps, "tq", q.Shape[2]); c.SizeParam(ps, "tk", k.Shape[2]); c.SizeParam(ps, "d", q.Shape[3]);
        c.SizeParam(ps, "bh", q.Shape[0] * q.Shape[1]);
    }

    /// <summary>Whether key j is visible to query i (both in range), as CUDA C.</summary>
    private static string Visible(CudaKernelContext c, AttentionAttr attr) =>
        "i < tq && j < tk" + (attr.Causal ? " && j <= i + (tk - tq)" : "") + (attr.Masked ? $" && {c.Load(c.Input(3).Id, "keep", "(bh_ / heads) * tk + j")} != 0.0f" : "");

    private static void LoadTile(CudaKernelContext c, string dst, int node, string ptr, string row0, string rows, string stride)
    {
        c.Line($"        for (int e = threadIdx.x; e < 16 * d; e += 256) {{ int rr = e / (int)d, cc = e % (int)d; kiln_i64 g = {row0} + rr; " +
               $"{dst}[rr][cc] = g < {rows} ? {c.Load(node, ptr, $"(bh_ * {rows} + g) * {stride} + cc")} : 0.0f; }}");
    }

    private static void CudaAttentionForward(CudaKernelContext c)
    {
        var n = c.Node; var attr = n.A<AttentionAttr>(); var q = c.Input(0);
        if (attr.Site >= 0) throw new System.InvalidOperationException("decode programs (KV cache) are emitted for the CPU only");
        var ps = c.Params();
        c.OutParam(ps); AttentionParams(c, ps, attr);
        var qTiles = Sym.Div(q.Shape[2] + Sym.Const(15), Sym.Const(16));
        c.Kernel("attention", ps, CudaGrid.Blocks, q.Shape[0] * q.Shape[1] * qTiles, () =>
        {
            c.Line("    // A block per (batch·head, 16 queries): 16×16 score tiles, online softmax, fp32 accumulation; needs blockDim.x == 256 and d ≤ 128.");
            c.Line("    __shared__ float sq[16][129]; __shared__ float sk[16][129]; __shared__ float sv[16][129]; __shared__ float sp[16][17];");
            c.Line("    const int r = threadIdx.x / 16, cj = threadIdx.x % 16;");
            c.Line("    const float scale = rsqrtf((float)d);");
            c.Line("    const kiln_i64 qtiles = CEIL_DIV(tq, 16);");
            c.Line("    for (kiln_i64 bt = blockIdx.x; bt < bh * qtiles; bt += gridDim.x)");
            c.Line("    {");
            c.Line("        const kiln_i64 bh_ = bt / qtiles, i0 = (bt % qtiles) * 16, i = i0 + r;");
            c.Line("        __syncthreads();");
            LoadTile(c, "sq", q.Id, "q", "i0", "tq", "d");
            c.Line("        float m = kiln_NegInf(), l = 0.0f, acc[8];");
            c.Line("        for (int u = 0; u < 8; u++) acc[u] = 0.0f;");
            c.Line(attr.Causal ? "        const kiln_i64 jEnd = i0 + 16 + (tk - tq) < tk ? i0 + 16 + (tk - tq) : tk;" : "        const kiln_i64 jEnd = tk;");
            c.Line("        for (kiln_i64 j0 = 0; j0 < jEnd; j0 += 16)");
            c.Line("        {");
            c.Line("            __syncthreads();");
            LoadTile(c, "sk", c.Input(1).Id, "k", "j0", "tk", "d");
            LoadTile(c, "sv", c.Input(2).Id, "v", "j0", "tk", "d");
            c.Line("            __syncthreads();");
            c.Line("            const kiln_i64 j = j0 + cj;");
            c.Line("            float s = kiln_NegInf();");
            c.Line($"            if ({Visible(c, attr)}) {{ s = 0.0f; for (int cc = 0; cc < d; cc++) s += sq[r][cc] * sk[cj][cc]; s *= scale; }}");
            c.Line("            float mx = s;");
            c.Line("            for (int off = 8; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off, 16));");
            c.Line("            const float mNew = fmaxf(m, mx);");
            c.Line("            const float p = s == kiln_NegInf() ? 0.0f : expf(s - mNew);");
            c.Line("            const float alpha = m == kiln_NegInf() ? 0.0f : expf(m - mNew);");
            c.Line("            float rs = p;");
            c.Line("            for (int off = 8; off > 0; off >>= 1) rs += __shfl_xor_sync(0xffffffffu, rs, off, 16);");
            c.Line("            l = l * alpha + rs; m = mNew;");
            c.Line("            sp[r][cj] = p;");
            c.Line("            __syncwarp();");
            c.Line("            for (int u = 0; u < 8; u++) { int cc = cj + 16 * u; if (cc < d) { float t = acc[u] * alpha; for (int jj = 0; jj < 16; jj++) t += sp[r][jj] * sv[jj][cc]; acc[u] = t; } }");
            c.Line("            __syncwarp();");
            c.Line("        }");
            c.Line("        if (i < tq)");
            c.Line("        {");
            c.Line("            const kiln_i64 row = (bh_ * tq + i) * (d + 1);");
            c.Line($"            for (int u = 0; u < 8; u++) {{ int cc = cj + 16 * u; if (cc < d) {{ {c.Store(n.Id, "row + cc", "l > 0.0f ? acc[u] / l : 0.0f")} }} }}");
            c.Line($"            if (cj == 0) {{ {c.Store(n.Id, "row + d", "l > 0.0f ? m + logf(l) : kiln_NegInf()")} }}");
            c.Line("        }");
            c.Line("    }");
        });
    }

    private static void CudaAttentionBackward(CudaKernelContext c)
    {
        var n = c.Node; var attr = n.A<AttentionAttr>(); var q = c.Input(0); var k = c.Input(1);
        int oi = attr.Masked ? 4 : 3;
        var ps = c.Params();
        c.OutParam(ps); AttentionParams(c, ps, attr);
        c.InParam(ps, c.Input(oi).Id, "o"); c.InParam(ps, c.Input(oi + 1).Id, "dout");
        var qTiles = Sym.Div(q.Shape[2] + Sym.Const(15), Sym.Const(16));
        var kTiles = Sym.Div(k.Shape[2] + Sym.Const(15), Sym.Const(16));
        int qId = q.Id, kId = k.Id, vId = c.Input(2).Id, oId = c.Input(oi).Id, dId = c.Input(oi + 1).Id;
        c.Kernel("attention", ps, CudaGrid.Blocks, q.Shape[0] * q.Shape[1] * (qTiles + kTiles), () =>
        {
            c.Line("    // Blocks per batch·head: one per 16 queries (dq) then one per 16 keys (dk, dv); each recomputes its 16×16 tiles'");
            c.Line("    // probabilities from the saved log-sum-exp. Output rows: dq [0, tq), dk [tq, tq + tk), dv [tq + tk, tq + 2tk). blockDim.x == 256.");
            c.Line("    __shared__ float sq[16][129]; __shared__ float sk[16][129]; __shared__ float sv[16][129]; __shared__ float sd[16][129];");
            c.Line("    __shared__ float sp[16][17]; __shared__ float sds[16][17]; __shared__ float slse[16]; __shared__ float sdelta[16];");
            c.Line("    const int r = threadIdx.x / 16, cj = threadIdx.x % 16;");
            c.Line("    const float scale = rsqrtf((float)d);");
            c.Line("    const kiln_i64 qtiles = CEIL_DIV(tq, 16), ktiles = CEIL_DIV(tk, 16), rows = tq + 2 * tk;");
            c.Line("    for (kiln_i64 bt = blockIdx.x; bt < bh * (qtiles + ktiles); bt += gridDim.x)");
            c.Line("    {");
            c.Line("        const kiln_i64 bh_ = bt / (qtiles + ktiles), part = bt % (qtiles + ktiles);");
            c.Line("        const bool queries = part < qtiles;");
            c.Line("        const kiln_i64 a0 = queries ? part * 16 : (part - qtiles) * 16;");
            c.Line("        float acc1[8], acc2[8];");
            c.Line("        for (int u = 0; u < 8; u++) { acc1[u] = 0.0f; acc2[u] = 0.0f; }");
            c.Line("        __syncthreads();");
            // Queries tile loader: q, dOut, lse and delta = Σ dOut·out over the row.
            void LoadQueries(string i0)
            {
                LoadTile(c, "sq", qId, "q", i0, "tq", "d");
                c.Line($"        for (int e = threadIdx.x; e < 16 * d; e += 256) {{ int rr = e / (int)d, cc = e % (int)d; kiln_i64 g = {i0} + rr; " +
                       $"sd[rr][cc] = g < tq ? {c.Load(dId, "dout", "(bh_ * tq + g) * (d + 1) + cc")} : 0.0f; }}");
                c.Line("        {");
                c.Line($"            const kiln_i64 g = {i0} + r; float part_ = 0.0f;");
                c.Line($"            if (g < tq) for (int cc = cj; cc < d; cc += 16) part_ += {c.Load(dId, "dout", "(bh_ * tq + g) * (d + 1) + cc")} * {c.Load(oId, "o", "(bh_ * tq + g) * (d + 1) + cc")};");
                c.Line("            for (int off = 8; off > 0; off >>= 1) part_ += __shfl_xor_sync(0xffffffffu, part_, off, 16);");
                c.Line($"            if (cj == 0) {{ sdelta[r] = part_; slse[r] = g < tq ? {c.Load(oId, "o", "(bh_ * tq + g) * (d + 1) + d")} : kiln_NegInf(); }}");
                c.Line("        }");
            }
            // The 16×16 tile (query i0 + r, key j0 + cj): p and dS·scale into shared memory.
            void Tile(string i0, string j0)
            {
                c.Line($"            {{ const kiln_i64 i = {i0} + r, j = {j0} + cj; float p = 0.0f, ds = 0.0f;");
                c.Line($"              if ({Visible(c, attr)} && slse[r] != kiln_NegInf())");
                c.Line("              {");
                c.Line("                  float s = 0.0f, dp = 0.0f;");
                c.Line("                  for (int cc = 0; cc < d; cc++) { s += sq[r][cc] * sk[cj][cc]; dp += sd[r][cc] * sv[cj][cc]; }");
                c.Line("                  p = expf(s * scale - slse[r]);");
                c.Line("                  ds = p * (dp - sdelta[r]) * scale;");
                c.Line("              }");
                c.Line("              sp[r][cj] = p; sds[r][cj] = ds; }");
            }
            c.Line("        if (queries)");
            c.Line("        {");
            LoadQueries("a0");
            c.Line(attr.Causal ? "            const kiln_i64 jEnd = a0 + 16 + (tk - tq) < tk ? a0 + 16 + (tk - tq) : tk;" : "            const kiln_i64 jEnd = tk;");
            c.Line("            for (kiln_i64 j0 = 0; j0 < jEnd; j0 += 16)");
            c.Line("            {");
            c.Line("                __syncthreads();");
            LoadTile(c, "sk", kId, "k", "j0", "tk", "d");
            LoadTile(c, "sv", vId, "v", "j0", "tk", "d");
            c.Line("                __syncthreads();");
            Tile("a0", "j0");
            c.Line("                __syncwarp();");
            c.Line("                for (int u = 0; u < 8; u++) { int cc = cj + 16 * u; if (cc < d) { float t = acc1[u]; for (int jj = 0; jj < 16; jj++) t += sds[r][jj] * sk[jj][cc]; acc1[u] = t; } }");
            c.Line("            }");
            c.Line("            const kiln_i64 i = a0 + r;");
            c.Line($"            if (i < tq) for (int u = 0; u < 8; u++) {{ int cc = cj + 16 * u; if (cc < d) {{ {c.Store(n.Id, "(bh_ * rows + i) * d + cc", "acc1[u]")} }} }}");
            c.Line("        }");
            c.Line("        else");
            c.Line("        {");
            LoadTile(c, "sk", kId, "k", "a0", "tk", "d");
            LoadTile(c, "sv", vId, "v", "a0", "tk", "d");
            c.Line(attr.Causal ? "            const kiln_i64 iFirst = a0 - (tk - tq) > 0 ? ((a0 - (tk - tq)) / 16) * 16 : 0;" : "            const kiln_i64 iFirst = 0;");
            c.Line("            for (kiln_i64 i0 = iFirst; i0 < tq; i0 += 16)");
            c.Line("            {");
            c.Line("                __syncthreads();");
            LoadQueries("i0");
            c.Line("                __syncthreads();");
            Tile("i0", "a0");
            c.Line("                __syncthreads();");
            c.Line("                for (int u = 0; u < 8; u++) { int cc = cj + 16 * u; if (cc < d) { float tv = acc1[u], tk_ = acc2[u];");
            c.Line("                    for (int ii = 0; ii < 16; ii++) { tv += sp[ii][r] * sd[ii][cc]; tk_ += sds[ii][r] * sq[ii][cc]; } acc1[u] = tv; acc2[u] = tk_; } }");
            c.Line("            }");
            c.Line("            const kiln_i64 j = a0 + r;");
            c.Line("            if (j < tk) for (int u = 0; u < 8; u++) { int cc = cj + 16 * u; if (cc < d) {");
            c.Line($"                {c.Store(n.Id, "(bh_ * rows + tq + j) * d + cc", "acc2[u]")}");
            c.Line($"                {c.Store(n.Id, "(bh_ * rows + tq + tk + j) * d + cc", "acc1[u]")} }} }}");
            c.Line("        }");
            c.Line("    }");
        });
    }
}

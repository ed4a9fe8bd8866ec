using System;
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Kiln.Runtime.Cpu;

// The AVX-512 path of the fused attention kernels, for head sizes that are multiples of 64 (GPT-2's 64, 128): four
// query rows at a time against a block of 64 keys, so every loaded key, value or output vector feeds four FMAs
// (register tiles of 4 rows × 64 keys for the scores and 4 rows × 64 columns for the products). Same semantics and
// block order as the portable path in Attention.cs.
public static unsafe partial class Kernels
{
    private const int AttentionRows = 4;

    private static bool WideAttention(long d) => Vector512.IsHardwareAccelerated && d % 64 == 0 && d <= 1024;

    private static void AttentionForwardWide(float[] q, long qo, float[] k, long ko, float[] v, long vo, float[]? keep, long keepo,
        long batch, long heads, long tq, long tk, long d, bool causal, float[] o, long oo, long kvRows)
    {
        float scale = 1f / MathF.Sqrt(d);
        int dd = (int)d;
        KilnParallel.For(batch * heads, tq * tk * d, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            var kt = ArrayPool<float>.Shared.Rent(dd * AttentionBlock);
            var m = ArrayPool<float>.Shared.Rent((int)tq); var l = ArrayPool<float>.Shared.Rent((int)tq);
            var s = new float[AttentionRows * AttentionBlock];
            var zero = new float[dd + 1]; var scratch = new float[dd + 1];
            var alpha = new float[AttentionRows];
            try
            {
                fixed (float* qp = q, kp = k, vp = v, op = o, ktp = kt, sp = s, zp = zero, xp = scratch, ap = alpha)
                {
                    var qr = stackalloc float*[AttentionRows]; var orow = stackalloc float*[AttentionRows];
                    for (long bh = lo; bh < hi; bh++)
                    {
                        long b = bh / heads, qb = qo + bh * tq * d, kb = ko + bh * kvRows * d, vb = vo + bh * kvRows * d, ob = oo + bh * tq * (d + 1);
                        m.AsSpan(0, (int)tq).Fill(float.NegativeInfinity); l.AsSpan(0, (int)tq).Clear();
                        for (long i = 0; i < tq; i++) new Span<float>(op + ob + i * (d + 1), dd).Clear();
                        for (long j0 = 0; j0 < tk; j0 += AttentionBlock)
                        {
                            int nb = (int)Math.Min(AttentionBlock, tk - j0);
                            TransposeBlock(k, kb + j0 * d, nb, dd, kt);
                            long iStart = causal ? Math.Max(0, j0 - (tk - tq)) / AttentionRows * AttentionRows : 0;
                            for (long i0 = iStart; i0 < tq; i0 += AttentionRows)
                            {
                                for (int r = 0; r < AttentionRows; r++)
                                {
                                    long i = i0 + r;
                                    qr[r] = i < tq ? qp + qb + i * d : zp;
                                    orow[r] = i < tq ? op + ob + i * (d + 1) : xp;
                                }
                                Scores4(qr, dd, ktp, scale, sp);
                                int keys = 0;
                                for (int r = 0; r < AttentionRows; r++)
                                {
                                    long i = i0 + r;
                                    int visible = i < tq ? Visible(causal, i, j0, nb, tq, tk) : 0;
                                    var row = new Span<float>(sp + r * AttentionBlock, AttentionBlock);
                                    float max = MaskAndMax(row, visible, keep, keepo + b * tk + j0);
                                    if (float.IsNegativeInfinity(max)) { row.Clear(); ap[r] = 1f; continue; }
                                    keys = Math.Max(keys, visible);
                                    float mNew = Math.Max(m[i], max);
                                    ap[r] = float.IsNegativeInfinity(m[i]) ? 0f : MathF.Exp(m[i] - mNew);
                                    l[i] = l[i] * ap[r] + ExpShifted(row, mNew);
                                    m[i] = mNew;
                                }
                                if (keys == 0) continue;
                                for (int c0 = 0; c0 < dd; c0 += 64)
                                    Rows4(sp, keys, vp + vb + j0 * d + c0, dd, orow, c0, ap);
                            }
                        }
                        for (long i = 0; i < tq; i++)
                        {
                            var row = new Span<float>(op + ob + i * (d + 1), dd + 1);
                            if (l[i] > 0)
                            {
                                ScaleInPlace(row[..dd], 1f / l[i]);
                                row[dd] = m[i] + MathF.Log(l[i]);
                            }
                            else { row.Clear(); row[dd] = float.NegativeInfinity; }
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(kt); ArrayPool<float>.Shared.Return(m); ArrayPool<float>.Shared.Return(l);
            }
        });
    }

    private static void AttentionBackwardWide(float[] q, long qo, float[] k, long ko, float[] v, long vo, float[]? keep, long keepo,
        float[] o, long oo, float[] dout, long dto, long batch, long heads, long tq, long tk, long d, bool causal, float[] grad, long go)
    {
        float scale = 1f / MathF.Sqrt(d);
        int dd = (int)d;
        KilnParallel.For(batch * heads, 2 * tq * tk * d, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            var kt = ArrayPool<float>.Shared.Rent(dd * AttentionBlock); var vt = ArrayPool<float>.Shared.Rent(dd * AttentionBlock);
            var delta = ArrayPool<float>.Shared.Rent((int)tq);
            var p = new float[AttentionRows * AttentionBlock]; var dp = new float[AttentionRows * AttentionBlock];
            var zero = new float[dd + 1]; var scratch = new float[dd + 1];
            var one = new float[] { 1f, 1f, 1f, 1f };
            try
            {
                fixed (float* qp = q, kp = k, dop = dout, gp = grad, ktp = kt, vtp = vt, pp = p, dpp = dp, zp = zero, xp = scratch, onep = one)
                {
                    var qr = stackalloc float*[AttentionRows]; var dor = stackalloc float*[AttentionRows]; var dqr = stackalloc float*[AttentionRows];
                    for (long bh = lo; bh < hi; bh++)
                    {
                        long b = bh / heads, qb = qo + bh * tq * d, kb = ko + bh * tk * d, vb = vo + bh * tk * d;
                        long ob = oo + bh * tq * (d + 1), db = dto + bh * tq * (d + 1);
                        long gq = go + bh * (tq + 2 * tk) * d, gk = gq + tq * d, gv = gk + tk * d;
                        new Span<float>(gp + gq, (int)((tq + 2 * tk) * d)).Clear();
                        for (long i = 0; i < tq; i++)
                            delta[i] = Dot(dout.AsSpan((int)(db + i * (d + 1)), dd), o.AsSpan((int)(ob + i * (d + 1)), dd));
                        for (long j0 = 0; j0 < tk; j0 += AttentionBlock)
                        {
                            int nb = (int)Math.Min(AttentionBlock, tk - j0);
                            TransposeBlock(k, kb + j0 * d, nb, dd, kt);
                            TransposeBlock(v, vb + j0 * d, nb, dd, vt);
                            long iStart = causal ? Math.Max(0, j0 - (tk - tq)) / AttentionRows * AttentionRows : 0;
                            for (long i0 = iStart; i0 < tq; i0 += AttentionRows)
                            {
                                for (int r = 0; r < AttentionRows; r++)
                                {
                                    long i = i0 + r;
                                    bool live = i < tq && !float.IsNegativeInfinity(o[ob + i * (d + 1) + d]);
                                    qr[r] = live ? qp + qb + i * d : zp;
                                    dor[r] = live ? dop + db + i * (d + 1) : zp;
                                    dqr[r] = live ? gp + gq + i * d : xp;
                                }
                                Scores4(qr, dd, ktp, scale, pp);
                                Scores4(dor, dd, vtp, 1f, dpp);
                                int keys = 0;
                                for (int r = 0; r < AttentionRows; r++)
                                {
                                    long i = i0 + r;
                                    var pr = new Span<float>(pp + r * AttentionBlock, AttentionBlock);
                                    if (qr[r] == zp) { pr.Clear(); new Span<float>(dpp + r * AttentionBlock, AttentionBlock).Clear(); continue; }
                                    int visible = Visible(causal, i, j0, nb, tq, tk);
                                    MaskAndMax(pr, visible, keep, keepo + b * tk + j0);
                                    ExpShifted(pr, o[ob + i * (d + 1) + d]);
                                    keys = Math.Max(keys, visible);
                                    // dp ← dS·scale = p ∘ (dp − Δ) · scale
                                    float* dprow = dpp + r * AttentionBlock;
                                    var dl = Vector512.Create(delta[i]); var sc = Vector512.Create(scale);
                                    for (int j = 0; j < AttentionBlock; j += 16)
                                    {
                                        var pj = Vector512.Load(pp + r * AttentionBlock + j);
                                        Vector512.Store(pj * (Vector512.Load(dprow + j) - dl) * sc, dprow + j);
                                    }
                                }
                                if (keys == 0) continue;
                                for (int c0 = 0; c0 < dd; c0 += 64)
                                {
                                    Keys4(pp, keys, dor, c0, gp + gv + j0 * d + c0, dd);
                                    Keys4(dpp, keys, qr, c0, gp + gk + j0 * d + c0, dd);
                                    Rows4(dpp, keys, kp + kb + j0 * d + c0, dd, dqr, c0, onep);
                                }
                            }
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(kt); ArrayPool<float>.Shared.Return(vt); ArrayPool<float>.Shared.Return(delta);
            }
        });
    }

    /// <summary>s[r, j] = scale · x_r · kt[:, j] for 4 rows and the 64 columns of a transposed block (16 zmm accumulators).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores4(float** x, int d, float* kt, float scale, float* s)
    {
        float* x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        for (int c = 0; c < d; c++)
        {
            float* row = kt + c * AttentionBlock;
            var k0 = Vector512.Load(row); var k1 = Vector512.Load(row + 16); var k2 = Vector512.Load(row + 32); var k3 = Vector512.Load(row + 48);
            var b = Vector512.Create(x0[c]);
            a00 = Vector512.FusedMultiplyAdd(b, k0, a00); a01 = Vector512.FusedMultiplyAdd(b, k1, a01); a02 = Vector512.FusedMultiplyAdd(b, k2, a02); a03 = Vector512.FusedMultiplyAdd(b, k3, a03);
            b = Vector512.Create(x1[c]);
            a10 = Vector512.FusedMultiplyAdd(b, k0, a10); a11 = Vector512.FusedMultiplyAdd(b, k1, a11); a12 = Vector512.FusedMultiplyAdd(b, k2, a12); a13 = Vector512.FusedMultiplyAdd(b, k3, a13);
            b = Vector512.Create(x2[c]);
            a20 = Vector512.FusedMultiplyAdd(b, k0, a20); a21 = Vector512.FusedMultiplyAdd(b, k1, a21); a22 = Vector512.FusedMultiplyAdd(b, k2, a22); a23 = Vector512.FusedMultiplyAdd(b, k3, a23);
            b = Vector512.Create(x3[c]);
            a30 = Vector512.FusedMultiplyAdd(b, k0, a30); a31 = Vector512.FusedMultiplyAdd(b, k1, a31); a32 = Vector512.FusedMultiplyAdd(b, k2, a32); a33 = Vector512.FusedMultiplyAdd(b, k3, a33);
        }
        var sc = Vector512.Create(scale);
        Vector512.Store(a00 * sc, s); Vector512.Store(a01 * sc, s + 16); Vector512.Store(a02 * sc, s + 32); Vector512.Store(a03 * sc, s + 48);
        Vector512.Store(a10 * sc, s + 64); Vector512.Store(a11 * sc, s + 80); Vector512.Store(a12 * sc, s + 96); Vector512.Store(a13 * sc, s + 112);
        Vector512.Store(a20 * sc, s + 128); Vector512.Store(a21 * sc, s + 144); Vector512.Store(a22 * sc, s + 160); Vector512.Store(a23 * sc, s + 176);
        Vector512.Store(a30 * sc, s + 192); Vector512.Store(a31 * sc, s + 208); Vector512.Store(a32 * sc, s + 224); Vector512.Store(a33 * sc, s + 240);
    }

    /// <summary>out_r[c0..c0+64) = out_r · alpha_r + Σ_{j &lt; keys} w[r, j] · rows[j] (rows of stride d, from column c0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4(float* w, int keys, float* rows, int d, float** output, int c0, float* alpha)
    {
        float* o0 = output[0] + c0, o1 = output[1] + c0, o2 = output[2] + c0, o3 = output[3] + c0;
        var s0 = Vector512.Create(alpha[0]); var s1 = Vector512.Create(alpha[1]); var s2 = Vector512.Create(alpha[2]); var s3 = Vector512.Create(alpha[3]);
        Vector512<float> a00 = Vector512.Load(o0) * s0, a01 = Vector512.Load(o0 + 16) * s0, a02 = Vector512.Load(o0 + 32) * s0, a03 = Vector512.Load(o0 + 48) * s0;
        Vector512<float> a10 = Vector512.Load(o1) * s1, a11 = Vector512.Load(o1 + 16) * s1, a12 = Vector512.Load(o1 + 32) * s1, a13 = Vector512.Load(o1 + 48) * s1;
        Vector512<float> a20 = Vector512.Load(o2) * s2, a21 = Vector512.Load(o2 + 16) * s2, a22 = Vector512.Load(o2 + 32) * s2, a23 = Vector512.Load(o2 + 48) * s2;
        Vector512<float> a30 = Vector512.Load(o3) * s3, a31 = Vector512.Load(o3 + 16) * s3, a32 = Vector512.Load(o3 + 32) * s3, a33 = Vector512.Load(o3 + 48) * s3;
        for (int j = 0; j < keys; j++)
        {
            float* row = rows + (long)j * d;
            var v0 = Vector512.Load(row); var v1 = Vector512.Load(row + 16); var v2 = Vector512.Load(row + 32); var v3 = Vector512.Load(row + 48);
            var b = Vector512.Create(w[j]);
            a00 = Vector512.FusedMultiplyAdd(b, v0, a00); a01 = Vector512.FusedMultiplyAdd(b, v1, a01); a02 = Vector512.FusedMultiplyAdd(b, v2, a02); a03 = Vector512.FusedMultiplyAdd(b, v3, a03);
            b = Vector512.Create(w[AttentionBlock + j]);
            a10 = Vector512.FusedMultiplyAdd(b, v0, a10); a11 = Vector512.FusedMultiplyAdd(b, v1, a11); a12 = Vector512.FusedMultiplyAdd(b, v2, a12); a13 = Vector512.FusedMultiplyAdd(b, v3, a13);
            b = Vector512.Create(w[2 * AttentionBlock + j]);
            a20 = Vector512.FusedMultiplyAdd(b, v0, a20); a21 = Vector512.FusedMultiplyAdd(b, v1, a21); a22 = Vector512.FusedMultiplyAdd(b, v2, a22); a23 = Vector512.FusedMultiplyAdd(b, v3, a23);
            b = Vector512.Create(w[3 * AttentionBlock + j]);
            a30 = Vector512.FusedMultiplyAdd(b, v0, a30); a31 = Vector512.FusedMultiplyAdd(b, v1, a31); a32 = Vector512.FusedMultiplyAdd(b, v2, a32); a33 = Vector512.FusedMultiplyAdd(b, v3, a33);
        }
        Vector512.Store(a00, o0); Vector512.Store(a01, o0 + 16); Vector512.Store(a02, o0 + 32); Vector512.Store(a03, o0 + 48);
        Vector512.Store(a10, o1); Vector512.Store(a11, o1 + 16); Vector512.Store(a12, o1 + 32); Vector512.Store(a13, o1 + 48);
        Vector512.Store(a20, o2); Vector512.Store(a21, o2 + 16); Vector512.Store(a22, o2 + 32); Vector512.Store(a23, o2 + 48);
        Vector512.Store(a30, o3); Vector512.Store(a31, o3 + 16); Vector512.Store(a32, o3 + 32); Vector512.Store(a33, o3 + 48);
    }

    /// <summary>dst[j, c0..c0+64) += Σ_r w[r, j] · x_r[c0..c0+64) for j &lt; keys (key rows of stride d): dV += Pᵀ·dO, dK += dSᵀ·Q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Keys4(float* w, int keys, float** x, int c0, float* dst, int d)
    {
        float* x0 = x[0] + c0, x1 = x[1] + c0, x2 = x[2] + c0, x3 = x[3] + c0;
        Vector512<float> x00 = Vector512.Load(x0), x01 = Vector512.Load(x0 + 16), x02 = Vector512.Load(x0 + 32), x03 = Vector512.Load(x0 + 48);
        Vector512<float> x10 = Vector512.Load(x1), x11 = Vector512.Load(x1 + 16), x12 = Vector512.Load(x1 + 32), x13 = Vector512.Load(x1 + 48);
        Vector512<float> x20 = Vector512.Load(x2), x21 = Vector512.Load(x2 + 16), x22 = Vector512.Load(x2 + 32), x23 = Vector512.Load(x2 + 48);
        Vector512<float> x30 = Vector512.Load(x3), x31 = Vector512.Load(x3 + 16), x32 = Vector512.Load(x3 + 32), x33 = Vector512.Load(x3 + 48);
        for (int j = 0; j < keys; j++)
        {
            float* row = dst + (long)j * d;
            var w0 = Vector512.Create(w[j]); var w1 = Vector512.Create(w[AttentionBlock + j]);
            var w2 = Vector512.Create(w[2 * AttentionBlock + j]); var w3 = Vector512.Create(w[3 * AttentionBlock + j]);
            var r0 = Vector512.Load(row); var r1 = Vector512.Load(row + 16); var r2 = Vector512.Load(row + 32); var r3 = Vector512.Load(row + 48);
            r0 = Vector512.FusedMultiplyAdd(w0, x00, r0); r1 = Vector512.FusedMultiplyAdd(w0, x01, r1); r2 = Vector512.FusedMultiplyAdd(w0, x02, r2); r3 = Vector512.FusedMultiplyAdd(w0, x03, r3);
            r0 = Vector512.FusedMultiplyAdd(w1, x10, r0); r1 = Vector512.FusedMultiplyAdd(w1, x11, r1); r2 = Vector512.FusedMultiplyAdd(w1, x12, r2); r3 = Vector512.FusedMultiplyAdd(w1, x13, r3);
            r0 = Vector512.FusedMultiplyAdd(w2, x20, r0); r1 = Vector512.FusedMultiplyAdd(w2, x21, r1); r2 = Vector512.FusedMultiplyAdd(w2, x22, r2); r3 = Vector512.FusedMultiplyAdd(w2, x23, r3);
            r0 = Vector512.FusedMultiplyAdd(w3, x30, r0); r1 = Vector512.FusedMultiplyAdd(w3, x31, r1); r2 = Vector512.FusedMultiplyAdd(w3, x32, r2); r3 = Vector512.FusedMultiplyAdd(w3, x33, r3);
            Vector512.Store(r0, row); Vector512.Store(r1, row + 16); Vector512.Store(r2, row + 32); Vector512.Store(r3, row + 48);
        }
    }
}

using System;
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Kiln.Runtime.Cpu;

// Fused scaled dot-product attention (flash-attention style): scores are computed one block of 64 keys at a time
// with an online softmax, so the T×T matrix never exists; the backward recomputes each block's probabilities from
// the saved log-sum-exp. Work is split over batch × heads. Semantics (shared with the CUDA kernels and the float64
// reference): scale 1/√d; with `causal`, query i sees key j when j ≤ i + (Tk − Tq); with `keep` [B, Tk], keys whose
// keep is 0 are hidden; a query that sees no key gets a zero output, a log-sum-exp of −∞ and zero gradients.
public static unsafe partial class Kernels
{
    private const int AttentionBlock = 64;

    /// <summary>
    /// q [B, H, Tq, d], k and v [B, H, Tk, d], optional keep [B, Tk] → out [B, H, Tq, d + 1]: the attention output in
    /// columns 0..d−1 and each row's log-sum-exp of the scaled scores in column d.
    /// </summary>
    /// <remarks><paramref name="kvRows"/>: rows per (batch, head) in k and v's storage (a KV cache's capacity); −1 means tk.</remarks>
    public static void AttentionForward(float[] q, long qo, float[] k, long ko, float[] v, long vo, float[]? keep, long keepo,
        long batch, long heads, long tq, long tk, long d, bool causal, float[] o, long oo, long kvRows = -1)
    {
        if (kvRows < 0) kvRows = tk;
        if (kvRows < tk) throw new ArgumentOutOfRangeException(nameof(kvRows), kvRows, $"k and v hold {kvRows} rows per head, fewer than the {tk} keys.");
        Check(q, qo, batch * heads * tq * d, "Attention(q)"); Check(k, ko, batch * heads * kvRows * d, "Attention(k)");
        Check(v, vo, batch * heads * kvRows * d, "Attention(v)"); Check(o, oo, batch * heads * tq * (d + 1), "Attention(out)");
        if (keep is not null) Check(keep, keepo, batch * tk, "Attention(keep)");
        if (WideAttention(d)) { AttentionForwardWide(q, qo, k, ko, v, vo, keep, keepo, batch, heads, tq, tk, d, causal, o, oo, kvRows); return; }
        float scale = 1f / MathF.Sqrt(d);
        KilnParallel.For(batch * heads, tq * tk * d, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            var kt = ArrayPool<float>.Shared.Rent((int)d * AttentionBlock);
            var m = ArrayPool<float>.Shared.Rent((int)tq);
            var l = ArrayPool<float>.Shared.Rent((int)tq);
            Span<float> s = stackalloc float[AttentionBlock];
            try
            {
                for (long bh = lo; bh < hi; bh++)
                {
                    long b = bh / heads, qb = qo + bh * tq * d, kb = ko + bh * kvRows * d, vb = vo + bh * kvRows * d, ob = oo + bh * tq * (d + 1);
                    m.AsSpan(0, (int)tq).Fill(float.NegativeInfinity);
                    l.AsSpan(0, (int)tq).Clear();
                    for (long i = 0; i < tq; i++) o.AsSpan((int)(ob + i * (d + 1)), (int)d).Clear();
                    for (long j0 = 0; j0 < tk; j0 += AttentionBlock)
                    {
                        int nb = (int)Math.Min(AttentionBlock, tk - j0);
                        TransposeBlock(k, kb + j0 * d, nb, (int)d, kt);
                        long iStart = causal ? Math.Max(0, j0 - (tk - tq)) : 0;
                        for (long i = iStart; i < tq; i++)
                        {
                            int visible = Visible(causal, i, j0, nb, tq, tk);
                            Scores(q.AsSpan((int)(qb + i * d), (int)d), kt, scale, s);
                            float max = MaskAndMax(s, visible, keep, keepo + b * tk + j0);
                            if (float.IsNegativeInfinity(max)) continue;
                            float mNew = Math.Max(m[i], max);
                            float alpha = float.IsNegativeInfinity(m[i]) ? 0f : MathF.Exp(m[i] - mNew);
                            float sum = ExpShifted(s, mNew);
                            l[i] = l[i] * alpha + sum;
                            m[i] = mNew;
                            var row = o.AsSpan((int)(ob + i * (d + 1)), (int)d);
                            if (alpha != 1f) ScaleInPlace(row, alpha);
                            for (int jj = 0; jj < visible; jj++)
                                if (s[jj] != 0f) Axpy(s[jj], v.AsSpan((int)(vb + (j0 + jj) * d), (int)d), row);
                        }
                    }
                    for (long i = 0; i < tq; i++)
                    {
                        var row = o.AsSpan((int)(ob + i * (d + 1)), (int)(d + 1));
                        if (l[i] > 0)
                        {
                            ScaleInPlace(row[..(int)d], 1f / l[i]);
                            row[(int)d] = m[i] + MathF.Log(l[i]);
                        }
                        else { row.Clear(); row[(int)d] = float.NegativeInfinity; }
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(kt); ArrayPool<float>.Shared.Return(m); ArrayPool<float>.Shared.Return(l);
            }
        });
    }

    /// <summary>
    /// The gradient of <see cref="AttentionForward"/>: from q, k, v, keep, its output (with the log-sum-exp column) and the
    /// output's gradient dOut [B, H, Tq, d + 1] (column d ignored) → grad [B, H, Tq + 2·Tk, d]: dq in rows 0..Tq−1, dk in
    /// rows Tq..Tq+Tk−1 and dv in the last Tk rows of each (batch, head).
    /// </summary>
    public static void AttentionBackward(float[] q, long qo, float[] k, long ko, float[] v, long vo, float[]? keep, long keepo,
        float[] o, long oo, float[] dout, long dto, long batch, long heads, long tq, long tk, long d, bool causal, float[] grad, long go)
    {
        Check(q, qo, batch * heads * tq * d, "AttentionGrad(q)"); Check(k, ko, batch * heads * tk * d, "AttentionGrad(k)");
        Check(v, vo, batch * heads * tk * d, "AttentionGrad(v)"); Check(o, oo, batch * heads * tq * (d + 1), "AttentionGrad(out)");
        Check(dout, dto, batch * heads * tq * (d + 1), "AttentionGrad(dout)"); Check(grad, go, batch * heads * (tq + 2 * tk) * d, "AttentionGrad(grad)");
        if (keep is not null) Check(keep, keepo, batch * tk, "AttentionGrad(keep)");
        if (WideAttention(d)) { AttentionBackwardWide(q, qo, k, ko, v, vo, keep, keepo, o, oo, dout, dto, batch, heads, tq, tk, d, causal, grad, go); return; }
        float scale = 1f / MathF.Sqrt(d);
        KilnParallel.For(batch * heads, 2 * tq * tk * d, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (lo, hi) =>
        {
            var kt = ArrayPool<float>.Shared.Rent((int)d * AttentionBlock);
            var vt = ArrayPool<float>.Shared.Rent((int)d * AttentionBlock);
            var delta = ArrayPool<float>.Shared.Rent((int)tq);
            Span<float> s = stackalloc float[AttentionBlock];
            Span<float> dp = stackalloc float[AttentionBlock];
            try
            {
                for (long bh = lo; bh < hi; bh++)
                {
                    long b = bh / heads, qb = qo + bh * tq * d, kb = ko + bh * tk * d, vb = vo + bh * tk * d;
                    long ob = oo + bh * tq * (d + 1), db = dto + bh * tq * (d + 1);
                    long gq = go + bh * (tq + 2 * tk) * d, gk = gq + tq * d, gv = gk + tk * d;
                    grad.AsSpan((int)gq, (int)((tq + 2 * tk) * d)).Clear();
                    for (long i = 0; i < tq; i++)
                        delta[i] = Dot(dout.AsSpan((int)(db + i * (d + 1)), (int)d), o.AsSpan((int)(ob + i * (d + 1)), (int)d));
                    for (long j0 = 0; j0 < tk; j0 += AttentionBlock)
                    {
                        int nb = (int)Math.Min(AttentionBlock, tk - j0);
                        TransposeBlock(k, kb + j0 * d, nb, (int)d, kt);
                        TransposeBlock(v, vb + j0 * d, nb, (int)d, vt);
                        long iStart = causal ? Math.Max(0, j0 - (tk - tq)) : 0;
                        for (long i = iStart; i < tq; i++)
                        {
                            float lse = o[ob + i * (d + 1) + d];
                            if (float.IsNegativeInfinity(lse)) continue;
                            int visible = Visible(causal, i, j0, nb, tq, tk);
                            var qi = q.AsSpan((int)(qb + i * d), (int)d);
                            var doi = dout.AsSpan((int)(db + i * (d + 1)), (int)d);
                            Scores(qi, kt, scale, s);
                            MaskAndMax(s, visible, keep, keepo + b * tk + j0);
                            ExpShifted(s, lse);
                            Scores(doi, vt, 1f, dp);
                            var dqi = grad.AsSpan((int)(gq + i * d), (int)d);
                            for (int jj = 0; jj < visible; jj++)
                            {
                                float p = s[jj];
                                if (p == 0f) continue;
                                float ds = p * (dp[jj] - delta[i]) * scale;
                                Axpy(p, doi, grad.AsSpan((int)(gv + (j0 + jj) * d), (int)d));
                                Axpy(ds, qi, grad.AsSpan((int)(gk + (j0 + jj) * d), (int)d));
                                Axpy(ds, k.AsSpan((int)(kb + (j0 + jj) * d), (int)d), dqi);
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

    /// <summary>
    /// Causal attention of <paramref name="tq"/> new positions against a KV cache: appends the new keys and values (k, v
    /// [B, H, tq, d]) at positions <paramref name="past"/>… of <paramref name="cache"/>, then attends each new query
    /// (absolute position past + i) to cached positions 0 … past + i. Output as <see cref="AttentionForward"/>.
    /// </summary>
    public static void AttentionDecode(float[] q, long qo, float[] k, long ko, float[] v, long vo,
        long batch, long heads, long tq, long d, AttentionCache cache, long past, float[] o, long oo)
    {
        ArgumentNullException.ThrowIfNull(cache);
        Check(k, ko, batch * heads * tq * d, "AttentionDecode(k)"); Check(v, vo, batch * heads * tq * d, "AttentionDecode(v)");
        if (cache.Batch != batch || cache.Heads != heads || cache.HeadSize != d)
            throw new InvalidOperationException($"The KV cache is [{cache.Batch}, {cache.Heads}, {cache.Capacity}, {cache.HeadSize}] but the step is [{batch}, {heads}, {tq}, {d}].");
        if (past < 0 || past + tq > cache.Capacity)
            throw new InvalidOperationException($"Positions {past}…{past + tq - 1} do not fit the KV cache of {cache.Capacity}.");
        long cap = cache.Capacity;
        for (long bh = 0; bh < batch * heads; bh++)
        {
            Array.Copy(k, ko + bh * tq * d, cache.K, (bh * cap + past) * d, tq * d);
            Array.Copy(v, vo + bh * tq * d, cache.V, (bh * cap + past) * d, tq * d);
        }
        AttentionForward(q, qo, cache.K, 0, cache.V, 0, null, 0, batch, heads, tq, past + tq, d, causal: true, o, oo, kvRows: cap);
    }

    /// <summary>How many keys of the block starting at <paramref name="j0"/> (of <paramref name="nb"/>) query <paramref name="i"/> may see.</summary>
    private static int Visible(bool causal, long i, long j0, int nb, long tq, long tk) =>
        causal ? (int)Math.Clamp(i + (tk - tq) - j0 + 1, 0, nb) : nb;

    /// <summary>Rows [0, nb) of a [nb, d] block → kt [d, 64] (columns past nb zero).</summary>
    private static void TransposeBlock(float[] src, long offset, int nb, int d, float[] kt)
    {
        if (nb < AttentionBlock) kt.AsSpan(0, d * AttentionBlock).Clear();
        for (int j = 0; j < nb; j++)
        {
            var row = src.AsSpan((int)(offset + (long)j * d), d);
            for (int c = 0; c < d; c++) kt[c * AttentionBlock + j] = row[c];
        }
    }

    /// <summary>s[j] = scale · Σ_c x[c]·kt[c, j] for the 64 columns of a transposed block (eight 8-lane accumulators).</summary>
    private static void Scores(ReadOnlySpan<float> x, float[] kt, float scale, Span<float> s)
    {
        ref float t = ref MemoryMarshal.GetArrayDataReference(kt);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int c = 0; c < x.Length; c++)
        {
            var xc = Vector256.Create(x[c] * scale);
            ref float r = ref Unsafe.Add(ref t, c * AttentionBlock);
            a0 = Vector256.FusedMultiplyAdd(xc, Vector256.LoadUnsafe(ref r, 0), a0);
            a1 = Vector256.FusedMultiplyAdd(xc, Vector256.LoadUnsafe(ref r, 8), a1);
            a2 = Vector256.FusedMultiplyAdd(xc, Vector256.LoadUnsafe(ref r, 16), a2);
            a3 = Vector256.FusedMultiplyAdd(xc, Vector256.LoadUnsafe(ref r, 24), a3);
            a4 = Vector256.FusedMultiplyAdd(xc, Vector256.LoadUnsafe(ref r, 32), a4);
            a5 = Vector256.FusedMultiplyAdd(xc, Vector256.LoadUnsafe(ref r, 40), a5);
            a6 = Vector256.FusedMultiplyAdd(xc, Vector256.LoadUnsafe(ref r, 48), a6);
            a7 = Vector256.FusedMultiplyAdd(xc, Vector256.LoadUnsafe(ref r, 56), a7);
        }
        ref float o = ref MemoryMarshal.GetReference(s);
        a0.StoreUnsafe(ref o, 0); a1.StoreUnsafe(ref o, 8); a2.StoreUnsafe(ref o, 16); a3.StoreUnsafe(ref o, 24);
        a4.StoreUnsafe(ref o, 32); a5.StoreUnsafe(ref o, 40); a6.StoreUnsafe(ref o, 48); a7.StoreUnsafe(ref o, 56);
    }

    /// <summary>Hides keys past <paramref name="visible"/> and those whose keep is 0 (−∞); returns the largest score.</summary>
    private static float MaskAndMax(Span<float> s, int visible, float[]? keep, long keepAt)
    {
        float max = float.NegativeInfinity;
        for (int j = 0; j < s.Length; j++)
        {
            if (j >= visible || (keep is not null && keep[keepAt + j] == 0f)) { s[j] = float.NegativeInfinity; continue; }
            if (s[j] > max) max = s[j];
        }
        return max;
    }

    /// <summary>s[j] = exp(s[j] − shift) over the block (hidden keys, at −∞, become 0); returns the sum.</summary>
    private static float ExpShifted(Span<float> s, float shift)
    {
        var sh = Vector256.Create(shift);
        var sum = Vector256<float>.Zero;
        ref float r = ref MemoryMarshal.GetReference(s);
        for (int j = 0; j < AttentionBlock; j += 8)
        {
            var e = Vector256.Exp(Vector256.LoadUnsafe(ref r, (nuint)j) - sh);
            e.StoreUnsafe(ref r, (nuint)j);
            sum += e;
        }
        return Vector256.Sum(sum); // hidden keys hold −∞, so their terms are exactly 0
    }

    private static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        int c = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var av = Vector256.Create(a);
            ref float xr = ref MemoryMarshal.GetReference(x); ref float yr = ref MemoryMarshal.GetReference(y);
            for (; c + 8 <= x.Length; c += 8)
                Vector256.FusedMultiplyAdd(av, Vector256.LoadUnsafe(ref xr, (nuint)c), Vector256.LoadUnsafe(ref yr, (nuint)c)).StoreUnsafe(ref yr, (nuint)c);
        }
        for (; c < x.Length; c++) y[c] += a * x[c];
    }

    private static void ScaleInPlace(Span<float> y, float a)
    {
        int c = 0;
        var av = Vector256.Create(a);
        ref float yr = ref MemoryMarshal.GetReference(y);
        for (; c + 8 <= y.Length; c += 8) (Vector256.LoadUnsafe(ref yr, (nuint)c) * av).StoreUnsafe(ref yr, (nuint)c);
        for (; c < y.Length; c++) y[c] *= a;
    }

    private static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int c = 0;
        var acc = Vector256<float>.Zero;
        ref float xr = ref MemoryMarshal.GetReference(x); ref float yr = ref MemoryMarshal.GetReference(y);
        for (; c + 8 <= x.Length; c += 8) acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref xr, (nuint)c), Vector256.LoadUnsafe(ref yr, (nuint)c), acc);
        float r = Vector256.Sum(acc);
        for (; c < x.Length; c++) r += x[c] * y[c];
        return r;
    }
}

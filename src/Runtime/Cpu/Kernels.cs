using System;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Kiln.Runtime.Cpu;

/// <summary>
/// The CPU kernels generated programs call for everything that is not a fused elementwise loop:
/// matmuls (over <see cref="Gemm"/>), reductions, movement and indexing. Offsets and sizes are element
/// counts; the memory plan guarantees the ranges are in bounds, and each kernel still validates them.
/// </summary>
public static unsafe partial class Kernels
{
    private static void Check<T>(T[] a, long offset, long length, string what)
    {
        if (offset < 0 || length < 0 || offset + length > a.LongLength)
            throw new IndexOutOfRangeException($"Kiln kernel {what}: range [{offset}, {offset + length}) is outside a buffer of {a.LongLength} elements (a memory-plan bug; please report it).");
    }

    // ───────────────────────────── matmul ─────────────────────────────

    /// <summary>
    /// C = (acc ? C : 0) + op(A)·op(B) for every batch index. With no batch dims this is one GEMM. Batch
    /// strides are element strides of A and B per batch dimension (0 broadcasts); C is dense.
    /// </summary>
    public static unsafe void MatMul(bool transA, bool transB, long m, long n, long k, float[] a, long ao, float[] b, long bo, float[] c, long co,
        long[]? batch, long[]? strideA, long[]? strideB, bool accumulate)
    {
        long batchCount = 1;
        if (batch is not null) foreach (var d in batch) batchCount *= d;
        Check(c, co, batchCount * m * n, "MatMul(C)");
        int lda = (int)(transA ? m : k), ldb = (int)(transB ? k : n);
        fixed (float* pa = a, pb = b, pc = c)
        {
            if (batch is null || batch.Length == 0)
            {
                Check(a, ao, m * k, "MatMul(A)"); Check(b, bo, k * n, "MatMul(B)");
                Gemm.Sgemm(transA, transB, (int)m, (int)n, (int)k, pa + ao, lda, pb + bo, ldb, pc + co, (int)n, accumulate);
                return;
            }
            var idx = new long[batch.Length];
            for (long t = 0; t < batchCount; t++)
            {
                long oa = ao, ob = bo;
                for (int d = 0; d < batch.Length; d++) { oa += idx[d] * strideA![d]; ob += idx[d] * strideB![d]; }
                Check(a, oa, m * k, "MatMul(A)"); Check(b, ob, k * n, "MatMul(B)");
                Gemm.Sgemm(transA, transB, (int)m, (int)n, (int)k, pa + oa, lda, pb + ob, ldb, pc + co + t * m * n, (int)n, accumulate);
                for (int d = batch.Length - 1; d >= 0; d--)
                {
                    if (++idx[d] < batch[d]) break;
                    idx[d] = 0;
                }
            }
        }
    }

    // ───────────────────────────── reductions ─────────────────────────────

    /// <summary>dst[o, i] (+)= Σ_j src[o, j, i] for a tensor viewed as [outer, n, inner].</summary>
    public static void ReduceSum(float[] src, long so, float[] dst, long d0, long outer, long n, long inner, bool accumulate)
    {
        Check(src, so, outer * n * inner, "ReduceSum(src)"); Check(dst, d0, outer * inner, "ReduceSum(dst)");
        KilnParallel.For(outer, n * inner, (lo, hi) =>
        {
            var s = src.AsSpan(); var d = dst.AsSpan();
            for (long o = lo; o < hi; o++)
            {
                var row = d.Slice((int)(d0 + o * inner), (int)inner);
                if (inner == 1)
                {
                    float sum = Sum(s.Slice((int)(so + o * n), (int)n));
                    row[0] = accumulate ? row[0] + sum : sum;
                    continue;
                }
                if (!accumulate) row.Clear();
                for (long j = 0; j < n; j++) AddTo(row, s.Slice((int)(so + (o * n + j) * inner), (int)inner));
            }
        });
    }

    /// <summary>dst[o, i] = max_j src[o, j, i].</summary>
    public static void ReduceMax(float[] src, long so, float[] dst, long d0, long outer, long n, long inner)
    {
        Check(src, so, outer * n * inner, "ReduceMax(src)"); Check(dst, d0, outer * inner, "ReduceMax(dst)");
        KilnParallel.For(outer, n * inner, (lo, hi) =>
        {
            var s = src.AsSpan(); var d = dst.AsSpan();
            for (long o = lo; o < hi; o++)
            {
                var row = d.Slice((int)(d0 + o * inner), (int)inner);
                s.Slice((int)(so + o * n * inner), (int)inner).CopyTo(row);
                for (long j = 1; j < n; j++)
                {
                    var x = s.Slice((int)(so + (o * n + j) * inner), (int)inner);
                    for (int i = 0; i < row.Length; i++) if (x[i] > row[i] || float.IsNaN(x[i])) row[i] = x[i];
                }
            }
        });
    }

    /// <summary>
    /// Sums the dimensions marked <paramref name="reduced"/> of a tensor with (collapsed) dimensions
    /// <paramref name="dims"/>: the gradient of a broadcast.
    /// </summary>
    public static void SumTo(float[] src, long so, float[] dst, long d0, long[] dims, bool[] reduced, bool accumulate)
    {
        long total = 1, kept = 1;
        for (int i = 0; i < dims.Length; i++) { total *= dims[i]; if (!reduced[i]) kept *= dims[i]; }
        Check(src, so, total, "SumTo(src)"); Check(dst, d0, kept, "SumTo(dst)");
        // Common shapes reduce to one [outer, n, inner] sum.
        if (dims.Length == 1 && reduced[0]) { ReduceSum(src, so, dst, d0, 1, dims[0], 1, accumulate); return; }
        if (dims.Length == 2) { if (reduced[0]) ReduceSum(src, so, dst, d0, 1, dims[0], dims[1], accumulate); else ReduceSum(src, so, dst, d0, dims[0], dims[1], 1, accumulate); return; }
        if (dims.Length == 3 && !reduced[0] && reduced[1]) { ReduceSum(src, so, dst, d0, dims[0], dims[1], dims[2], accumulate); return; }
        if (!accumulate) Array.Clear(dst, (int)d0, (int)kept);
        var idx = new long[dims.Length];
        for (long t = 0; t < total; t++)
        {
            long di = 0;
            for (int d = 0; d < dims.Length; d++) if (!reduced[d]) di = di * dims[d] + idx[d];
            dst[d0 + di] += src[so + t];
            for (int d = dims.Length - 1; d >= 0; d--) { if (++idx[d] < dims[d]) break; idx[d] = 0; }
        }
    }

    private static float Sum(ReadOnlySpan<float> x)
    {
        var acc = Vector256<float>.Zero;
        int i = 0;
        ref float r = ref MemoryMarshal.GetReference(x);
        for (; i <= x.Length - 8; i += 8) acc += Vector256.LoadUnsafe(ref r, (nuint)i);
        float s = Vector256.Sum(acc);
        for (; i < x.Length; i++) s += x[i];
        return s;
    }

    private static void AddTo(Span<float> dst, ReadOnlySpan<float> src)
    {
        int i = 0;
        ref float d = ref MemoryMarshal.GetReference(dst);
        ref float s = ref MemoryMarshal.GetReference(src);
        for (; i <= dst.Length - 8; i += 8)
            (Vector256.LoadUnsafe(ref d, (nuint)i) + Vector256.LoadUnsafe(ref s, (nuint)i)).StoreUnsafe(ref d, (nuint)i);
        for (; i < dst.Length; i++) dst[i] += src[i];
    }

    /// <summary>dst[d0 .. d0+n) += src[so .. so+n).</summary>
    public static void AddInto(float[] dst, long d0, float[] src, long so, long n)
    {
        Check(dst, d0, n, "AddInto(dst)"); Check(src, so, n, "AddInto(src)");
        AddTo(dst.AsSpan((int)d0, (int)n), src.AsSpan((int)so, (int)n));
    }

    /// <summary>Rounds a[off .. off+n) in place to the low-precision type (mode 1 bf16, 2 fp16; 0 leaves it), nearest even.</summary>
    public static void RoundLow(float[] a, long off, long n, int mode)
    {
        if (mode == 0) return;
        Check(a, off, n, "RoundLow");
        var span = a.AsSpan((int)off, (int)n);
        if (mode == 1) Precision.Bf16.Round(span);
        else Precision.Fp16.Round(span);
    }

    /// <summary>dst[d0 .. d0+n) += value.</summary>
    public static void AddScalarInto(float[] dst, long d0, long n, float value)
    {
        Check(dst, d0, n, "AddScalarInto");
        var d = dst.AsSpan((int)d0, (int)n);
        for (int i = 0; i < d.Length; i++) d[i] += value;
    }

    /// <summary>dst[d0 .. d0+n) = value.</summary>
    public static void Fill(float[] dst, long d0, long n, float value)
    {
        Check(dst, d0, n, "Fill");
        dst.AsSpan((int)d0, (int)n).Fill(value);
    }

    // ───────────────────────────── movement ─────────────────────────────

    /// <summary>dst = src with axes reordered: output axis i is input axis order[i].</summary>
    public static void Permute<T>(T[] src, long so, T[] dst, long d0, long[] shape, int[] order)
    {
        int r = shape.Length;
        long total = 1; foreach (var d in shape) total *= d;
        Check(src, so, total, "Permute(src)"); Check(dst, d0, total, "Permute(dst)");
        var inStride = new long[r];
        long st = 1;
        for (int i = r - 1; i >= 0; i--) { inStride[i] = st; st *= shape[i]; }
        var outShape = new long[r]; var strideOfOut = new long[r];
        for (int i = 0; i < r; i++) { outShape[i] = shape[order[i]]; strideOfOut[i] = inStride[order[i]]; }
        long inner = outShape[r - 1], innerStride = strideOfOut[r - 1];
        long rows = total / Math.Max(1, inner);
        KilnParallel.For(rows, inner, (lo, hi) =>
        {
            var idx = new long[r];
            for (long row = lo; row < hi; row++)
            {
                long rem = row, baseIn = so;
                for (int d = r - 2; d >= 0; d--) { long i = rem % outShape[d]; rem /= outShape[d]; baseIn += i * strideOfOut[d]; }
                long o = d0 + row * inner;
                for (long j = 0; j < inner; j++) dst[o + j] = src[baseIn + j * innerStride];
            }
        });
    }

    /// <summary>Copies elements [start, start+len) of the middle axis of src viewed as [outer, srcLen, inner].</summary>
    public static void SliceAxis<T>(T[] src, long so, T[] dst, long d0, long outer, long srcLen, long start, long len, long inner)
    {
        Check(src, so, outer * srcLen * inner, "Slice(src)"); Check(dst, d0, outer * len * inner, "Slice(dst)");
        if (start < 0 || start + len > srcLen) throw new IndexOutOfRangeException($"Slice [{start}, {start + len}) is outside an axis of {srcLen}.");
        for (long o = 0; o < outer; o++)
            Array.Copy(src, so + (o * srcLen + start) * inner, dst, d0 + o * len * inner, len * inner);
    }

    /// <summary>Zero-pads the middle axis: dst viewed as [outer, dstLen, inner] holds src at [before, before+srcLen).</summary>
    public static void PadAxis(float[] src, long so, float[] dst, long d0, long outer, long srcLen, long before, long dstLen, long inner)
    {
        Check(src, so, outer * srcLen * inner, "Pad(src)"); Check(dst, d0, outer * dstLen * inner, "Pad(dst)");
        Array.Clear(dst, (int)d0, (int)(outer * dstLen * inner));
        for (long o = 0; o < outer; o++)
            Array.Copy(src, so + o * srcLen * inner, dst, d0 + (o * dstLen + before) * inner, srcLen * inner);
    }

    /// <summary>Writes src (viewed as [outer, srcLen, inner]) into dst ([outer, dstLen, inner]) at axis offset dstStart.</summary>
    public static void CopyIntoAxis<T>(T[] src, long so, T[] dst, long d0, long outer, long srcLen, long dstLen, long dstStart, long inner)
    {
        Check(src, so, outer * srcLen * inner, "Concat(src)"); Check(dst, d0, outer * dstLen * inner, "Concat(dst)");
        for (long o = 0; o < outer; o++)
            Array.Copy(src, so + o * srcLen * inner, dst, d0 + (o * dstLen + dstStart) * inner, srcLen * inner);
    }

    // ───────────────────────────── indexing ─────────────────────────────

    /// <summary>dst[i, :] = table[idx[i], :] for a table [rows, dim].</summary>
    public static void Gather(float[] table, long to, long rows, long dim, int[] idx, long io, long count, float[] dst, long d0)
    {
        Check(table, to, rows * dim, "Gather(table)"); Check(idx, io, count, "Gather(indices)"); Check(dst, d0, count * dim, "Gather(dst)");
        for (long i = 0; i < count; i++)
        {
            int r = idx[io + i];
            if ((uint)r >= (ulong)rows) throw new IndexOutOfRangeException($"Embedding index {r} at position {i} is outside the table's {rows} rows; check the token ids or the vocabulary size.");
            Array.Copy(table, to + r * dim, dst, d0 + i * dim, dim);
        }
    }

    /// <summary>dst[idx[i], :] += dy[i, :] (the gradient of <see cref="Gather"/>); dst is cleared first unless accumulating.</summary>
    public static void GatherGrad(float[] dy, long yo, int[] idx, long io, long count, long rows, long dim, float[] dst, long d0, bool accumulate)
    {
        Check(dy, yo, count * dim, "GatherGrad(dy)"); Check(idx, io, count, "GatherGrad(indices)"); Check(dst, d0, rows * dim, "GatherGrad(dst)");
        if (!accumulate) Array.Clear(dst, (int)d0, (int)(rows * dim));
        for (long i = 0; i < count; i++)
        {
            int r = idx[io + i];
            if ((uint)r >= (ulong)rows) throw new IndexOutOfRangeException($"Embedding index {r} at position {i} is outside the table's {rows} rows.");
            AddTo(dst.AsSpan((int)(d0 + r * dim), (int)dim), dy.AsSpan((int)(yo + i * dim), (int)dim));
        }
    }

    /// <summary>dst[i] = x[i, idx[i]] for x [count, classes]; 0 where idx[i] is the ignore index.</summary>
    public static void PickLast(float[] x, long xo, int[] idx, long io, long count, long classes, int ignore, float[] dst, long d0)
    {
        Check(x, xo, count * classes, "PickLast(x)"); Check(idx, io, count, "PickLast(indices)"); Check(dst, d0, count, "PickLast(dst)");
        for (long i = 0; i < count; i++)
        {
            int t = idx[io + i];
            if (t == ignore) { dst[d0 + i] = 0; continue; }
            if ((uint)t >= (ulong)classes) throw new IndexOutOfRangeException($"Target {t} at position {i} is outside the {classes} classes (and is not the ignore index {ignore}).");
            dst[d0 + i] = x[xo + i * classes + t];
        }
    }

    /// <summary>dst[i, :] = 0 except dst[i, idx[i]] = dy[i] (the gradient of <see cref="PickLast"/>).</summary>
    public static void PickLastGrad(float[] dy, long yo, int[] idx, long io, long count, long classes, int ignore, float[] dst, long d0)
    {
        Check(dy, yo, count, "PickLastGrad(dy)"); Check(idx, io, count, "PickLastGrad(indices)"); Check(dst, d0, count * classes, "PickLastGrad(dst)");
        Array.Clear(dst, (int)d0, (int)(count * classes));
        for (long i = 0; i < count; i++)
        {
            int t = idx[io + i];
            if (t == ignore || (uint)t >= (ulong)classes) continue;
            dst[d0 + i * classes + t] = dy[yo + i];
        }
    }

    /// <summary>dst[i] = src[i] ≠ ignore ? 1 : 0.</summary>
    public static void IndexMask(int[] src, long so, long count, int ignore, float[] dst, long d0)
    {
        Check(src, so, count, "IndexMask(src)"); Check(dst, d0, count, "IndexMask(dst)");
        for (long i = 0; i < count; i++) dst[d0 + i] = src[so + i] != ignore ? 1f : 0f;
    }

    /// <summary>dst[i] = (float)src[i].</summary>
    public static void ToFloat(int[] src, long so, long count, float[] dst, long d0)
    {
        Check(src, so, count, "ToFloat(src)"); Check(dst, d0, count, "ToFloat(dst)");
        for (long i = 0; i < count; i++) dst[d0 + i] = src[so + i];
    }

    /// <summary>dst[i] = i for i &lt; n.</summary>
    public static void Arange(int[] dst, long d0, long n) => Arange(dst, d0, n, 0);

    /// <summary>start, start + 1, …, start + n − 1 (the absolute positions of a decode step).</summary>
    public static void Arange(int[] dst, long d0, long n, long start)
    {
        Check(dst, d0, n, "Arange");
        for (int i = 0; i < n; i++) dst[d0 + i] = checked((int)(start + i));
    }
}

using System;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Precision;

namespace Kiln.Cuda.Emulator;

public sealed unsafe partial class EmulatedGpu
{
    /// <summary>
    /// cuBLASLt's matmul, written from its documented contract (column-major; see <see cref="LtMatmul"/>): for every
    /// batch, <c>D = Alpha·op(A)·op(B) + Beta·C (+ bias per row)</c> with fp32 products and accumulation, the result
    /// rounded to <c>TypeC</c> to nearest even. With <c>Beta = 0</c>, C is not read (as in cuBLAS: NaNs in it do not
    /// propagate). The sum over k uses eight interleaved fp32 partial sums, a fixed order on every machine.
    /// </summary>
    public void Matmul(in LtMatmul matmul)
    {
        ThrowIfDisposed();
        var g = matmul;
        if (g.M <= 0 || g.N <= 0 || g.K <= 0)
            throw new ArgumentException($"Matmul needs positive sizes; got M={g.M}, N={g.N}, K={g.K}.", nameof(matmul));
        if (g.BatchCount <= 0)
            throw new ArgumentException($"Matmul needs a positive batch count; got {g.BatchCount}.", nameof(matmul));
        CheckType(g.TypeA, "A");
        CheckType(g.TypeB, "B");
        CheckType(g.TypeC, "C");
        // Stored shapes (column-major rows × columns) of the operands.
        long rowsA = g.TransA ? g.K : g.M, colsA = g.TransA ? g.M : g.K;
        long rowsB = g.TransB ? g.N : g.K, colsB = g.TransB ? g.K : g.N;
        CheckOperand("A", g.A, g.TypeA, rowsA, colsA, g.Lda, g.StrideA, g.BatchCount);
        CheckOperand("B", g.B, g.TypeB, rowsB, colsB, g.Ldb, g.StrideB, g.BatchCount);
        CheckOperand("C", g.C, g.TypeC, g.M, g.N, g.Ldc, g.StrideC, g.BatchCount);
        if (g.Bias != 0) CheckRange(g.Bias, g.M * GpuDataTypes.SizeOf(g.TypeC), "Matmul bias (M elements of TypeC)");

        long m = g.M, n = g.N, k = g.K;
        // op(A) row i and op(B) column j, each contiguous over k.
        var opA = new float[m * k];
        var opB = new float[n * k];
        byte* a = (byte*)g.A, b = (byte*)g.B, c = (byte*)g.C, bias = (byte*)g.Bias;
        for (int batch = 0; batch < g.BatchCount; batch++)
        {
            long offA = batch * g.StrideA, offB = batch * g.StrideB, offC = batch * g.StrideC;
            for (long i = 0; i < m; i++)
                for (long p = 0; p < k; p++)
                    opA[i * k + p] = Load(a, g.TypeA, offA + (g.TransA ? p + i * g.Lda : i + p * g.Lda));
            for (long j = 0; j < n; j++)
                for (long p = 0; p < k; p++)
                    opB[j * k + p] = Load(b, g.TypeB, offB + (g.TransB ? j + p * g.Ldb : p + j * g.Ldb));
            for (long j = 0; j < n; j++)
                for (long i = 0; i < m; i++)
                {
                    float d = g.Alpha * Dot(opA.AsSpan((int)(i * k), (int)k), opB.AsSpan((int)(j * k), (int)k));
                    long at = offC + i + j * g.Ldc;
                    if (g.Beta != 0f) d += g.Beta * Load(c, g.TypeC, at);
                    if (bias != null) d += Load(bias, g.TypeC, i);
                    Store(c, g.TypeC, at, d);
                }
        }
    }

    private static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int p = 0;
        for (; p + 8 <= x.Length; p += 8)
        {
            s0 += x[p] * y[p];
            s1 += x[p + 1] * y[p + 1];
            s2 += x[p + 2] * y[p + 2];
            s3 += x[p + 3] * y[p + 3];
            s4 += x[p + 4] * y[p + 4];
            s5 += x[p + 5] * y[p + 5];
            s6 += x[p + 6] * y[p + 6];
            s7 += x[p + 7] * y[p + 7];
        }
        for (; p < x.Length; p++) s0 += x[p] * y[p];
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    }

    private static float Load(byte* p, GpuDataType type, long index) => type switch
    {
        GpuDataType.Float32 => ((float*)p)[index],
        GpuDataType.BFloat16 => Bf16.ToFloat(((ushort*)p)[index]),
        _ => (float)BitConverter.UInt16BitsToHalf(((ushort*)p)[index]),
    };

    private static void Store(byte* p, GpuDataType type, long index, float value)
    {
        switch (type)
        {
            case GpuDataType.Float32: ((float*)p)[index] = value; break;
            case GpuDataType.BFloat16: ((ushort*)p)[index] = Bf16.FromFloat(value); break;
            default: ((ushort*)p)[index] = BitConverter.HalfToUInt16Bits((Half)value); break;
        }
    }

    private static void CheckType(GpuDataType type, string operand)
    {
        if (type is not (GpuDataType.Float32 or GpuDataType.BFloat16 or GpuDataType.Float16))
            throw new ArgumentException($"Matmul operand {operand} has type {type}; the emulator (like Kiln's cuBLASLt use) supports Float32, BFloat16 and Float16.");
    }

    private void CheckOperand(string operand, ulong pointer, GpuDataType type, long rows, long cols, long ld, long stride, int batchCount)
    {
        if (ld < rows)
            throw new ArgumentException($"Matmul operand {operand}: the leading dimension {ld} is less than its {rows} stored rows (column-major, as cuBLASLt).");
        if (stride < 0)
            throw new ArgumentException($"Matmul operand {operand}: the batch stride {stride} is negative.");
        long elements = (batchCount - 1) * stride + (cols - 1) * ld + rows;
        CheckRange(pointer, elements * GpuDataTypes.SizeOf(type), $"Matmul operand {operand} ({rows}×{cols}, ld {ld}, batch stride {stride} × {batchCount})");
    }
}

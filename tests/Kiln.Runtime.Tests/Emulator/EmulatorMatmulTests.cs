using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Cuda.Emulator;
using Kiln.Runtime.Cpu;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Precision;

namespace Kiln.Runtime.Tests.Emulator;

/// <summary>
/// The emulator's <see cref="IGpu.Matmul"/> against float64 references written here from cuBLASLt's column-major
/// contract, and <see cref="LtMatmul.RowMajor"/> end to end against the CPU backend.
/// </summary>
/// <remarks>
/// The matmul is C#, so these tests need no g++ and run everywhere.
/// Tolerance: inputs are exactly representable in their types and the reference is float64, so the error is the
/// fp32 accumulation, at most <c>(K+2)·2⁻²⁴·S</c> with <c>S = |α|·Σ|a·b| + |β·c| + |bias|</c> (doubled for slack), plus
/// the final rounding to the output type, at most <c>eps(TypeC)·|ref|</c>.
/// </remarks>
public sealed class EmulatorMatmulTests
{
    private static float Eps(GpuDataType t) => t switch { GpuDataType.BFloat16 => Bf16.Epsilon, GpuDataType.Float16 => Fp16.Epsilon, _ => 1.0f / (1 << 23) };

    private static float RoundTo(GpuDataType t, float v) => t switch
    {
        GpuDataType.BFloat16 => Bf16.Round(v),
        GpuDataType.Float16 => (float)(Half)v,
        _ => v,
    };

    private static byte[] Encode(float[] values, GpuDataType t)
    {
        if (t == GpuDataType.Float32) return values.SelectMany(BitConverter.GetBytes).ToArray();
        return values.SelectMany(v => BitConverter.GetBytes(t == GpuDataType.BFloat16 ? Bf16.FromFloat(v) : BitConverter.HalfToUInt16Bits((Half)v))).ToArray();
    }

    private static float[] Decode(byte[] raw, GpuDataType t)
    {
        int size = GpuDataTypes.SizeOf(t);
        return Enumerable.Range(0, raw.Length / size).Select(i => t switch
        {
            GpuDataType.Float32 => BitConverter.ToSingle(raw, i * 4),
            GpuDataType.BFloat16 => Bf16.ToFloat(BitConverter.ToUInt16(raw, i * 2)),
            _ => (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(raw, i * 2)),
        }).ToArray();
    }

    /// <summary>Uniform values in [-1, 1), rounded to <paramref name="t"/>.</summary>
    private static float[] RandomValues(Random r, long n, GpuDataType t) =>
        Enumerable.Range(0, (int)n).Select(_ => RoundTo(t, (float)(r.NextDouble() * 2 - 1))).ToArray();

    private static ulong Upload(EmulatedGpu gpu, float[] values, GpuDataType t) => gpu.Upload(Encode(values, t));

    private static float[] Download(EmulatedGpu gpu, ulong p, long n, GpuDataType t) => Decode(gpu.Download<byte>(p, n * GpuDataTypes.SizeOf(t)), t);

    public static IEnumerable<object[]> TypesAndTransposes()
    {
        (GpuDataType, GpuDataType)[] types =
        [
            (GpuDataType.Float32, GpuDataType.Float32), (GpuDataType.BFloat16, GpuDataType.BFloat16), (GpuDataType.Float16, GpuDataType.Float16),
            (GpuDataType.BFloat16, GpuDataType.Float32), (GpuDataType.Float16, GpuDataType.Float32),
        ];
        foreach (var (ab, c) in types)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    yield return [ab, c, ta, tb];
    }

    /// <summary>Checks D (in C's buffer) against the float64 column-major reference; elements of C outside every D stay as they were.</summary>
    private static void CheckColumnMajor(LtMatmul g, float[] a, float[] b, float[] c0, float[] bias, float[] d, int seed)
    {
        var inD = new bool[c0.Length];
        for (int batch = 0; batch < g.BatchCount; batch++)
            for (long j = 0; j < g.N; j++)
                for (long i = 0; i < g.M; i++)
                {
                    double sum = 0, scale = 0;
                    for (long p = 0; p < g.K; p++)
                    {
                        double x = a[batch * g.StrideA + (g.TransA ? p + i * g.Lda : i + p * g.Lda)];
                        double y = b[batch * g.StrideB + (g.TransB ? j + p * g.Ldb : p + j * g.Ldb)];
                        sum += x * y;
                        scale += Math.Abs(x * y);
                    }
                    long at = batch * g.StrideC + i + j * g.Ldc;
                    inD[at] = true;
                    double cTerm = g.Beta == 0 ? 0 : (double)g.Beta * c0[at], biasTerm = g.Bias == 0 ? 0 : bias[i];
                    double expected = g.Alpha * sum + cTerm + biasTerm;
                    double tol = Eps(g.TypeC) * Math.Abs(expected) + 2 * (g.K + 2) * Math.Pow(2, -24) * (Math.Abs(g.Alpha) * scale + Math.Abs(cTerm) + Math.Abs(biasTerm)) + 1e-30;
                    Assert.True(Math.Abs(d[at] - expected) <= tol,
                        $"seed {seed}: D[{i},{j}] of batch {batch} is {d[at]:R}, expected {expected:R} (tolerance {tol:G3})");
                }
        for (int e = 0; e < c0.Length; e++)
            if (!inD[e]) Assert.True(BitConverter.SingleToUInt32Bits(c0[e]) == BitConverter.SingleToUInt32Bits(d[e]), $"element {e} of C lies outside D but changed");
    }

    [Theory]
    [MemberData(nameof(TypesAndTransposes))]
    public void Batched_matmul_with_padding_beta_and_bias_matches_a_float64_reference(GpuDataType typeAB, GpuDataType typeC, bool transA, bool transB)
    {
        int seed = Random.Shared.Next();
        var r = new Random(seed);
        const long m = 13, n = 7, k = 19;
        const int batches = 3;
        long rowsA = transA ? k : m, colsA = transA ? m : k, rowsB = transB ? n : k, colsB = transB ? k : n;
        long lda = rowsA + 3, ldb = rowsB + 2, ldc = m + 5;
        long strideA = lda * colsA + 11, strideB = 0, strideC = ldc * n + 4; // B is broadcast over the batch
        float[] a = RandomValues(r, (batches - 1) * strideA + lda * colsA, typeAB);
        float[] b = RandomValues(r, ldb * colsB, typeAB);
        float[] c = RandomValues(r, (batches - 1) * strideC + ldc * n, typeC);
        float[] bias = RandomValues(r, m, typeC);
        using var gpu = new EmulatedGpu();
        ulong da = Upload(gpu, a, typeAB), db = Upload(gpu, b, typeAB), dc = Upload(gpu, c, typeC), dbias = Upload(gpu, bias, typeC);
        var g = new LtMatmul(transA, transB, m, n, k, da, typeAB, lda, strideA, db, typeAB, ldb, strideB, dc, typeC, ldc, strideC,
            BatchCount: batches, Alpha: 0.75f, Beta: 1f, Bias: dbias);
        gpu.Matmul(g);
        CheckColumnMajor(g, a, b, c, bias, Download(gpu, dc, c.Length, typeC), seed);
    }

    [Fact]
    public void Beta_zero_does_not_read_C_and_stride_zero_broadcasts_A()
    {
        int seed = Random.Shared.Next();
        var r = new Random(seed);
        const long m = 5, n = 9, k = 33;
        const int batches = 4;
        float[] a = RandomValues(r, m * k, GpuDataType.Float32);
        float[] b = RandomValues(r, batches * k * n, GpuDataType.Float32);
        float[] c = Enumerable.Repeat(float.NaN, (int)(batches * m * n)).ToArray(); // would poison D if it were read
        using var gpu = new EmulatedGpu();
        ulong da = gpu.Upload(a), db = gpu.Upload(b), dc = gpu.Upload(c);
        var g = new LtMatmul(false, false, m, n, k, da, GpuDataType.Float32, m, 0, db, GpuDataType.Float32, k, k * n,
            dc, GpuDataType.Float32, m, m * n, BatchCount: batches, Alpha: -2f, Beta: 0f);
        gpu.Matmul(g);
        float[] d = gpu.Download<float>(dc, c.Length);
        Assert.All(d, v => Assert.True(float.IsFinite(v)));
        CheckColumnMajor(g, a, b, c, [], d, seed);
    }

    [Fact]
    public void Operands_beyond_their_allocation_or_a_short_leading_dimension_are_rejected()
    {
        using var gpu = new EmulatedGpu();
        ulong a = gpu.Zeros<float>(6), b = gpu.Zeros<float>(6), c = gpu.Zeros<float>(4);
        var ok = new LtMatmul(false, false, 2, 2, 3, a, GpuDataType.Float32, 2, 0, b, GpuDataType.Float32, 3, 0, c, GpuDataType.Float32, 2, 0, 1, 1f, 0f);
        gpu.Matmul(ok);
        var e = Assert.Throws<ArgumentException>(() => gpu.Matmul(ok with { BatchCount = 2, StrideC = 4 }));
        Assert.Contains("Matmul operand C", e.Message);
        e = Assert.Throws<ArgumentException>(() => gpu.Matmul(ok with { Lda = 1 }));
        Assert.Contains("leading dimension 1 is less than its 2 stored rows", e.Message);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Row_major_mapping_matches_the_CPU_backend(bool transA, bool transB)
    {
        int seed = Random.Shared.Next();
        var r = new Random(seed);
        const long m = 9, n = 6, k = 11;
        float[] a = RandomValues(r, m * k, GpuDataType.Float32), b = RandomValues(r, k * n, GpuDataType.Float32);
        var cpu = new float[m * n];
        Kernels.MatMul(transA, transB, m, n, k, a, 0, b, 0, cpu, 0, null, null, null, accumulate: false);
        using var gpu = new EmulatedGpu();
        ulong da = gpu.Upload(a), db = gpu.Upload(b), dc = gpu.Zeros<float>(m * n);
        gpu.Matmul(LtMatmul.RowMajor(transA, transB, m, n, k, da, GpuDataType.Float32, db, GpuDataType.Float32, dc, GpuDataType.Float32));
        float[] d = gpu.Download<float>(dc, m * n);
        for (int i = 0; i < m * n; i++)
        {
            // Both sum 11 fp32 products in different orders: at most 2·(k+2)·2⁻²⁴·Σ|a·b| ≤ 2·13·2⁻²⁴·k apart for |a|,|b| ≤ 1.
            double tol = 2 * (k + 2) * Math.Pow(2, -24) * k;
            Assert.True(Math.Abs(d[i] - cpu[i]) <= tol, $"seed {seed}: C[{i / n},{i % n}] is {d[i]:R}, the CPU backend gives {cpu[i]:R}");
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Row_major_batched_bf16_with_bias_and_beta_matches_a_row_major_float64_loop(bool transA, bool transB)
    {
        int seed = Random.Shared.Next();
        var r = new Random(seed);
        const long m = 7, n = 10, k = 12;
        const int batches = 2;
        long strideA = m * k, strideB = k * n, strideC = m * n;
        float[] a = RandomValues(r, batches * strideA, GpuDataType.BFloat16), b = RandomValues(r, batches * strideB, GpuDataType.BFloat16);
        float[] c = RandomValues(r, batches * strideC, GpuDataType.Float32), bias = RandomValues(r, n, GpuDataType.Float32);
        using var gpu = new EmulatedGpu();
        ulong da = Upload(gpu, a, GpuDataType.BFloat16), db = Upload(gpu, b, GpuDataType.BFloat16), dc = gpu.Upload(c), dbias = gpu.Upload(bias);
        gpu.Matmul(LtMatmul.RowMajor(transA, transB, m, n, k, da, GpuDataType.BFloat16, db, GpuDataType.BFloat16, dc, GpuDataType.Float32,
            alpha: 1.5f, beta: 1f, batchCount: batches, strideA: strideA, strideB: strideB, strideC: strideC, bias: dbias));
        float[] d = gpu.Download<float>(dc, c.Length);
        for (int batch = 0; batch < batches; batch++)
            for (long row = 0; row < m; row++)
                for (long col = 0; col < n; col++)
                {
                    double sum = 0, scale = 0;
                    for (long p = 0; p < k; p++)
                    {
                        double x = a[batch * strideA + (transA ? p * m + row : row * k + p)];
                        double y = b[batch * strideB + (transB ? col * k + p : p * n + col)];
                        sum += x * y;
                        scale += Math.Abs(x * y);
                    }
                    long at = batch * strideC + row * n + col;
                    double expected = 1.5 * sum + c[at] + bias[col];
                    double tol = 2 * (k + 2) * Math.Pow(2, -24) * (1.5 * scale + Math.Abs(c[at]) + Math.Abs(bias[col])) + Eps(GpuDataType.Float32) * Math.Abs(expected);
                    Assert.True(Math.Abs(d[at] - expected) <= tol, $"seed {seed}: C[{row},{col}] of batch {batch} is {d[at]:R}, expected {expected:R}");
                }
    }
}

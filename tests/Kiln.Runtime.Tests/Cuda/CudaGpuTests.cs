using System;
using System.Collections.Generic;
using System.IO;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Interop;
using Kiln.Runtime.Precision;
using Kiln.Runtime.Tests.Interop;

namespace Kiln.Runtime.Tests.Cuda;

/// <summary>A fact that needs a <see cref="CudaGpu"/> (a GPU, NVRTC and cuBLASLt); skipped, with the reason, where one cannot be opened.</summary>
public sealed class CudaGpuFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> WhyNot = new(() =>
    {
        if (DeviceAvailability.WhyNoGpu is string noGpu)
            return "No CUDA device: " + DeviceAvailability.Summarize(noGpu);
        if (DeviceAvailability.WhyNoNvrtc is string noNvrtc)
            return "A CUDA device is present but NVRTC, needed to compile the test kernels, is not: " + DeviceAvailability.Summarize(noNvrtc);
        if (!CudaGpu.TryOpen(0, out var gpu, out string reason))
            return "CUDA device 0 is present but CudaGpu cannot open it: " + DeviceAvailability.Summarize(reason);
        gpu.Dispose();
        return null;
    });

    /// <summary>Sets <see cref="FactAttribute.Skip"/> when no CudaGpu can be opened.</summary>
    public CudaGpuFactAttribute()
    {
        if (WhyNot.Value is string reason)
            Skip = reason;
    }
}

/// <summary>
/// <see cref="CudaGpu"/> on a real device: copies, fills, kernels compiled by NVRTC, and cuBLASLt matmuls compared with a
/// float64 CPU reference. Skipped visibly without a GPU.
/// </summary>
[Trait("Device", "Gpu")]
public sealed class CudaGpuTests : IDisposable
{
    private readonly string _cache = Path.Combine(Path.GetTempPath(), "kiln-cudagpu-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_cache))
            Directory.Delete(_cache, recursive: true);
    }

    [CudaGpuFact]
    public void Name_says_ordinal_product_architecture_and_memory()
    {
        using var gpu = Open();
        Assert.StartsWith("cuda:0 ", gpu.Name, StringComparison.Ordinal);
        Assert.Contains($"(sm_{gpu.Architecture}, ", gpu.Name, StringComparison.Ordinal);
        Assert.EndsWith(" GiB)", gpu.Name, StringComparison.Ordinal);
        Assert.True(gpu.TotalMemoryBytes > 0);
    }

    [CudaGpuFact]
    public void Bytes_copied_to_the_device_and_back_are_unchanged_and_fill_and_device_copies_touch_only_their_range()
    {
        int seed = TestSeed.Fresh();
        var random = new Random(seed);
        const int n = 4099;
        var data = new byte[n];
        random.NextBytes(data);

        using var gpu = Open();
        ulong a = gpu.Allocate(n), b = gpu.Allocate(n);
        Assert.Equal(0UL, a % 256);
        gpu.CopyToDevice(a, data);
        data.AsSpan().Clear(); // the span may be reused as soon as CopyToDevice returns
        var back = new byte[n];
        gpu.CopyToHost(back, a);
        random = new Random(seed);
        var expected = new byte[n];
        random.NextBytes(expected);
        Assert.Equal(expected, back);

        gpu.Fill(a + 100, 0xAB, 200);
        gpu.CopyDeviceToDevice(b, a, n);
        gpu.CopyToHost(back, b);
        for (int i = 0; i < n; i++)
        {
            byte want = i is >= 100 and < 300 ? (byte)0xAB : expected[i];
            if (back[i] != want)
                Assert.Fail($"byte {i}: 0x{back[i]:X2}, expected 0x{want:X2} (seed {seed})");
        }

        gpu.Free(a);
        gpu.Free(b);
    }

    [CudaGpuFact]
    public void A_kernel_compiled_by_NVRTC_is_cached_then_reloaded_from_the_cache_and_runs()
    {
        int seed = TestSeed.Fresh();
        var random = new Random(seed);
        const int n = 100_003;
        var x = new float[n];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = (float)(random.NextDouble() * 200 - 100);
            y[i] = (float)(random.NextDouble() * 200 - 100);
        }

        var source = new GpuKernelSource("kiln_test.cu", TestKernels.Source, []);
        using var gpu = Open();
        var first = (CudaGpuModule)gpu.LoadModule(source);
        Assert.True(first.LoadedFrom is KernelOrigin.CompiledCubin or KernelOrigin.CompiledPtx, first.Description);
        using var second = (CudaGpuModule)gpu.LoadModule(source);
        Assert.True(second.LoadedFrom is KernelOrigin.CacheCubin or KernelOrigin.CachePtx, second.Description);
        Assert.Throws<KeyNotFoundException>(() => second.GetKernel("no_such_kernel"));

        ulong dx = Upload(gpu, x), dy = Upload(gpu, y), dout = gpu.Allocate(4L * n);
        gpu.Fill(dout, 0xFF, 4L * n); // NaN: an element the kernel skips cannot pass by accident
        second.GetKernel(TestKernels.VectorAdd).Launch((n + 255) / 256, 256, 0, dout, dx, dy, n);
        var result = Download<float>(gpu, dout, n);

        // One IEEE addition on both sides: bit-identical.
        for (int i = 0; i < n; i++)
        {
            if (BitConverter.SingleToInt32Bits(result[i]) != BitConverter.SingleToInt32Bits(x[i] + y[i]))
                Assert.Fail($"element {i}: GPU {result[i]}, CPU {x[i] + y[i]} (seed {seed}, {gpu.Name})");
        }

        first.Dispose();
    }

    [CudaGpuTheory]
    [InlineData(GpuDataType.Float32, GpuDataType.Float32, false, false)]
    [InlineData(GpuDataType.BFloat16, GpuDataType.Float32, true, false)]
    [InlineData(GpuDataType.BFloat16, GpuDataType.BFloat16, false, true)]
    [InlineData(GpuDataType.Float16, GpuDataType.Float16, true, true)]
    [InlineData(GpuDataType.Float16, GpuDataType.Float32, false, false)]
    public void Matmul_matches_a_float64_reference(GpuDataType input, GpuDataType output, bool transA, bool transB)
    {
        using var gpu = Open();
        RunColumnMajor(gpu, Problem(transA, transB, 72, 40, 56, input, output, batch: 1, alpha: 1.5f, beta: 0f));
    }

    [CudaGpuFact]
    public void Batched_strided_matmul_broadcasts_an_operand_with_stride_zero_and_adds_the_bias_and_the_old_C()
    {
        using var gpu = Open();
        var p = Problem(false, true, 32, 24, 48, GpuDataType.BFloat16, GpuDataType.Float32, batch: 3, alpha: 1f, beta: 1f);
        RunColumnMajor(gpu, p with { StrideB = 0 }, withBias: true);
        RunColumnMajor(gpu, p with { StrideA = 0, Beta = 0f }, withBias: false);
        Assert.Equal(2, gpu.MatmulPlanCount);
        RunColumnMajor(gpu, p with { StrideA = 0, Beta = 0f }, withBias: false);
        Assert.Equal(2, gpu.MatmulPlanCount); // the same problem reuses its plan
    }

    [CudaGpuFact]
    public void RowMajor_computes_the_row_major_product_with_a_per_column_bias()
    {
        int seed = TestSeed.Fresh();
        var random = new Random(seed);
        const int m = 40, n = 24, k = 32;
        // out[m×n] = inp[m×k] · W[n×k]ᵀ + bias[n] (a Linear layer), bf16 operands, fp32 output.
        float[] inp = RandomValues(random, m * k, GpuDataType.BFloat16), w = RandomValues(random, n * k, GpuDataType.BFloat16);
        float[] bias = RandomValues(random, n, GpuDataType.Float32);
        using var gpu = Open();
        ulong dInp = Upload(gpu, inp, GpuDataType.BFloat16), dW = Upload(gpu, w, GpuDataType.BFloat16);
        ulong dBias = Upload(gpu, bias, GpuDataType.Float32), dOut = gpu.Allocate(4L * m * n);
        gpu.Matmul(LtMatmul.RowMajor(false, true, m, n, k, dInp, GpuDataType.BFloat16, dW, GpuDataType.BFloat16, dOut, GpuDataType.Float32, bias: dBias));
        var got = Download<float>(gpu, dOut, m * n);

        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = bias[j], abs = Math.Abs(bias[j]);
                for (int p = 0; p < k; p++)
                {
                    sum += (double)inp[i * k + p] * w[j * k + p];
                    abs += Math.Abs((double)inp[i * k + p] * w[j * k + p]);
                }

                AssertClose(got[i * n + j], sum, abs, k, GpuDataType.Float32, $"out[{i},{j}] (seed {seed})");
            }
        }
    }

    [CudaGpuFact]
    public void A_misaligned_operand_is_refused_before_cuBLASLt_sees_it()
    {
        using var gpu = Open();
        ulong buffer = gpu.Allocate(1 << 16);
        var error = Assert.Throws<ArgumentException>(() => gpu.Matmul(new LtMatmul(false, false, 8, 8, 8,
            buffer + 4, GpuDataType.Float32, 8, 0, buffer + 4096, GpuDataType.Float32, 8, 0, buffer + 8192, GpuDataType.Float32, 8, 0, 1, 1f, 0f)));
        Assert.Contains("Matmul operand A", error.Message, StringComparison.Ordinal);
        gpu.Free(buffer);
    }

    // --- helpers ---------------------------------------------------------------------------------------------

    private CudaGpu Open()
    {
        Assert.True(CudaGpu.TryOpen(0, arch => new KernelLocator(arch, null, _cache), out var gpu, out string reason, out _), reason);
        return gpu;
    }

    private static LtMatmul Problem(bool transA, bool transB, long m, long n, long k, GpuDataType input, GpuDataType output, int batch, float alpha, float beta)
    {
        long rowsA = transA ? k : m, rowsB = transB ? n : k;
        return new LtMatmul(transA, transB, m, n, k,
            0, input, rowsA, m * k, 0, input, rowsB, k * n, 0, output, m, m * n, batch, alpha, beta);
    }

    /// <summary>Runs <paramref name="g"/> (its pointers ignored) on random operands and checks every element of D.</summary>
    private static void RunColumnMajor(CudaGpu gpu, LtMatmul g, bool withBias = false)
    {
        int seed = TestSeed.Fresh();
        var random = new Random(seed);
        long rowsA = g.TransA ? g.K : g.M, colsA = g.TransA ? g.M : g.K;
        long rowsB = g.TransB ? g.N : g.K, colsB = g.TransB ? g.K : g.N;
        int sizeA = (int)((g.BatchCount - 1) * g.StrideA + (colsA - 1) * g.Lda + rowsA);
        int sizeB = (int)((g.BatchCount - 1) * g.StrideB + (colsB - 1) * g.Ldb + rowsB);
        int sizeC = (int)((g.BatchCount - 1) * g.StrideC + (g.N - 1) * g.Ldc + g.M);
        float[] a = RandomValues(random, sizeA, g.TypeA), b = RandomValues(random, sizeB, g.TypeB), c0 = RandomValues(random, sizeC, g.TypeC);
        float[] bias = withBias ? RandomValues(random, (int)g.M, g.TypeC) : [];

        ulong dA = Upload(gpu, a, g.TypeA), dB = Upload(gpu, b, g.TypeB), dC;
        if (g.Beta != 0f)
        {
            dC = Upload(gpu, c0, g.TypeC);
        }
        else
        {
            // With Beta = 0, C is not read (as in cuBLAS): NaNs there must not reach D.
            dC = gpu.Allocate((long)sizeC * GpuDataTypes.SizeOf(g.TypeC));
            gpu.Fill(dC, 0xFF, (long)sizeC * GpuDataTypes.SizeOf(g.TypeC));
        }

        ulong dBias = withBias ? Upload(gpu, bias, g.TypeC) : 0;
        gpu.Matmul(g with { A = dA, B = dB, C = dC, Bias = dBias });
        var got = Decode(Download<byte>(gpu, dC, sizeC * GpuDataTypes.SizeOf(g.TypeC)), g.TypeC);

        for (int batch = 0; batch < g.BatchCount; batch++)
        {
            long offA = batch * g.StrideA, offB = batch * g.StrideB, offC = batch * g.StrideC;
            for (long j = 0; j < g.N; j++)
            {
                for (long i = 0; i < g.M; i++)
                {
                    double sum = 0, abs = 0;
                    for (long p = 0; p < g.K; p++)
                    {
                        double x = a[offA + (g.TransA ? p + i * g.Lda : i + p * g.Lda)];
                        double y = b[offB + (g.TransB ? j + p * g.Ldb : p + j * g.Ldb)];
                        sum += x * y;
                        abs += Math.Abs(x * y);
                    }

                    long at = offC + i + j * g.Ldc;
                    double want = g.Alpha * sum, wantAbs = Math.Abs(g.Alpha) * abs;
                    if (g.Beta != 0f)
                    {
                        want += g.Beta * (double)c0[at];
                        wantAbs += Math.Abs(g.Beta * (double)c0[at]);
                    }

                    if (withBias)
                    {
                        want += bias[i];
                        wantAbs += Math.Abs(bias[i]);
                    }

                    AssertClose(got[at], want, wantAbs, g.K, g.TypeC,
                        $"batch {batch}, D[{i},{j}] ({g.TypeA}→{g.TypeC}, transA={g.TransA}, transB={g.TransB}, seed {seed}, {gpu.Name})");
                }
            }
        }

        gpu.Free(dA);
        gpu.Free(dB);
        gpu.Free(dC);
        if (dBias != 0)
            gpu.Free(dBias);
    }

    /// <summary>
    /// The inputs are exactly representable (rounded to their type first), so the error is fp32 accumulation — at most
    /// about K·2⁻²⁴ of Σ|terms| — plus rounding D to its type (|D|·eps) and, if cuBLASLt splits K and reduces in the
    /// output type, once more eps of Σ|terms|: tol = Σ|terms|·(K·2⁻²³ + eps(C)) + |ref|·eps(C) + 1e-6.
    /// </summary>
    private static void AssertClose(float got, double want, double absSum, long k, GpuDataType type, string where)
    {
        double eps = type switch { GpuDataType.BFloat16 => Math.Pow(2, -8), GpuDataType.Float16 => Math.Pow(2, -11), _ => Math.Pow(2, -23) };
        double tol = absSum * (k * Math.Pow(2, -23) + eps) + Math.Abs(want) * eps + 1e-6;
        if (!(Math.Abs(got - want) <= tol))
            Assert.Fail($"{where}: GPU {got:R}, reference {want:R}, |error| {Math.Abs(got - want):G3} > tolerance {tol:G3}");
    }

    private static float[] RandomValues(Random random, int count, GpuDataType type)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
            values[i] = RoundTo((float)(random.NextDouble() * 2 - 1), type);
        return values;
    }

    private static float RoundTo(float value, GpuDataType type) => type switch
    {
        GpuDataType.BFloat16 => Bf16.ToFloat(Bf16.FromFloat(value)),
        GpuDataType.Float16 => Fp16.ToFloat(Fp16.FromFloat(value)),
        _ => value,
    };

    private static byte[] Encode(float[] values, GpuDataType type)
    {
        int size = GpuDataTypes.SizeOf(type);
        var bytes = new byte[values.Length * size];
        for (int i = 0; i < values.Length; i++)
        {
            switch (type)
            {
                case GpuDataType.BFloat16: BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), Bf16.FromFloat(values[i])); break;
                case GpuDataType.Float16: BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), Fp16.FromFloat(values[i])); break;
                default: BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), values[i]); break;
            }
        }

        return bytes;
    }

    private static float[] Decode(byte[] bytes, GpuDataType type)
    {
        int size = GpuDataTypes.SizeOf(type);
        var values = new float[bytes.Length / size];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = type switch
            {
                GpuDataType.BFloat16 => Bf16.ToFloat(BitConverter.ToUInt16(bytes, i * 2)),
                GpuDataType.Float16 => Fp16.ToFloat(BitConverter.ToUInt16(bytes, i * 2)),
                _ => BitConverter.ToSingle(bytes, i * 4),
            };
        }

        return values;
    }

    private static ulong Upload(CudaGpu gpu, float[] values, GpuDataType type = GpuDataType.Float32)
    {
        byte[] bytes = Encode(values, type);
        ulong pointer = gpu.Allocate(Math.Max(bytes.Length, 16));
        gpu.CopyToDevice(pointer, bytes);
        return pointer;
    }

    private static T[] Download<T>(CudaGpu gpu, ulong pointer, int count)
        where T : unmanaged
    {
        var values = new T[count];
        gpu.CopyToHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()), pointer);
        return values;
    }
}

/// <summary>A theory that needs a <see cref="CudaGpu"/>; skipped like <see cref="CudaGpuFactAttribute"/>.</summary>
public sealed class CudaGpuTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when no CudaGpu can be opened.</summary>
    public CudaGpuTheoryAttribute()
    {
        if (new CudaGpuFactAttribute().Skip is string reason)
            Skip = reason;
    }
}

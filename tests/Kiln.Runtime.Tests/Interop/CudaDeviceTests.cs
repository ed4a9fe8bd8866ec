using System;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Tests.Interop;

/// <summary>The driver binding: a clear refusal without a GPU, real launches compared with the CPU where there is one.</summary>
public sealed class CudaDeviceTests
{
    /// <summary>2^-23, the spacing of float32 values in [1, 2) (not <see cref="float.Epsilon"/>, the smallest subnormal).</summary>
    private const float Float32Epsilon = 1.1920929e-7f;

    [Fact]
    public void TryOpen_never_throws_and_without_a_driver_names_libcuda()
    {
        bool driverPresent = new NativeLibraries().TryLoad(CudaLibrary.Driver, out _, out _);

        bool opened = CudaDevice.TryOpen(0, out var device, out string reason);

        if (!driverPresent)
        {
            Assert.False(opened);
            Assert.Null(device);
            Assert.StartsWith("libcuda.so.1 not found: no NVIDIA driver on this machine", reason.Replace("nvcuda.dll", "libcuda.so.1", StringComparison.Ordinal), StringComparison.Ordinal);
            Assert.Contains("Device = \"cpu\"", reason, StringComparison.Ordinal);
            Assert.Equal(0, CudaDevice.GetDeviceCount());
            return;
        }

        // With a driver, either a device opens or the reason says there is none.
        if (opened)
        {
            using (device)
            {
                Assert.NotNull(device);
                Assert.True(device.Architecture >= 30, device.ToString());
                Assert.True(CudaDevice.GetDeviceCount() >= 1);
            }
        }
        else
        {
            Assert.Contains("no CUDA device", reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TryOpen_rejects_a_negative_ordinal_with_a_reason()
    {
        Assert.False(CudaDevice.TryOpen(-1, out var device, out string reason));
        Assert.Null(device);
        Assert.Contains("-1", reason, StringComparison.Ordinal);
    }

    [GpuFact]
    [Trait("Device", "Gpu")]
    public void Vector_add_on_the_GPU_matches_the_CPU()
    {
        int seed = TestSeed.Fresh();
        var random = new Random(seed);
        const int n = (1 << 20) + 3; // not a multiple of the block size: the bounds check matters
        var a = new float[n];
        var b = new float[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = (float)(random.NextDouble() * 200 - 100);
            b[i] = (float)(random.NextDouble() * 200 - 100);
        }

        using var device = CudaDevice.Open(0);
        using var module = device.LoadModule(CompileFor(device));
        var kernel = module.GetFunction(TestKernels.VectorAdd);
        using var da = device.Allocate<float>(n);
        using var db = device.Allocate<float>(n);
        using var dout = device.Allocate<float>(n);
        using var stream = device.CreateStream();
        using var start = device.CreateEvent();
        using var end = device.CreateEvent();
        da.CopyFrom<float>(a);
        db.CopyFromAsync<float>(b, stream);
        dout.Fill(0xFF); // NaN pattern: an element the kernel skips cannot pass by accident

        start.Record(stream);
        kernel.Launch(Dim3.BlocksFor(n, 256), 256, 0, stream, dout, da, db, n);
        end.Record(stream);
        stream.Synchronize();
        var result = new float[n];
        dout.CopyToAsync<float>(result, stream);
        stream.Synchronize();

        // One IEEE single-precision addition on both sides: bit-identical, tolerance 0.
        for (int i = 0; i < n; i++)
        {
            if (BitConverter.SingleToInt32Bits(result[i]) != BitConverter.SingleToInt32Bits(a[i] + b[i]))
                Assert.Fail($"element {i}: GPU {result[i]} != CPU {a[i] + b[i]} (seed {seed}, {device})");
        }

        Assert.True(CudaEvent.ElapsedMilliseconds(start, end) >= 0);
        var (free, total) = device.GetMemoryInfo();
        Assert.InRange(free, 1, total);
        Assert.Equal(device.TotalMemoryBytes, total);
    }

    [GpuFact]
    [Trait("Device", "Gpu")]
    public void Bf16_round_trip_and_AdamW_on_the_GPU_match_the_CPU()
    {
        int seed = TestSeed.Fresh();
        var random = new Random(seed);
        const int n = 100_003;
        var input = new float[n];
        for (int i = 0; i < n; i++)
        {
            // Mostly ordinary values over many magnitudes, plus the cases rounding gets wrong.
            input[i] = (float)((random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-140, 128)));
        }

        float[] special = [0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.MaxValue, -float.MaxValue,
            float.Epsilon, 1f + 1f / 256, 1f + 3f / 256, BitConverter.UInt32BitsToSingle(0x3F808000), BitConverter.UInt32BitsToSingle(0x3F818000)];
        special.CopyTo(input, 0);

        using var device = CudaDevice.Open(0);
        using var module = device.LoadModule(CompileFor(device));

        // bf16: bit-exact against the CPU rounding (round to nearest even, NaN stays NaN).
        var roundTrip = module.GetFunction(TestKernels.Bf16RoundTrip);
        using var dIn = device.Allocate<float>(n);
        using var dBits = device.Allocate<ushort>(n);
        using var dOut = device.Allocate<float>(n);
        dIn.CopyFrom<float>(input);
        roundTrip.Launch(Dim3.BlocksFor(n, 128), 128, 0, null, dBits, dOut, dIn, n);
        device.Synchronize();
        var bits = new ushort[n];
        var back = new float[n];
        dBits.CopyTo<ushort>(bits);
        dOut.CopyTo<float>(back);
        for (int i = 0; i < n; i++)
        {
            ushort expected = TestKernels.ToBf16Bits(input[i]);
            if (bits[i] != expected || BitConverter.SingleToUInt32Bits(back[i]) != BitConverter.SingleToUInt32Bits(TestKernels.FromBf16Bits(expected)))
                Assert.Fail($"bf16 of {input[i]:R} (0x{BitConverter.SingleToUInt32Bits(input[i]):X8}): GPU 0x{bits[i]:X4}, CPU 0x{expected:X4} (seed {seed})");
        }

        // AdamW: same formula in float; the GPU may contract a*b+c into one FMA (nvcc's default),
        // so allow a few float ulps: tol = 1e-7 + |p|·4·eps(float32).
        var param = new float[n];
        var m = new float[n];
        var v = new float[n];
        var grad = new float[n];
        for (int i = 0; i < n; i++)
        {
            param[i] = (float)(random.NextDouble() * 2 - 1);
            m[i] = (float)(random.NextDouble() * 0.02 - 0.01);
            v[i] = (float)(random.NextDouble() * 1e-4);
            grad[i] = (float)(random.NextDouble() * 0.2 - 0.1);
        }

        const float lr = 3e-4f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weightDecay = 0.1f;
        const int step = 7;
        float bias1 = 1f - MathF.Pow(beta1, step), bias2 = 1f - MathF.Pow(beta2, step);
        var adamw = module.GetFunction(TestKernels.AdamWUpdate);
        using var dp = device.Allocate<float>(n);
        using var dm = device.Allocate<float>(n);
        using var dv = device.Allocate<float>(n);
        using var dg = device.Allocate<float>(n);
        dp.CopyFrom<float>(param);
        dm.CopyFrom<float>(m);
        dv.CopyFrom<float>(v);
        dg.CopyFrom<float>(grad);
        adamw.Launch(Dim3.BlocksFor(n, 256), 256, 0, null, dp, dm, dv, dg, lr, beta1, beta2, eps, weightDecay, bias1, bias2, n);
        device.Synchronize();
        var gpuParam = new float[n];
        dp.CopyTo<float>(gpuParam);
        for (int i = 0; i < n; i++)
        {
            float g = grad[i];
            float mi = beta1 * m[i] + (1f - beta1) * g;
            float vi = beta2 * v[i] + (1f - beta2) * g * g;
            float expected = param[i] - lr * (mi / bias1 / (MathF.Sqrt(vi / bias2) + eps) + weightDecay * param[i]);
            float tolerance = 1e-7f + MathF.Abs(expected) * 4 * Float32Epsilon;
            if (MathF.Abs(gpuParam[i] - expected) > tolerance)
                Assert.Fail($"AdamW element {i}: GPU {gpuParam[i]:R}, CPU {expected:R}, tolerance {tolerance} (seed {seed})");
        }
    }

    [GpuFact]
    [Trait("Device", "Gpu")]
    public void A_missing_kernel_and_a_missing_device_are_reported_clearly()
    {
        using var device = CudaDevice.Open(0);
        using var module = device.LoadModule(CompileFor(device));

        var error = Assert.Throws<KilnCudaException>(() => module.GetFunction("kiln_no_such_kernel"));
        Assert.Equal("cuModuleGetFunction", error.Api);
        Assert.Equal("CUDA_ERROR_NOT_FOUND", error.StatusName);
        Assert.EndsWith("CudaDevice.cs", error.CallerFile, StringComparison.Ordinal);

        int count = CudaDevice.GetDeviceCount();
        Assert.False(CudaDevice.TryOpen(count, out _, out string reason));
        Assert.Contains($"no CUDA device {count}", reason, StringComparison.Ordinal);
    }

    /// <summary>A CUBIN for the device's own architecture when this NVRTC knows it, else PTX for the newest it knows (driver JIT).</summary>
    private static CompileResult CompileFor(CudaDevice device)
    {
        Assert.True(NvrtcCompiler.TryCreate(out var compiler, out string reason), reason);
        int? best = compiler.BestArchitectureFor(device.Architecture);
        Assert.True(best is not null, $"NVRTC {compiler.Version} supports nothing as old as {device}");
        return best == device.Architecture
            ? compiler.Compile(TestKernels.Source, "kiln_test_kernels.cu", cubinArch: device.Architecture)
            : compiler.Compile(TestKernels.Source, "kiln_test_kernels.cu", ptxArch: best);
    }
}

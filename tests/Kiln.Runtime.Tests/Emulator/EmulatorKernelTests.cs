using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using Kiln.Cuda.Emulator;
using Kiln.Runtime.Cuda;
using Xunit.Abstractions;

namespace Kiln.Runtime.Tests.Emulator;

/// <summary>
/// Hand-written kernels run on the emulator against host references written from CUDA's documented semantics.
/// Inputs are small integers (or integer-valued floats), so every sum is exact and results compare for equality.
/// </summary>
public sealed class EmulatorKernelTests(ITestOutputHelper output)
{
    internal const string Source = """
        // Emulator test kernels: one module, compiled once.
        #define FULL 0xffffffffu

        extern "C" __global__ void saxpy(float* __restrict__ out, const float* __restrict__ x, const float* __restrict__ y, float a, long long n)
        {
            for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x)
                out[i] = a * x[i] + y[i];
        }

        // One sum per block: a shared-memory tree down to 32 values, then one warp with __shfl_down_sync.
        extern "C" __global__ void block_sum(float* __restrict__ partial, const float* __restrict__ in, long long n)
        {
            __shared__ float s[1024];
            float acc = 0.0f;
            for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x)
                acc += in[i];
            s[threadIdx.x] = acc;
            __syncthreads();
            for (unsigned int o = blockDim.x / 2; o >= 32; o >>= 1)
            {
                if (threadIdx.x < o) s[threadIdx.x] += s[threadIdx.x + o];
                __syncthreads();
            }
            if (threadIdx.x < 32)
            {
                float v = s[threadIdx.x];
                for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(FULL, v, o);
                if (threadIdx.x == 0) partial[blockIdx.x] = v;
            }
        }

        // One warp per row: every lane ends with the sum via __shfl_xor_sync; lane 0 also via __shfl_down_sync.
        extern "C" __global__ void warp_row_sums(float* __restrict__ xorSums, float* __restrict__ downSums, const float* __restrict__ in, long long rows, long long cols)
        {
            long long warps = ((long long)blockDim.x * gridDim.x) / 32;
            unsigned int lane = threadIdx.x % 32;
            for (long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32; row < rows; row += warps)
            {
                float v = 0.0f;
                for (long long j = lane; j < cols; j += 32) v += in[row * cols + j];
                float x = v, d = v;
                for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(FULL, x, o);
                for (int o = 16; o > 0; o >>= 1) d += __shfl_down_sync(FULL, d, o);
                xorSums[row * 32 + lane] = x;
                if (lane == 0) downSums[row] = d;
            }
        }

        // What each lane receives from every warp exchange, for thread value v = 10·t + 1.
        extern "C" __global__ void warp_exchange(long long* __restrict__ out, int xorMask, unsigned int delta, int srcLane)
        {
            unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
            int v = (int)t * 10 + 1;
            long long* o = out + t * 8;
            o[0] = __shfl_xor_sync(FULL, v, xorMask);
            o[1] = __shfl_down_sync(FULL, (unsigned int)v, delta);
            o[2] = __shfl_up_sync(FULL, v, delta);
            o[3] = (long long)__shfl_sync(FULL, (float)v, srcLane);
            o[4] = __shfl_xor_sync(FULL, v, xorMask, 8);
            o[5] = __ballot_sync(FULL, (t / 3) % 2 == 0);
            o[6] = __shfl_down_sync(FULL, (long long)v * 1000000007LL, delta);
            __syncwarp();
            o[7] = __any_sync(FULL, t % 64 == 5) + 2 * __all_sync(FULL, v > 0);
        }

        // Atomics: a histogram, a float total, a maximum and a ticket per thread (the old value of a counter).
        extern "C" __global__ void atomics(int* __restrict__ counts, float* __restrict__ total, int* __restrict__ maxKey, int* __restrict__ counter, int* __restrict__ tickets, const int* __restrict__ keys, int n, int buckets)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n) return;
            atomicAdd(&counts[keys[i] % buckets], 1);
            atomicAdd(total, 0.5f);
            atomicMax(maxKey, keys[i]);
            tickets[i] = atomicAdd(counter, 1);
        }

        // Every block reverses its segment through dynamic shared memory (blockDim.x floats).
        extern "C" __global__ void reverse_segments(float* __restrict__ out, const float* __restrict__ in, int n)
        {
            KILN_DYNAMIC_SHARED(float, tile);
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            tile[threadIdx.x] = i < n ? in[i] : -1.0f;
            __syncthreads();
            if (i < n) out[i] = tile[blockDim.x - 1 - threadIdx.x];
        }

        // A __shared__ counter: every thread of a block adds one, so each block reports its size.
        extern "C" __global__ void shared_counter(int* __restrict__ out)
        {
            __shared__ int count;
            if (threadIdx.x == 0) count = 0;
            __syncthreads();
            atomicAdd(&count, 1);
            __syncthreads();
            if (threadIdx.x == 0) out[blockIdx.x] = count;
        }

        extern "C" __global__ void echo_arguments(long long* __restrict__ out, float f, long long ll, int i, unsigned int u, unsigned long long ull, double d, const unsigned char* __restrict__ bytes)
        {
            if (blockIdx.x != 0 || threadIdx.x != 0) return;
            out[0] = __float_as_int(f);
            out[1] = ll;
            out[2] = i;
            out[3] = u;
            out[4] = (long long)ull;
            out[5] = __double_as_longlong(d);
            out[6] = bytes[0] + 256 * bytes[3];
        }

        extern "C" __global__ void tiny(int* __restrict__ out) { if (threadIdx.x == 0) out[blockIdx.x] += 1; }
        """;

    internal static GpuKernelSource Module(params string[] defines) => new("EmulatorTestKernels.cu", Source, defines);

    private static float[] SmallIntegers(int n, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)random.Next(-8, 9)).ToArray();
    }

    [EmulatorFact]
    public void Grid_stride_elementwise_kernel_matches_the_host()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        const int n = 1000;
        float[] x = Enumerable.Range(0, n).Select(i => i * 0.25f - 7f).ToArray(), y = Enumerable.Range(0, n).Select(i => 3f - i * 0.125f).ToArray();
        ulong dx = gpu.Upload(x), dy = gpu.Upload(y), dout = gpu.Zeros<float>(n);
        // 3 blocks × 64 threads = 192 threads for 1000 elements: every thread strides several times.
        module.GetKernel("saxpy").Launch(3, 64, 0, dout, dx, dy, 1.5f, (long)n);
        float[] result = gpu.Download<float>(dout, n);
        for (int i = 0; i < n; i++) Assert.Equal(1.5f * x[i] + y[i], result[i]); // same fp32 operations, no FMA contraction
    }

    [EmulatorTheory]
    [InlineData(7, 256, 100_000)]
    [InlineData(1, 32, 1_000)]
    [InlineData(5, 1024, 3_000)]
    [InlineData(300, 128, 20_000)]
    public void Block_reduction_with_shared_memory_and_barriers_sums_each_blocks_elements(int blocks, int threads, int n)
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        float[] values = SmallIntegers(n, seed: n);
        ulong din = gpu.Upload(values), dpartial = gpu.Zeros<float>(blocks);
        module.GetKernel("block_sum").Launch((uint)blocks, (uint)threads, 0, dpartial, din, (long)n);
        float[] partial = gpu.Download<float>(dpartial, blocks);
        for (int b = 0; b < blocks; b++)
        {
            double expected = 0;
            for (long i = (long)b * threads; i < n; i += (long)blocks * threads)
                for (long t = i; t < Math.Min(i + threads, n); t++) expected += values[t];
            Assert.True(expected == partial[b], $"block {b}: expected {expected}, got {partial[b]}");
        }
    }

    [EmulatorFact]
    public void Warp_reductions_with_xor_and_down_shuffles_give_the_row_sums()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        const int rows = 37, cols = 75;
        float[] values = SmallIntegers(rows * cols, seed: 3);
        ulong din = gpu.Upload(values), dxor = gpu.Zeros<float>(rows * 32), ddown = gpu.Zeros<float>(rows);
        // 2 blocks × 96 threads = 6 warps for 37 rows: warps loop over rows.
        module.GetKernel("warp_row_sums").Launch(2, 96, 0, dxor, ddown, din, (long)rows, (long)cols);
        float[] xor = gpu.Download<float>(dxor, rows * 32), down = gpu.Download<float>(ddown, rows);
        for (int r = 0; r < rows; r++)
        {
            float expected = 0;
            for (int j = 0; j < cols; j++) expected += values[r * cols + j];
            Assert.Equal(expected, down[r]);
            for (int lane = 0; lane < 32; lane++) Assert.True(expected == xor[r * 32 + lane], $"row {r} lane {lane}: {xor[r * 32 + lane]} instead of {expected}");
        }
    }

    [EmulatorTheory]
    [InlineData(1, 1u, 0)]
    [InlineData(5, 3u, 7)]
    [InlineData(16, 16u, 31)]
    [InlineData(31, 0u, 33)]   // srcLane 33 wraps to lane 1
    [InlineData(12, 40u, -1)]  // delta past the warp: every lane keeps its own value; srcLane -1 is lane 31
    public void Warp_shuffles_and_votes_follow_CUDA_lane_rules(int xorMask, uint delta, int srcLane)
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        const int blocks = 2, threads = 64, total = blocks * threads;
        ulong dout = gpu.Zeros<long>(total * 8);
        module.GetKernel("warp_exchange").Launch(blocks, threads, 0, dout, xorMask, delta, srcLane);
        long[] got = gpu.Download<long>(dout, total * 8);
        static long V(long t) => t * 10 + 1;
        for (int t = 0; t < total; t++)
        {
            int lane = t % 32, warpBase = t - lane;
            long Lane(int l) => V(warpBase + l);
            int xorSource = lane ^ xorMask;
            int xor8Source = (lane ^ xorMask) / 8 == lane / 8 ? lane ^ xorMask : lane;
            long downSource = lane + delta < 32 ? lane + delta : lane;
            long upSource = lane - (long)delta >= 0 ? lane - delta : lane;
            uint ballot = 0;
            for (int l = 0; l < 32; l++) if ((warpBase + l) / 3 % 2 == 0) ballot |= 1u << l;
            bool any = Enumerable.Range(warpBase, 32).Any(u => u % 64 == 5);
            long[] expected =
            [
                Lane(xorSource), Lane((int)downSource), Lane((int)upSource), Lane(srcLane & 31), Lane(xor8Source),
                (long)ballot, Lane((int)downSource) * 1000000007L, (any ? 1 : 0) + 2,
            ];
            for (int k = 0; k < 8; k++)
                Assert.True(expected[k] == got[t * 8 + k], $"thread {t}, exchange {k}: expected {expected[k]}, got {got[t * 8 + k]}");
        }
    }

    [EmulatorFact]
    public void Atomics_accumulate_every_update_and_return_the_old_value()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        const int n = 5000, buckets = 7;
        int[] keys = Enumerable.Range(0, n).Select(i => (i * 7919) % 1013).ToArray();
        ulong dcounts = gpu.Zeros<int>(buckets), dtotal = gpu.Zeros<float>(1), dmax = gpu.Upload(new[] { int.MinValue }),
            dcounter = gpu.Zeros<int>(1), dtickets = gpu.Zeros<int>(n), dkeys = gpu.Upload(keys);
        module.GetKernel("atomics").Launch((n + 255) / 256, 256, 0, dcounts, dtotal, dmax, dcounter, dtickets, dkeys, n, buckets);
        int[] counts = gpu.Download<int>(dcounts, buckets);
        for (int b = 0; b < buckets; b++) Assert.Equal(keys.Count(k => k % buckets == b), counts[b]);
        Assert.Equal(n * 0.5f, gpu.Download<float>(dtotal, 1)[0]);
        Assert.Equal(keys.Max(), gpu.Download<int>(dmax, 1)[0]);
        Assert.Equal(n, gpu.Download<int>(dcounter, 1)[0]);
        // Each thread got a distinct old value: the tickets are a permutation of 0..n-1.
        Assert.Equal(Enumerable.Range(0, n), gpu.Download<int>(dtickets, n).Order());
    }

    [EmulatorFact]
    public void Dynamic_shared_memory_holds_one_tile_per_block()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        const int n = 1000, threads = 128;
        float[] values = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        ulong din = gpu.Upload(values), dout = gpu.Zeros<float>(n);
        module.GetKernel("reverse_segments").Launch((n + threads - 1) / threads, threads, threads * sizeof(float), dout, din, n);
        float[] result = gpu.Download<float>(dout, n);
        for (int i = 0; i < n; i++)
        {
            int b = i / threads, source = b * threads + (threads - 1 - i % threads);
            Assert.Equal(source < n ? values[source] : -1f, result[i]);
        }
    }

    [EmulatorFact]
    public void Repeated_launches_of_several_kernels_and_modules_reuse_state_correctly()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        using var again = gpu.LoadModule(Module()); // the same source: the same built module
        var counter = module.GetKernel("shared_counter");
        var sum = again.GetKernel("block_sum");
        var tiny = module.GetKernel("tiny");
        ulong dcounts = gpu.Zeros<int>(64), dtiny = gpu.Zeros<int>(4);
        float[] values = SmallIntegers(4096, seed: 11);
        ulong din = gpu.Upload(values), dpartial = gpu.Zeros<float>(8);
        foreach (int threads in new[] { 32, 1024, 96, 256, 1 })
        {
            counter.Launch(64, (uint)threads, 0, dcounts);
            Assert.All(gpu.Download<int>(dcounts, 64), c => Assert.Equal(threads, c));
            sum.Launch(8, 512, 0, dpartial, din, (long)values.Length);
            Assert.Equal(values.Sum(), gpu.Download<float>(dpartial, 8).Sum());
            tiny.Launch(4, 32, 0, dtiny);
        }
        Assert.All(gpu.Download<int>(dtiny, 4), c => Assert.Equal(5, c));
    }

    [EmulatorFact]
    public void Arguments_of_every_C_type_arrive_with_their_values()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        ulong dout = gpu.Zeros<long>(7), dbytes = gpu.Upload(new byte[] { 9, 0, 0, 200 });
        const long ll = -(1L << 40) - 7;
        const ulong ull = 0xfedcba9876543210UL;
        module.GetKernel("echo_arguments").Launch(2, 32, 0, dout, -1.5f, ll, -123456, 0xfffffff0u, ull, Math.PI, dbytes);
        long[] got = gpu.Download<long>(dout, 7);
        Assert.Equal(BitConverter.SingleToInt32Bits(-1.5f), got[0]);
        Assert.Equal(ll, got[1]);
        Assert.Equal(-123456, got[2]);
        Assert.Equal(0xfffffff0L, got[3]);
        Assert.Equal(unchecked((long)ull), got[4]);
        Assert.Equal(BitConverter.DoubleToInt64Bits(Math.PI), got[5]);
        Assert.Equal(9 + 256 * 200, got[6]);
    }

    [EmulatorFact]
    public void The_ucontext_fallback_runs_barriers_and_shuffles_too()
    {
        // -DKILN_EMU_UCONTEXT selects the portable fiber switch used off x86-64.
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module("-DKILN_EMU_UCONTEXT"));
        float[] values = SmallIntegers(10_000, seed: 5);
        ulong din = gpu.Upload(values), dpartial = gpu.Zeros<float>(4);
        module.GetKernel("block_sum").Launch(4, 256, 0, dpartial, din, (long)values.Length);
        Assert.Equal(values.Sum(), gpu.Download<float>(dpartial, 4).Sum());
    }

    [EmulatorFact]
    public void Costs_of_launches_and_of_a_hundred_thousand_threads_with_barriers_are_reported()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module());
        var tiny = module.GetKernel("tiny");
        ulong dtiny = gpu.Zeros<int>(1);
        tiny.Launch(1, 32, 0, dtiny);
        var clock = Stopwatch.StartNew();
        const int launches = 2000;
        for (int i = 0; i < launches; i++) tiny.Launch(1, 32, 0, dtiny);
        double perLaunchUs = clock.Elapsed.TotalMicroseconds / launches;
        Assert.Equal(launches + 1, gpu.Download<int>(dtiny, 1)[0]);

        const int blocks = 391, threads = 256, n = blocks * threads; // 100 096 threads, 4 barriers and 5 shuffles each
        float[] values = SmallIntegers(n, seed: 1);
        ulong din = gpu.Upload(values), dpartial = gpu.Zeros<float>(blocks);
        var sum = module.GetKernel("block_sum");
        sum.Launch(blocks, threads, 0, dpartial, din, (long)n);
        clock.Restart();
        sum.Launch(blocks, threads, 0, dpartial, din, (long)n);
        double bigMs = clock.Elapsed.TotalMilliseconds;
        Assert.Equal(values.Sum(), gpu.Download<float>(dpartial, blocks).Sum());
        output.WriteLine($"launch of 1×32 threads: {perLaunchUs:F1} µs; {n} threads with barriers and shuffles: {bigMs:F1} ms");
        // Generous bound (about 100× the measured cost): catches a pathological scheduler, not noise.
        Assert.True(bigMs < 2000, $"{n} threads with barriers took {bigMs:F0} ms");
    }
}

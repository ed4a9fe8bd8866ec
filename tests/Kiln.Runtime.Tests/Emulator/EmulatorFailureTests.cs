using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using Kiln.Cuda.Emulator;
using Kiln.Runtime.Cuda;

namespace Kiln.Runtime.Tests.Emulator;

/// <summary>Kernel bugs that hang or are undefined on a GPU, and host mistakes, fail with a message that says what and where.</summary>
public sealed class EmulatorFailureTests
{
    private const string Source = """
        // Kernels with the synchronisation bugs the emulator must report instead of hanging.
        extern "C" __global__ void early_exit_before_barrier(float* __restrict__ out, int n)
        {
            if (threadIdx.x >= n) return;
            __syncthreads();
            out[threadIdx.x] = 1.0f;
        }

        extern "C" __global__ void half_warp_shuffle(float* __restrict__ out)
        {
            float v = (float)threadIdx.x;
            if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
            out[threadIdx.x] = v;
        }

        extern "C" __global__ void barrier_against_shuffle(float* __restrict__ out)
        {
            float v = (float)threadIdx.x;
            if (threadIdx.x % 32 < 16) __syncthreads();
            else v = __shfl_xor_sync(0xffffffffu, v, 1);
            out[threadIdx.x] = v;
        }

        extern "C" __global__ void traps(int* __restrict__ out)
        {
            if (blockIdx.x == 2 && threadIdx.x == 7) __trap();
            out[0] = 1;
        }

        extern "C" __global__ void fine(int* __restrict__ out, int value) { out[blockIdx.x * blockDim.x + threadIdx.x] = value; }
        """;

    private static GpuKernelSource Module => new("EmulatorFailureKernels.cu", Source, []);

    // A hang would be the bug under test: fail after a minute instead of blocking the test run.
    private static T WithinAMinute<T>(Func<T> action)
    {
        var task = Task.Run(action);
        Assert.True(task.Wait(TimeSpan.FromMinutes(1)), "The launch did not return within a minute (the emulator hung).");
        return task.Result;
    }

    [EmulatorFact]
    public void A_thread_that_returns_before_syncthreads_fails_the_launch_with_the_threads_named()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module);
        ulong dout = gpu.Zeros<float>(64);
        var e = WithinAMinute(() => Assert.Throws<EmulatorLaunchException>(() => module.GetKernel("early_exit_before_barrier").Launch(2, 64, 0, dout, 16)));
        Assert.Equal("early_exit_before_barrier", e.KernelName);
        Assert.Contains("kernel early_exit_before_barrier, block (0, 0, 0)", e.Message);
        Assert.Contains("threads 0-15 wait at __syncthreads()", e.Message);
        Assert.Contains("threads 16-63 have exited", e.Message);

        // The module is usable after a failed launch.
        ulong dfine = gpu.Zeros<int>(128);
        module.GetKernel("fine").Launch(2, 64, 0, dfine, 42);
        Assert.All(gpu.Download<int>(dfine, 128), v => Assert.Equal(42, v));
        // And the same kernel launched correctly (every thread reaches the barrier) completes.
        module.GetKernel("early_exit_before_barrier").Launch(2, 64, 0, dout, 64);
        Assert.All(gpu.Download<float>(dout, 64), v => Assert.Equal(1f, v));
    }

    [EmulatorFact]
    public void A_shuffle_that_half_the_warp_skips_fails_the_launch()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module);
        ulong dout = gpu.Zeros<float>(64);
        var e = WithinAMinute(() => Assert.Throws<EmulatorLaunchException>(() => module.GetKernel("half_warp_shuffle").Launch(1, 64, 0, dout)));
        Assert.Contains("warp 0 (threads 0-31): lanes 0-15 wait at __shfl_xor_sync(mask 0xffffffff) but lanes 16-31 named in the mask have exited", e.Message);
    }

    [EmulatorFact]
    public void Lanes_split_between_a_barrier_and_a_shuffle_are_reported_as_stuck()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module);
        ulong dout = gpu.Zeros<float>(32);
        var e = WithinAMinute(() => Assert.Throws<EmulatorLaunchException>(() => module.GetKernel("barrier_against_shuffle").Launch(1, 32, 0, dout)));
        Assert.Contains("no thread can proceed: threads 0-15 wait at __syncthreads(); threads 16-31 wait at a warp operation", e.Message);
    }

    [EmulatorFact]
    public void Trap_fails_the_launch_naming_block_and_thread()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module);
        ulong dout = gpu.Zeros<int>(1);
        var e = Assert.Throws<EmulatorLaunchException>(() => module.GetKernel("traps").Launch(4, 32, 0, dout));
        Assert.Contains("block (2, 0, 0): thread 7 executed __trap()", e.Message);
    }

    [EmulatorFact]
    public void A_wrong_argument_count_names_the_kernel_and_both_counts()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module);
        ulong dout = gpu.Zeros<int>(32);
        var e = Assert.Throws<ArgumentException>(() => module.GetKernel("fine").Launch(1, 32, 0, dout));
        Assert.Contains("Kernel fine takes 2 arguments but 1 was given; its signature is fine(int* out, int value)", e.Message);
    }

    [EmulatorFact]
    public void A_pointer_argument_outside_every_allocation_is_rejected()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module);
        ulong dout = gpu.Zeros<int>(32);
        var e = Assert.Throws<ArgumentException>(() => module.GetKernel("fine").Launch(1, 32, 0, dout + 4096, 1));
        Assert.Contains("Argument 0 (int* out) of kernel fine", e.Message);
    }

    [EmulatorFact]
    public void Invalid_launch_configurations_are_rejected()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module);
        ulong dout = gpu.Zeros<int>(32);
        var e = Assert.Throws<EmulatorLaunchException>(() => module.GetKernel("fine").Launch(1, 2048, 0, dout, 1));
        Assert.Contains("invalid launch configuration", e.Message);
        e = Assert.Throws<EmulatorLaunchException>(() => module.GetKernel("fine").Launch(0, 32, 0, dout, 1));
        Assert.Contains("invalid launch configuration", e.Message);
        e = Assert.Throws<EmulatorLaunchException>(() => module.GetKernel("fine").Launch(1, 32, 1 << 20, dout, 1));
        Assert.Contains("bytes of dynamic shared memory requested", e.Message);
    }

    [EmulatorFact]
    public void An_unknown_kernel_name_lists_the_kernels_of_the_module()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module);
        var e = Assert.Throws<KeyNotFoundException>(() => module.GetKernel("missing"));
        Assert.Contains("It declares: early_exit_before_barrier, half_warp_shuffle, barrier_against_shuffle, traps, fine", e.Message);
    }

    [EmulatorFact]
    public void A_compile_error_carries_gpp_output()
    {
        using var gpu = new EmulatedGpu();
        const string broken = """
            extern "C" __global__ void broken(float* out)
            {
                out[threadIdx.x] = kiln_no_such_function(1.0f);
            }
            """;
        var e = Assert.Throws<EmulatorCompileException>(() => gpu.LoadModule(new GpuKernelSource("Broken.cu", broken, [])));
        Assert.Contains("g++ could not compile Broken.cu", e.Message);
        Assert.Contains("Broken.cu:3", e.Message);            // g++ points at the line of the CUDA source
        Assert.Contains("kiln_no_such_function", e.Message);
        Assert.True(System.IO.File.Exists(e.SourcePath), $"the failed translation unit is kept: {e.SourcePath}");
    }

    [Fact] // memory needs no compiler
    public void Copies_outside_an_allocation_are_rejected()
    {
        using var gpu = new EmulatedGpu();
        ulong p = gpu.Allocate(64);
        var e = Assert.Throws<ArgumentException>(() => gpu.CopyToDevice(p + 32, new byte[64]));
        Assert.Contains("CopyToDevice (destination): 64 bytes at", e.Message);
        Assert.Throws<ArgumentException>(() => gpu.Fill(p, 0, 65));
        Assert.Throws<ArgumentException>(() => gpu.CopyToHost(new byte[1], p - 1));
        gpu.Free(p);
        Assert.Throws<ArgumentException>(() => gpu.Free(p));
    }
}

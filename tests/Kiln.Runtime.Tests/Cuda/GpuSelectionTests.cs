using System;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Tests.Cuda;

/// <summary>Device strings: the CPU, automatic choice, and clear errors when a named GPU is missing.</summary>
public sealed class GpuSelectionTests
{
    private static readonly bool DriverPresent = new NativeLibraries().TryLoad(CudaLibrary.Driver, out _, out _);

    [Theory]
    [InlineData("cpu")]
    [InlineData(" CPU ")]
    public void Cpu_means_no_GPU(string device) => Assert.Null(GpuSelection.Open(device));

    [Fact]
    public void Auto_without_a_driver_or_device_falls_back_to_the_CPU_without_throwing()
    {
        using var gpu = GpuSelection.Open("auto");

        if (!DriverPresent || CudaDevice.GetDeviceCount() == 0)
            Assert.Null(gpu);
        else
            Assert.StartsWith("cuda:0 ", Assert.IsType<CudaGpu>(gpu).Name, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("cuda")]
    [InlineData("cuda:1")]
    public void Cuda_without_a_driver_names_libcuda_the_search_and_KILN_CUDA_PATH(string device)
    {
        if (DriverPresent)
        {
            // With a driver the failure (if any) is about devices; the ordinal test covers that.
            return;
        }

        var error = Assert.Throws<GpuUnavailableException>(() => GpuSelection.Open(device));

        Assert.Contains("libcuda.so.1", error.Message.Replace("nvcuda.dll", "libcuda.so.1", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains(NativeLibraries.CudaPathVariable, error.Message, StringComparison.Ordinal);
        Assert.Contains("Tried, in order:", error.Message, StringComparison.Ordinal);
        Assert.Contains("--device=cpu", error.Message, StringComparison.Ordinal);
        Assert.Equal(device, error.Device);
    }

    [Fact]
    public void An_ordinal_past_the_last_GPU_is_refused_with_the_count()
    {
        int count = CudaDevice.GetDeviceCount();
        var error = Assert.Throws<GpuUnavailableException>(() => GpuSelection.Open("cuda:" + (count + 3)));

        if (count > 0)
            Assert.Contains($"this machine has {count}", error.Message, StringComparison.Ordinal);
        else
            Assert.Contains(DriverPresent ? "no CUDA device" : "libcuda.so.1", error.Message.Replace("nvcuda.dll", "libcuda.so.1", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_device_string_lists_the_accepted_forms()
        => Assert.Contains("cuda:N", Assert.Throws<ArgumentException>(() => GpuSelection.Open("tpu")).Message, StringComparison.Ordinal);

    [Fact]
    public void CudaGpu_TryOpen_never_throws_and_says_why()
    {
        bool opened = CudaGpu.TryOpen(0, out var gpu, out string reason);
        using (gpu)
        {
            if (opened)
                Assert.NotNull(gpu);
            else
                Assert.False(string.IsNullOrWhiteSpace(reason));
            if (!DriverPresent)
                Assert.Contains("libcuda.so.1", reason.Replace("nvcuda.dll", "libcuda.so.1", StringComparison.Ordinal), StringComparison.Ordinal);
        }
    }
}

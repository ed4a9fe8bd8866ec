using System;

namespace Kiln.Runtime.Cuda;

/// <summary>Turns a device string into the GPU a generated program runs on (null for the CPU).</summary>
public static class GpuSelection
{
    /// <summary>
    /// The GPU <paramref name="device"/> names, or null when it names the CPU. <c>auto</c> opens GPU 0 when the CUDA
    /// driver loads and lists a device, and otherwise returns null (it never throws for a missing driver or GPU).
    /// <c>cuda</c>/<c>cuda:N</c> open that GPU or throw.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="device"/> is not <c>cpu</c>, <c>auto</c>, <c>cuda</c> or <c>cuda:N</c>.</exception>
    /// <exception cref="GpuUnavailableException">
    /// The named GPU cannot be used: no driver (the message names libcuda.so.1, the places searched and
    /// <c>KILN_CUDA_PATH</c>), no device, an ordinal out of range (with the count), or a GPU without cuBLASLt
    /// (also for <c>auto</c>: a GPU that is present but unusable is reported, not skipped).
    /// </exception>
    public static IGpu? Open(string device)
    {
        var name = DeviceName.Parse(device);
        switch (name.Kind)
        {
            case DeviceKind.Cpu:
                return null;
            case DeviceKind.Auto:
                if (CudaGpu.TryOpen(0, null, out var any, out string why, out bool noDevice))
                    return any;
                if (noDevice)
                    return null;
                throw new GpuUnavailableException(device, why);
            default:
                if (CudaGpu.TryOpen(name.Ordinal, null, out var gpu, out string reason, out _))
                    return gpu;
                throw new GpuUnavailableException(device, reason);
        }
    }
}

/// <summary>A device string named a GPU that cannot be used; the message says why and how to fix it.</summary>
public sealed class GpuUnavailableException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="device">The device string as given.</param>
    /// <param name="reason">Why the GPU cannot be used.</param>
    public GpuUnavailableException(string device, string reason)
        : base($"Device \"{device}\" cannot be used: {reason}\nTo train on the CPU instead, use --device=cpu (or \"auto\" to use a GPU only when one is available).")
    {
        Device = device;
        Reason = reason;
    }

    /// <summary>The device string as given.</summary>
    public string Device { get; }

    /// <summary>Why the GPU cannot be used (the library search list and fix, the device count, …).</summary>
    public string Reason { get; }
}

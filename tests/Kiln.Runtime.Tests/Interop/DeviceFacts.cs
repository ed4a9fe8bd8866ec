using System;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Tests.Interop;

/// <summary>Why NVRTC or a GPU is unavailable, worked out once per test run.</summary>
internal static class DeviceAvailability
{
    private static readonly Lazy<string?> NvrtcMissing = new(() =>
        NvrtcCompiler.TryCreate(out _, out string reason) ? null : reason);

    private static readonly Lazy<string?> GpuMissing = new(() =>
    {
        if (!CudaDevice.TryOpen(0, out var device, out string reason))
            return reason;
        device.Dispose();
        return null;
    });

    /// <summary>Null when NVRTC loads, otherwise why not (the paths tried and the fix).</summary>
    public static string? WhyNoNvrtc => NvrtcMissing.Value;

    /// <summary>Null when CUDA device 0 opens, otherwise why not.</summary>
    public static string? WhyNoGpu => GpuMissing.Value;

    /// <summary>The first line (what is missing) and the last (the fix) of a multi-line reason; the paths tried are in the full message.</summary>
    public static string Summarize(string reason)
    {
        string[] lines = reason.Split('\n');
        return lines.Length <= 2 ? reason : lines[0] + " " + lines[^1].Trim();
    }
}

/// <summary>A fact that needs NVRTC (but no GPU); skipped, with the loader's explanation, where NVRTC is absent.</summary>
public sealed class NvrtcFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when NVRTC cannot be loaded.</summary>
    public NvrtcFactAttribute()
    {
        if (DeviceAvailability.WhyNoNvrtc is string reason)
            Skip = "NVRTC unavailable (CI installs libnvrtc11.2 from Debian non-free): " + DeviceAvailability.Summarize(reason);
    }
}

/// <summary>A theory that needs NVRTC (but no GPU); skipped, with the loader's explanation, where NVRTC is absent.</summary>
public sealed class NvrtcTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when NVRTC cannot be loaded.</summary>
    public NvrtcTheoryAttribute()
    {
        if (DeviceAvailability.WhyNoNvrtc is string reason)
            Skip = "NVRTC unavailable (CI installs libnvrtc11.2 from Debian non-free): " + DeviceAvailability.Summarize(reason);
    }
}

/// <summary>
/// A fact that needs a CUDA GPU and NVRTC; skipped visibly where either is missing. Pair it with
/// <c>[Trait("Device", "Gpu")]</c> so that GPU tests can be selected or excluded by filter.
/// </summary>
public sealed class GpuFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when there is no GPU or no NVRTC.</summary>
    public GpuFactAttribute()
    {
        if (DeviceAvailability.WhyNoGpu is string noGpu)
            Skip = "No CUDA device: " + DeviceAvailability.Summarize(noGpu);
        else if (DeviceAvailability.WhyNoNvrtc is string noNvrtc)
            Skip = "A CUDA device is present but NVRTC, needed to compile the test kernels, is not: " + DeviceAvailability.Summarize(noNvrtc);
    }
}

using System;
using Kiln.Runtime.Interop;

namespace Kiln.Generators.Tests;

/// <summary>Why NVRTC is unavailable (null when it loads), worked out once per test run.</summary>
internal static class NvrtcAvailability
{
    private static readonly Lazy<string?> Missing = new(() => NvrtcCompiler.TryCreate(out _, out string reason) ? null : reason);

    public static string? SkipReason => Missing.Value is string reason
        ? "NVRTC unavailable, so the emitted CUDA is not compiled here: " + reason.Split('\n')[0]
        : null;
}

/// <summary>A fact that needs NVRTC (but no GPU); skipped, with the loader's explanation, where NVRTC is absent.</summary>
public sealed class NvrtcFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when NVRTC cannot be loaded.</summary>
    public NvrtcFactAttribute() => Skip = NvrtcAvailability.SkipReason;
}

/// <summary>A theory that needs NVRTC (but no GPU); skipped, with the loader's explanation, where NVRTC is absent.</summary>
public sealed class NvrtcTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when NVRTC cannot be loaded.</summary>
    public NvrtcTheoryAttribute() => Skip = NvrtcAvailability.SkipReason;
}

/// <summary>Why CUDA device 0 cannot run the generated programs here (null when it can), worked out once per test run.</summary>
internal static class GpuAvailability
{
    private static readonly Lazy<string?> Missing = new(() =>
    {
        if (!CudaDevice.TryOpen(0, out var device, out string reason))
            return "no CUDA GPU here, so the generated programs are checked on the emulator only: " + reason.Split('\n')[0];
        device.Dispose();
        return NvrtcAvailability.SkipReason;
    });

    public static string? SkipReason => Missing.Value;
}

/// <summary>A fact that needs CUDA device 0 (and NVRTC); skipped, with the reason, elsewhere.</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when no GPU can be opened.</summary>
    public GpuFactAttribute() => Skip = GpuAvailability.SkipReason;
}

/// <summary>A theory that needs CUDA device 0 (and NVRTC); skipped, with the reason, elsewhere.</summary>
public sealed class GpuTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when no GPU can be opened.</summary>
    public GpuTheoryAttribute() => Skip = GpuAvailability.SkipReason;
}

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

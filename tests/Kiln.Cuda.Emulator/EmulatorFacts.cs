using System;
using Xunit;

namespace Kiln.Cuda.Emulator;

/// <summary>Whether the CUDA emulator can run here: it needs Linux and a working g++ (<c>KILN_EMU_CXX</c> overrides the name).</summary>
public static class EmulatorAvailability
{
    private static readonly Lazy<string?> Missing = new(Probe);

    /// <summary>Null when the emulator can compile and run kernels here, otherwise why not and the fix.</summary>
    public static string? SkipReason => Missing.Value;

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux())
            return "The CUDA emulator runs on Linux only (it builds kernels into shared objects with g++ and runs CUDA threads as fibers).";
        try
        {
            EmulatorBuild.CompilerVersion();
            return null;
        }
        catch (EmulatorException e)
        {
            return e.Message;
        }
    }
}

/// <summary>A fact that runs CUDA kernels on the host emulator; skipped, with the reason, where g++ is missing.</summary>
public sealed class EmulatorFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when the emulator cannot run here.</summary>
    public EmulatorFactAttribute()
    {
        if (EmulatorAvailability.SkipReason is string reason) Skip = "CUDA emulator unavailable: " + reason;
    }
}

/// <summary>A theory that runs CUDA kernels on the host emulator; skipped, with the reason, where g++ is missing.</summary>
public sealed class EmulatorTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when the emulator cannot run here.</summary>
    public EmulatorTheoryAttribute()
    {
        if (EmulatorAvailability.SkipReason is string reason) Skip = "CUDA emulator unavailable: " + reason;
    }
}

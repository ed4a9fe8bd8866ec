using System;
using System.IO;
using Kiln.Build.Tasks.Nvrtc;

namespace Kiln.Build.Tasks.Tests;

/// <summary>Why NVRTC is unavailable (null when it loads), worked out once per test run with the task's own probe.</summary>
internal static class NvrtcAvailability
{
    private static readonly Lazy<NvrtcLibrary?> Library = new(() =>
        NvrtcLibrary.TryLoad(null, Environment.GetEnvironmentVariable("KILN_CUDA_PATH"), Environment.GetEnvironmentVariable("CUDA_HOME"), out _));

    public static NvrtcLibrary Nvrtc => Library.Value ?? throw new InvalidOperationException("NVRTC is not available");

    public static string? SkipReason
    {
        get
        {
            if (Library.Value is not null) return null;
            NvrtcLibrary.TryLoad(null, Environment.GetEnvironmentVariable("KILN_CUDA_PATH"), Environment.GetEnvironmentVariable("CUDA_HOME"), out string attempts);
            return "NVRTC unavailable, so no kernels are compiled here: " + attempts;
        }
    }
}

/// <summary>A fact that needs NVRTC (but no GPU); skipped, with the loader's explanation, where NVRTC is absent.</summary>
public sealed class NvrtcFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when NVRTC cannot be loaded.</summary>
    public NvrtcFactAttribute() => Skip = NvrtcAvailability.SkipReason;
}

/// <summary>Files of the source tree, found by walking up from the test assembly.</summary>
internal static class RepoFiles
{
    private static readonly Lazy<string> RootDirectory = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Compiler.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"The repository root (the folder with Compiler.sln) is not above {AppContext.BaseDirectory}.");
    });

    public static string Root => RootDirectory.Value;

    public static string Path(string relative) => System.IO.Path.Combine(Root, relative.Replace('/', System.IO.Path.DirectorySeparatorChar));
}

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Cuda;

/// <summary>Where the code of a loaded CUDA module came from.</summary>
public enum KernelOrigin
{
    /// <summary>A CUBIN for the device's architecture in the application's <c>kiln-kernels</c> bundle (written by the build).</summary>
    BundleCubin,
    /// <summary>PTX in the bundle, JIT-compiled by the driver.</summary>
    BundlePtx,
    /// <summary>A CUBIN in the run-time kernel cache (compiled by an earlier run).</summary>
    CacheCubin,
    /// <summary>PTX in the run-time kernel cache.</summary>
    CachePtx,
    /// <summary>A CUBIN NVRTC compiled in this run (and wrote to the cache).</summary>
    CompiledCubin,
    /// <summary>PTX NVRTC compiled in this run for an older virtual architecture (the device is newer than NVRTC).</summary>
    CompiledPtx,
}

/// <summary>One candidate image of a module: a CUBIN (ELF bytes) or PTX (UTF-8 text, no terminator).</summary>
/// <param name="Origin">Where it came from.</param>
/// <param name="Path">The file it was read from or written to; null when a compiled image could not be cached.</param>
/// <param name="Architecture">The real (<c>sm_XX</c>) or virtual (<c>compute_XX</c>) architecture, × 10.</param>
/// <param name="Image">The bytes to give <c>cuModuleLoadData</c>.</param>
public sealed record KernelImage(KernelOrigin Origin, string? Path, int Architecture, byte[] Image)
{
    /// <summary>Whether the image is PTX (else a CUBIN).</summary>
    public bool IsPtx => Origin is KernelOrigin.BundlePtx or KernelOrigin.CachePtx or KernelOrigin.CompiledPtx;

    /// <summary>E.g. <c>bundle CUBIN sm_90 (/app/kiln-kernels/….cubin)</c>.</summary>
    public string Describe()
    {
        string kind = Origin switch
        {
            KernelOrigin.BundleCubin => "bundle CUBIN",
            KernelOrigin.BundlePtx => "bundle PTX",
            KernelOrigin.CacheCubin => "cached CUBIN",
            KernelOrigin.CachePtx => "cached PTX",
            KernelOrigin.CompiledCubin => "NVRTC-compiled CUBIN",
            _ => "NVRTC-compiled PTX",
        };
        string arch = (IsPtx ? "compute_" : "sm_") + Architecture.ToString(CultureInfo.InvariantCulture);
        return Path is null ? $"{kind} {arch}" : $"{kind} {arch} ({Path})";
    }
}

/// <summary>What a compile function produced for a module: a CUBIN for <c>sm_{Architecture}</c> or PTX for <c>compute_{Architecture}</c>.</summary>
/// <param name="IsPtx">True for PTX (UTF-8 text), false for a CUBIN.</param>
/// <param name="Architecture">The architecture compiled for, × 10.</param>
/// <param name="Image">The CUBIN bytes or the PTX text's UTF-8 bytes.</param>
public sealed record CompiledKernel(bool IsPtx, int Architecture, byte[] Image);

/// <summary>A module that loaded, and the image it loaded from.</summary>
/// <typeparam name="TModule">The loader's module type.</typeparam>
/// <param name="Module">The loaded module.</param>
/// <param name="Image">The image that loaded.</param>
/// <param name="Rejected">Earlier candidates the loader refused, each with its reason (empty when the first one loaded).</param>
/// <param name="Warnings">Problems that did not stop the load, such as a cache directory that could not be written.</param>
public sealed record LocatedModule<TModule>(TModule Module, KernelImage Image, IReadOnlyList<string> Rejected, IReadOnlyList<string> Warnings);

/// <summary>No candidate image of a module could be loaded; the message lists every one tried and why it failed.</summary>
public sealed class KernelLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KernelLoadException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// Finds the code of a CUDA module for one device architecture, in this order: (1) the application's bundle
/// (<c>kiln-kernels</c>) CUBIN <c>{key}.sm_{arch}.cubin</c>; (2) the bundle's PTX <c>{key}.compute_{a}.ptx</c> with the
/// highest <c>a ≤ arch</c>; (3) and (4) the same two in the run-time cache; (5) a fresh NVRTC compile (a CUBIN for the
/// device's architecture, or PTX for the newest older one when NVRTC does not know the device), written to the cache
/// atomically. A candidate the loader refuses (no code for this GPU, PTX newer than the driver, a damaged file) falls
/// through to the next one. Holds no device state, so it is tested without a GPU.
/// </summary>
public sealed class KernelLocator
{
    /// <summary>The environment variable that overrides the run-time kernel cache directory.</summary>
    public const string CacheVariable = "KILN_KERNEL_CACHE";

    private readonly Func<GpuKernelSource, int, CompiledKernel> _compile;

    /// <summary>Creates a locator.</summary>
    /// <param name="architecture">The device's architecture, compute capability × 10 (90 for an H100/H200).</param>
    /// <param name="bundleDirectory">The prebuilt-kernel directory, or null for none (see <see cref="DefaultBundleDirectory"/>).</param>
    /// <param name="cacheDirectory">The run-time cache directory (see <see cref="DefaultCacheDirectory"/>).</param>
    /// <param name="compile">Compiles a source for an architecture; null for <see cref="CompileWithNvrtc"/>.</param>
    public KernelLocator(int architecture, string? bundleDirectory, string cacheDirectory, Func<GpuKernelSource, int, CompiledKernel>? compile = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(architecture);
        ArgumentException.ThrowIfNullOrWhiteSpace(cacheDirectory);
        Architecture = architecture;
        BundleDirectory = bundleDirectory;
        CacheDirectory = cacheDirectory;
        _compile = compile ?? CompileWithNvrtc;
    }

    /// <summary>The device architecture kernels are found for.</summary>
    public int Architecture { get; }

    /// <summary>The prebuilt-kernel directory, or null.</summary>
    public string? BundleDirectory { get; }

    /// <summary>The run-time cache directory (created on first write).</summary>
    public string CacheDirectory { get; }

    /// <summary>The <c>kiln-kernels</c> directory next to the application's assemblies.</summary>
    public static string DefaultBundleDirectory => Path.Combine(AppContext.BaseDirectory, KernelCacheKey.BundleDirectory);

    /// <summary>
    /// The run-time cache: <c>KILN_KERNEL_CACHE</c> when set, else <c>$XDG_CACHE_HOME/kiln/kernels</c>, else
    /// <c>~/.cache/kiln/kernels</c> (on Windows <c>%LOCALAPPDATA%\kiln\kernels</c>).
    /// </summary>
    /// <param name="environment">Reads a variable; null for the process environment.</param>
    public static string DefaultCacheDirectory(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        if (NonEmpty(environment(CacheVariable)) is string overridden)
            return overridden;
        if (NonEmpty(environment("XDG_CACHE_HOME")) is string xdg)
            return Path.Combine(xdg, "kiln", "kernels");
        if (OperatingSystem.IsWindows())
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "kiln", "kernels");
        string home = NonEmpty(environment("HOME")) ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".cache", "kiln", "kernels");
    }

    /// <summary>
    /// Loads the module of <paramref name="source"/> from the first candidate <paramref name="tryLoad"/> accepts.
    /// <paramref name="tryLoad"/> returns false (with a reason) for an image this device cannot use, and throws for
    /// anything else (which stops the search).
    /// </summary>
    /// <exception cref="KernelLoadException">Every candidate, the fresh compile included, was refused.</exception>
    /// <exception cref="NvrtcCompileException">NVRTC rejected the source; the message lists its diagnostics (file:line).</exception>
    public LocatedModule<TModule> Load<TModule>(GpuKernelSource source, TryLoadImage<TModule> tryLoad)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(tryLoad);
        string key = source.Key;
        var rejected = new List<string>();
        var warnings = new List<string>();

        foreach (var image in StoredCandidates(key, warnings))
        {
            if (tryLoad(image, out var module, out string reason))
                return new LocatedModule<TModule>(module!, image, rejected, warnings);
            rejected.Add(image.Describe() + ": " + reason);
        }

        CompiledKernel compiled;
        try
        {
            compiled = _compile(source, Architecture);
        }
        catch (Exception e) when (e is not NvrtcCompileException)
        {
            // Typically NVRTC is not installed: say where prebuilt kernels were looked for, then why compiling failed.
            throw new KernelLoadException(Explain(source, key, rejected, "NVRTC could not compile it either: " + e.Message), e);
        }

        string fileName = compiled.IsPtx ? KernelCacheKey.PtxFile(key, compiled.Architecture) : KernelCacheKey.CubinFile(key, compiled.Architecture);
        string? path = Path.Combine(CacheDirectory, fileName);
        try
        {
            WriteAtomically(path, compiled.Image);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warnings.Add($"The compiled kernel could not be cached at {path} ({e.Message}); it will be compiled again next run. Set {CacheVariable} to a writable directory.");
            path = null;
        }

        var fresh = new KernelImage(compiled.IsPtx ? KernelOrigin.CompiledPtx : KernelOrigin.CompiledCubin, path, compiled.Architecture, compiled.Image);
        if (tryLoad(fresh, out var loaded, out string freshReason))
            return new LocatedModule<TModule>(loaded!, fresh, rejected, warnings);
        rejected.Add(fresh.Describe() + ": " + freshReason);
        throw new KernelLoadException(Explain(source, key, rejected, null));
    }

    /// <summary>The stored candidates for <paramref name="key"/>, in search order (files that exist only).</summary>
    public IEnumerable<KernelImage> StoredCandidates(string key, List<string>? warnings = null)
    {
        var sources = new List<(string Directory, KernelOrigin Cubin, KernelOrigin Ptx)>();
        if (BundleDirectory is not null)
            sources.Add((BundleDirectory, KernelOrigin.BundleCubin, KernelOrigin.BundlePtx));
        sources.Add((CacheDirectory, KernelOrigin.CacheCubin, KernelOrigin.CachePtx));

        foreach (var (directory, cubinOrigin, ptxOrigin) in sources)
        {
            if (!Directory.Exists(directory))
                continue;
            string cubin = Path.Combine(directory, KernelCacheKey.CubinFile(key, Architecture));
            if (TryRead(cubin, warnings) is byte[] cubinBytes)
                yield return new KernelImage(cubinOrigin, cubin, Architecture, cubinBytes);
            if (BestPtx(directory, key) is (string ptx, int ptxArch) && TryRead(ptx, warnings) is byte[] ptxBytes)
                yield return new KernelImage(ptxOrigin, ptx, ptxArch, ptxBytes);
        }
    }

    /// <summary>
    /// The default compile function: NVRTC with its default options plus the source's defines; a CUBIN for the
    /// device's architecture when NVRTC supports it, otherwise PTX for the newest architecture it supports below it.
    /// </summary>
    /// <exception cref="KilnNativeLibraryException">NVRTC is not installed.</exception>
    /// <exception cref="NvrtcCompileException">The source did not compile.</exception>
    public static CompiledKernel CompileWithNvrtc(GpuKernelSource source, int architecture)
    {
        var nvrtc = NvrtcCompiler.Create();
        var options = new List<string>(KernelCacheKey.CompilerOptions);
        options.AddRange(source.Defines);
        int? best = nvrtc.BestArchitectureFor(architecture)
            ?? throw new NotSupportedException(
                $"NVRTC {nvrtc.Version.Major}.{nvrtc.Version.Minor} supports no architecture at or below sm_{architecture} (it supports {string.Join(", ", nvrtc.SupportedArchitectures)}).");
        if (best == architecture)
        {
            var result = nvrtc.Compile(source.Source, source.Name, options, cubinArch: architecture);
            return new CompiledKernel(false, architecture, result.Cubin!);
        }

        var ptx = nvrtc.Compile(source.Source, source.Name, options, ptxArch: best);
        return new CompiledKernel(true, best.Value, Encoding.UTF8.GetBytes(ptx.Ptx));
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> so that a reader sees the old file or the whole new one, never a part.</summary>
    public static void WriteAtomically(string path, byte[] bytes)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    private (string Path, int Architecture)? BestPtx(string directory, string key)
    {
        string prefix = key + ".compute_";
        (string, int)? best = null;
        foreach (string file in Directory.EnumerateFiles(directory, prefix + "*.ptx"))
        {
            string name = Path.GetFileName(file);
            var digits = name.AsSpan(prefix.Length, name.Length - prefix.Length - ".ptx".Length);
            if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int arch) || arch > Architecture)
                continue;
            if (best is null || arch > best.Value.Item2)
                best = (file, arch);
        }

        return best;
    }

    private static byte[]? TryRead(string path, List<string>? warnings)
    {
        try
        {
            if (!File.Exists(path))
                return null;
            byte[] bytes = File.ReadAllBytes(path);
            if (bytes.Length == 0)
            {
                warnings?.Add($"{path} is empty; skipped.");
                return null;
            }

            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warnings?.Add($"{path} could not be read ({e.Message}); skipped.");
            return null;
        }
    }

    private string Explain(GpuKernelSource source, string key, List<string> rejected, string? extra)
    {
        var text = new StringBuilder();
        text.Append("No code for '").Append(source.Name).Append("' (kernel key ").Append(key).Append(") loads on this sm_")
            .Append(Architecture.ToString(CultureInfo.InvariantCulture)).Append(" device.");
        if (rejected.Count == 0)
        {
            text.Append(" No prebuilt ").Append(KernelCacheKey.CubinFile(key, Architecture)).Append(" or ").Append(key).Append(".compute_NN.ptx (NN ≤ ")
                .Append(Architecture.ToString(CultureInfo.InvariantCulture)).Append(") in ")
                .Append(BundleDirectory is null ? CacheDirectory : BundleDirectory + " or " + CacheDirectory).Append('.');
        }
        else
        {
            text.Append(" Tried, in order:");
            foreach (string r in rejected)
                text.Append("\n  ").Append(r);
        }
        if (extra is not null)
            text.Append('\n').Append(extra);
        text.Append("\nFix: rebuild with KilnCudaArchitectures including ").Append(Architecture.ToString(CultureInfo.InvariantCulture))
            .Append(", delete stale files from ").Append(CacheDirectory).Append(", or update the NVIDIA driver (PTX newer than the driver does not load).");
        return text.ToString();
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}

/// <summary>Tries to load one image; returns false with a reason when this device cannot use it.</summary>
/// <typeparam name="TModule">The module type.</typeparam>
public delegate bool TryLoadImage<TModule>(KernelImage image, out TModule? module, out string reason);

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Interop;
using Kiln.Runtime.Tests.Interop;

namespace Kiln.Runtime.Tests.Cuda;

/// <summary>Where a module's code is looked for, in which order, and what happens when a candidate will not load. No GPU needed.</summary>
public sealed class KernelLocatorTests : IDisposable
{
    private const int Arch = 90;
    private static readonly GpuKernelSource Source = new("model.cu", "extern \"C\" __global__ void k(float* x) { x[0] = 1.0f; }\n", [KernelCacheKey.BFloat16Define]);

    private readonly string _root = Path.Combine(Path.GetTempPath(), "kiln-locator-" + Guid.NewGuid().ToString("N"));
    private readonly string _bundle;
    private readonly string _cache;
    private int _compiles;

    public KernelLocatorTests()
    {
        _bundle = Path.Combine(_root, "bundle");
        _cache = Path.Combine(_root, "cache");
        Directory.CreateDirectory(_bundle);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void Candidates_are_tried_bundle_cubin_then_best_bundle_ptx_then_cache_then_a_fresh_compile()
    {
        string key = Source.Key;
        Write(_bundle, KernelCacheKey.CubinFile(key, Arch), "bundle-cubin");
        Write(_bundle, KernelCacheKey.PtxFile(key, 80), "bundle-ptx-80");
        Write(_bundle, KernelCacheKey.PtxFile(key, 90), "bundle-ptx-90");
        Write(_bundle, KernelCacheKey.PtxFile(key, 100), "bundle-ptx-100"); // newer than the device: never a candidate
        Write(_bundle, KernelCacheKey.CubinFile(key, 80), "bundle-cubin-80"); // another GPU's CUBIN: never a candidate
        Write(_bundle, KernelCacheKey.CubinFile("0123456789abcdef0123456789abcdef", Arch), "other-key");
        Write(_cache, KernelCacheKey.CubinFile(key, Arch), "cache-cubin");
        Write(_cache, KernelCacheKey.PtxFile(key, 86), "cache-ptx-86");

        var tried = new List<string>();
        var located = Locator().Load<string>(Source, (KernelImage image, out string? module, out string reason) =>
        {
            tried.Add($"{image.Origin}:{image.Architecture}:{Encoding.UTF8.GetString(image.Image)}");
            module = null;
            reason = "rejected by the test";
            return image.Origin == KernelOrigin.CompiledCubin && (module = "loaded") is not null;
        });

        Assert.Equal(
            ["BundleCubin:90:bundle-cubin", "BundlePtx:90:bundle-ptx-90", "CacheCubin:90:cache-cubin", "CachePtx:86:cache-ptx-86", "CompiledCubin:90:compiled"],
            tried);
        Assert.Equal(1, _compiles);
        Assert.Equal("loaded", located.Module);
        Assert.Equal(KernelOrigin.CompiledCubin, located.Image.Origin);
        Assert.Equal(4, located.Rejected.Count);
        Assert.All(located.Rejected, r => Assert.Contains("rejected by the test", r, StringComparison.Ordinal));
    }

    [Fact]
    public void A_bundled_cubin_that_loads_is_used_without_compiling()
    {
        Write(_bundle, KernelCacheKey.CubinFile(Source.Key, Arch), "bundle-cubin");
        Write(_cache, KernelCacheKey.CubinFile(Source.Key, Arch), "cache-cubin");

        var located = Locator().Load<string>(Source, AcceptAll);

        Assert.Equal(KernelOrigin.BundleCubin, located.Image.Origin);
        Assert.Equal("bundle-cubin", located.Module);
        Assert.Equal(Path.Combine(_bundle, KernelCacheKey.CubinFile(Source.Key, Arch)), located.Image.Path);
        Assert.Empty(located.Rejected);
        Assert.Equal(0, _compiles);
    }

    [Fact]
    public void A_cubin_the_device_rejects_falls_through_to_the_bundled_ptx()
    {
        Write(_bundle, KernelCacheKey.CubinFile(Source.Key, Arch), "stale-cubin");
        Write(_bundle, KernelCacheKey.PtxFile(Source.Key, 75), "ptx-75");
        Write(_bundle, KernelCacheKey.PtxFile(Source.Key, 89), "ptx-89");

        var located = Locator().Load<string>(Source, (KernelImage image, out string? module, out string reason) =>
        {
            bool ok = image.IsPtx;
            module = ok ? Encoding.UTF8.GetString(image.Image) : null;
            reason = ok ? "" : "CUDA_ERROR_NO_BINARY_FOR_GPU";
            return ok;
        });

        Assert.Equal(KernelOrigin.BundlePtx, located.Image.Origin);
        Assert.Equal("ptx-89", located.Module);
        Assert.Equal(89, located.Image.Architecture);
        Assert.Contains("CUDA_ERROR_NO_BINARY_FOR_GPU", Assert.Single(located.Rejected), StringComparison.Ordinal);
        Assert.Equal(0, _compiles);
    }

    [Fact]
    public void A_fresh_compile_is_cached_atomically_and_found_by_the_next_run()
    {
        var first = Locator().Load<string>(Source, AcceptAll);

        string cached = Path.Combine(_cache, KernelCacheKey.CubinFile(Source.Key, Arch));
        Assert.Equal(KernelOrigin.CompiledCubin, first.Image.Origin);
        Assert.Equal(cached, first.Image.Path);
        Assert.Equal("compiled", File.ReadAllText(cached));
        Assert.Equal([Path.GetFileName(cached)], Directory.GetFiles(_cache).Select(Path.GetFileName)); // no temporary left behind

        var second = Locator().Load<string>(Source, AcceptAll);
        Assert.Equal(KernelOrigin.CacheCubin, second.Image.Origin);
        Assert.Equal(1, _compiles);
    }

    [Fact]
    public void A_compile_to_ptx_is_cached_under_its_virtual_architecture()
    {
        var locator = new KernelLocator(Arch, _bundle, _cache, (_, _) => new CompiledKernel(true, 80, Encoding.UTF8.GetBytes(".version 7.8")));

        var located = locator.Load<string>(Source, AcceptAll);

        Assert.Equal(KernelOrigin.CompiledPtx, located.Image.Origin);
        Assert.True(File.Exists(Path.Combine(_cache, KernelCacheKey.PtxFile(Source.Key, 80))));
    }

    [Fact]
    public void When_every_candidate_is_rejected_the_error_lists_each_with_its_reason()
    {
        Write(_bundle, KernelCacheKey.CubinFile(Source.Key, Arch), "bundle-cubin");

        var error = Assert.Throws<KernelLoadException>(() => Locator().Load<string>(Source, (KernelImage image, out string? module, out string reason) =>
        {
            module = null;
            reason = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION";
            return false;
        }));

        Assert.Contains("bundle CUBIN sm_90", error.Message, StringComparison.Ordinal);
        Assert.Contains("NVRTC-compiled CUBIN sm_90", error.Message, StringComparison.Ordinal);
        Assert.Contains("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", error.Message, StringComparison.Ordinal);
        Assert.Contains(Source.Key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_prebuilt_kernels_or_a_working_compiler_the_error_names_the_directories_searched_and_the_compile_failure()
    {
        var locator = new KernelLocator(Arch, _bundle, _cache, (_, _) => throw new InvalidOperationException("NVRTC (the CUDA runtime compiler) not found"));

        var error = Assert.Throws<KernelLoadException>(() => locator.Load<string>(Source, AcceptAll));

        Assert.Contains(_bundle, error.Message, StringComparison.Ordinal);
        Assert.Contains(_cache, error.Message, StringComparison.Ordinal);
        Assert.Contains(KernelCacheKey.CubinFile(Source.Key, Arch), error.Message, StringComparison.Ordinal);
        Assert.Contains("NVRTC could not compile it either: NVRTC (the CUDA runtime compiler) not found", error.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(error.InnerException);
    }

    [Fact]
    public void An_unwritable_cache_is_a_warning_not_a_failure()
    {
        string notADirectory = Path.Combine(_root, "file");
        File.WriteAllText(notADirectory, "x");
        var locator = new KernelLocator(Arch, null, Path.Combine(notADirectory, "kernels"), Compile);

        var located = locator.Load<string>(Source, AcceptAll);

        Assert.Equal(KernelOrigin.CompiledCubin, located.Image.Origin);
        Assert.Null(located.Image.Path);
        Assert.Contains(KernelLocator.CacheVariable, Assert.Single(located.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void WriteAtomically_replaces_an_existing_file_whole_and_leaves_no_temporary()
    {
        string path = Path.Combine(_cache, "nested", "k.sm_90.cubin");
        KernelLocator.WriteAtomically(path, [1, 2, 3]);
        KernelLocator.WriteAtomically(path, [4, 5]);

        Assert.Equal([4, 5], File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void The_cache_directory_comes_from_KILN_KERNEL_CACHE_then_XDG_CACHE_HOME_then_HOME()
    {
        var env = new Dictionary<string, string?> { ["KILN_KERNEL_CACHE"] = "/k", ["XDG_CACHE_HOME"] = "/x", ["HOME"] = "/h" };
        Assert.Equal("/k", KernelLocator.DefaultCacheDirectory(n => env.GetValueOrDefault(n)));
        env["KILN_KERNEL_CACHE"] = " ";
        Assert.Equal(Path.Combine("/x", "kiln", "kernels"), KernelLocator.DefaultCacheDirectory(n => env.GetValueOrDefault(n)));
        if (!OperatingSystem.IsWindows())
        {
            env["XDG_CACHE_HOME"] = null;
            Assert.Equal(Path.Combine("/h", ".cache", "kiln", "kernels"), KernelLocator.DefaultCacheDirectory(n => env.GetValueOrDefault(n)));
        }

        Assert.Equal(Path.Combine(AppContext.BaseDirectory, "kiln-kernels"), KernelLocator.DefaultBundleDirectory);
    }

    [Fact]
    public void Load_failures_that_mean_wrong_image_fall_through_and_others_do_not()
    {
        Assert.True(CudaGpu.IsUnusableImage(209)); // CUDA_ERROR_NO_BINARY_FOR_GPU
        Assert.True(CudaGpu.IsUnusableImage(222)); // CUDA_ERROR_UNSUPPORTED_PTX_VERSION
        Assert.True(CudaGpu.IsUnusableImage(218)); // CUDA_ERROR_INVALID_PTX
        Assert.True(CudaGpu.IsUnusableImage(200)); // CUDA_ERROR_INVALID_IMAGE (a damaged cache file)
        Assert.False(CudaGpu.IsUnusableImage(2));  // out of memory stops the search
        Assert.False(CudaGpu.IsUnusableImage(201)); // invalid context is a bug, not a wrong image
    }

    [NvrtcFact]
    public void NVRTC_compiles_a_cubin_into_the_cache_for_an_architecture_it_supports()
    {
        var nvrtc = NvrtcCompiler.Create();
        int arch = nvrtc.SupportedArchitectures.Contains(80) ? 80 : nvrtc.SupportedArchitectures[^1];
        var source = new GpuKernelSource("kiln_test.cu", TestKernels.Source, ["-DKILN_TEST_UNUSED=1"]);
        var locator = new KernelLocator(arch, _bundle, _cache);

        var located = locator.Load<byte[]>(source, (KernelImage image, out byte[]? module, out string reason) => { module = image.Image; reason = ""; return true; });

        Assert.Equal(KernelOrigin.CompiledCubin, located.Image.Origin);
        string path = Path.Combine(_cache, KernelCacheKey.CubinFile(source.Key, arch));
        byte[] cubin = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }, cubin[..4]); // an ELF image, as cuModuleLoadData expects
        Assert.Equal(cubin, located.Module);
    }

    [NvrtcFact]
    public void For_a_device_newer_than_NVRTC_it_compiles_PTX_for_the_newest_architecture_NVRTC_knows()
    {
        var nvrtc = NvrtcCompiler.Create();
        int newest = nvrtc.SupportedArchitectures[^1];
        var source = new GpuKernelSource("kiln_test.cu", TestKernels.Source, []);

        var compiled = KernelLocator.CompileWithNvrtc(source, newest + 1000);

        Assert.True(compiled.IsPtx);
        Assert.Equal(newest, compiled.Architecture);
        Assert.Contains(".target sm_" + newest, Encoding.UTF8.GetString(compiled.Image), StringComparison.Ordinal);
    }

    [NvrtcFact]
    public void An_NVRTC_error_names_the_file_and_line_the_source_points_at()
    {
        var source = new GpuKernelSource("gpt.cu", "#line 42 \"Gpt.cs\"\nextern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }\n", []);
        var locator = new KernelLocator(80, null, _cache);

        var error = Assert.Throws<NvrtcCompileException>(() => locator.Load<string>(source, AcceptAll));

        var diagnostic = Assert.Single(error.Diagnostics, d => d.Severity == NvrtcSeverity.Error);
        Assert.Equal("Gpt.cs", diagnostic.File);
        Assert.Equal(42, diagnostic.Line);
        Assert.Contains("undefined_name", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_cache) && Directory.EnumerateFiles(_cache).Any(), "nothing is cached for a failed compile");
    }

    private KernelLocator Locator() => new(Arch, _bundle, _cache, Compile);

    private CompiledKernel Compile(GpuKernelSource source, int architecture)
    {
        _compiles++;
        Assert.Same(Source, source);
        return new CompiledKernel(false, architecture, Encoding.UTF8.GetBytes("compiled"));
    }

    private static bool AcceptAll(KernelImage image, out string? module, out string reason)
    {
        module = Encoding.UTF8.GetString(image.Image);
        reason = "";
        return true;
    }

    private static void Write(string directory, string name, string content)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, name), content);
    }
}

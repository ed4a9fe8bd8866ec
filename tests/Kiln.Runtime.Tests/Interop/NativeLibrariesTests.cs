using System;
using System.IO;
using System.Linq;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Tests.Interop;

/// <summary>
/// Library probing. Each test builds its own <see cref="NativeLibraries"/> with a private environment, so none
/// touches the process environment or the shared resolver the other tests use.
/// </summary>
public sealed class NativeLibrariesTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("kiln-cuda-path-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static NativeLibraries WithEnvironment(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return new NativeLibraries(name => map.TryGetValue(name, out string? value) ? value : null);
    }

    [Fact]
    public void Loading_NVRTC_with_KILN_CUDA_PATH_at_an_empty_directory_names_every_path_tried_and_the_fix()
    {
        var libraries = WithEnvironment((NativeLibraries.CudaPathVariable, _directory));

        bool loaded = libraries.TryLoad(CudaLibrary.Nvrtc, out IntPtr handle, out var error);

        Assert.False(loaded);
        Assert.Equal(IntPtr.Zero, handle);
        Assert.NotNull(error);
        Assert.Equal(CudaLibrary.Nvrtc, error.Library);
        // The override replaces the search: nothing outside the directory is tried.
        Assert.NotEmpty(error.Tried);
        Assert.All(error.Tried, path => Assert.StartsWith(_directory, path, StringComparison.Ordinal));
        foreach (string soname in NativeLibraries.FileNames(CudaLibrary.Nvrtc))
            Assert.Contains(error.Tried, path => Path.GetFileName(path) == soname);
        foreach (string path in error.Tried)
            Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("KILN_CUDA_PATH", error.Message, StringComparison.Ordinal);
        Assert.Contains("install NVRTC", error.Message, StringComparison.Ordinal);
        Assert.Contains("Device = \"cpu\"", error.Message, StringComparison.Ordinal);

        var thrown = Assert.Throws<KilnNativeLibraryException>(() => libraries.Load(CudaLibrary.Nvrtc));
        Assert.Equal(error.Message, thrown.Message);
        Assert.Null(libraries.LoadedFrom(CudaLibrary.Nvrtc));
    }

    [Fact]
    public void The_probed_file_names_are_the_versioned_ones_newest_first()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Equal(["nvcuda.dll"], NativeLibraries.FileNames(CudaLibrary.Driver));
            Assert.Equal(["nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll"], NativeLibraries.FileNames(CudaLibrary.Nvrtc));
            Assert.Empty(NativeLibraries.FileNames(CudaLibrary.Nccl));
            return;
        }

        Assert.True(OperatingSystem.IsLinux(), "Kiln's CUDA path exists on Linux and Windows only");
        Assert.Equal(["libcuda.so.1"], NativeLibraries.FileNames(CudaLibrary.Driver));
        Assert.Equal(["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"], NativeLibraries.FileNames(CudaLibrary.Nvrtc));
        Assert.Equal(["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11"], NativeLibraries.FileNames(CudaLibrary.CublasLt));
        Assert.Equal(["libnccl.so.2"], NativeLibraries.FileNames(CudaLibrary.Nccl));
    }

    [Fact]
    public void A_file_that_exists_but_is_not_a_library_is_reported_with_the_loaders_reason()
    {
        string fake = Path.Combine(_directory, NativeLibraries.FileNames(CudaLibrary.Nvrtc)[0]);
        File.WriteAllText(fake, "not a shared object");
        var libraries = WithEnvironment((NativeLibraries.CudaPathVariable, fake));

        var error = Assert.Throws<KilnNativeLibraryException>(() => libraries.Load(CudaLibrary.Nvrtc));

        // A full path to a library file is used alone.
        Assert.Equal([fake], error.Tried);
        Assert.Contains("exist but failed to load", error.Message, StringComparison.Ordinal);
        Assert.Contains(fake + ": ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_override_for_one_library_makes_the_others_search_its_directory()
    {
        string nvrtc = Path.Combine(_directory, NativeLibraries.FileNames(CudaLibrary.Nvrtc)[0]);
        File.WriteAllText(nvrtc, "placeholder");
        var libraries = WithEnvironment((NativeLibraries.CudaPathVariable, nvrtc));

        var cublas = libraries.SearchPaths(CudaLibrary.CublasLt);

        Assert.All(cublas, path => Assert.StartsWith(_directory, path, StringComparison.Ordinal));
        Assert.Contains(Path.Combine(_directory, NativeLibraries.FileNames(CudaLibrary.CublasLt)[^1]), cublas);
    }

    [Fact]
    public void A_toolkit_override_still_lets_the_system_loader_find_the_driver()
    {
        var libraries = WithEnvironment((NativeLibraries.CudaPathVariable, _directory));

        var driver = libraries.SearchPaths(CudaLibrary.Driver);
        var nvrtc = libraries.SearchPaths(CudaLibrary.Nvrtc);

        // The driver is searched in the override first, then by bare name (the system loader) ...
        Assert.StartsWith(_directory, driver[0], StringComparison.Ordinal);
        Assert.Equal(NativeLibraries.FileNames(CudaLibrary.Driver)[^1], driver[^1]);
        // ... while a toolkit library is searched nowhere else.
        Assert.DoesNotContain(nvrtc, path => !Path.IsPathRooted(path));
    }

    [Fact]
    public void Without_an_override_bare_sonames_come_first_then_toolkit_directories()
    {
        string cudaHome = Path.Combine(_directory, "cuda-home");
        var libraries = WithEnvironment(("CUDA_HOME", cudaHome));

        var paths = libraries.SearchPaths(CudaLibrary.Nvrtc);
        var names = NativeLibraries.FileNames(CudaLibrary.Nvrtc);

        Assert.Equal(names, paths.Take(names.Count));
        string toolkitLib = OperatingSystem.IsWindows() ? "bin" : "lib64";
        Assert.Contains(Path.Combine(cudaHome, toolkitLib, names[0]), paths);
        int firstToolkit = paths.ToList().FindIndex(p => p.StartsWith(cudaHome, StringComparison.Ordinal));
        Assert.True(firstToolkit >= names.Count, "toolkit directories come after the system loader's search");
    }

    [Fact]
    public void Logical_import_names_map_to_their_libraries_and_back()
    {
        foreach (CudaLibrary library in Enum.GetValues<CudaLibrary>())
        {
            string name = NativeLibraries.LogicalName(library);
            Assert.True(NativeLibraries.TryParseLogicalName(name, out CudaLibrary parsed));
            Assert.Equal(library, parsed);
        }

        Assert.Equal("nvrtc", NativeLibraries.LogicalName(CudaLibrary.Nvrtc));
        Assert.Equal("cuda", NativeLibraries.LogicalName(CudaLibrary.Driver));
        Assert.False(NativeLibraries.TryParseLogicalName("libm", out _));
    }

    [Fact]
    public void A_missing_driver_is_explained_as_no_NVIDIA_driver()
    {
        var libraries = WithEnvironment((NativeLibraries.CudaPathVariable, _directory));

        if (libraries.TryLoad(CudaLibrary.Driver, out IntPtr handle, out var error))
        {
            // A machine with a driver: the system loader found it despite the toolkit override.
            Assert.NotEqual(IntPtr.Zero, handle);
            Assert.Equal(NativeLibraries.FileNames(CudaLibrary.Driver)[0], libraries.LoadedFrom(CudaLibrary.Driver));
            return;
        }

        Assert.NotNull(error);
        Assert.StartsWith(NativeLibraries.FileNames(CudaLibrary.Driver)[0] + " not found: no NVIDIA driver on this machine", error.Message, StringComparison.Ordinal);
        Assert.Contains("install the NVIDIA driver", error.Message, StringComparison.Ordinal);
        Assert.Contains("Device = \"cpu\"", error.Message, StringComparison.Ordinal);
    }
}

using System.IO;
using System.Linq;
using Kiln.Build.Tasks.Nvrtc;

namespace Kiln.Build.Tasks.Tests;

public class NvrtcProbeTests
{
    [Fact]
    public void An_explicit_path_that_does_not_exist_is_not_found_even_if_the_system_has_NVRTC()
    {
        var lib = NvrtcLibrary.TryLoad("/nonexistent/libnvrtc.so", null, null, out string attempts);
        Assert.Null(lib);
        Assert.Contains("KilnNvrtcPath /nonexistent/libnvrtc.so: no such file or directory", attempts);
    }

    [Fact]
    public void An_explicit_directory_without_NVRTC_is_not_found_and_says_where_it_looked()
    {
        string dir = Directory.CreateTempSubdirectory("kiln-nvrtc-empty").FullName;
        try
        {
            Assert.Null(NvrtcLibrary.TryLoad(dir, null, null, out string attempts));
            Assert.Contains(dir, attempts);
            Assert.Contains("no libnvrtc.so*", attempts);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Library_names_exclude_the_builtins_library()
    {
        Assert.True(NvrtcLibrary.IsNvrtcLibraryName("libnvrtc.so.12"));
        Assert.True(NvrtcLibrary.IsNvrtcLibraryName("nvrtc64_120_0.dll"));
        Assert.False(NvrtcLibrary.IsNvrtcLibraryName("libnvrtc-builtins.so.12.4"));
        Assert.False(NvrtcLibrary.IsNvrtcLibraryName("nvrtc-builtins64_124.dll"));
    }

    [NvrtcFact]
    public void Loaded_NVRTC_reports_its_version_and_supported_architectures()
    {
        var nvrtc = NvrtcAvailability.Nvrtc;
        Assert.Matches(@"^\d+\.\d+$", nvrtc.Version);
        Assert.Contains(80, nvrtc.SupportedArchitectures);
        Assert.True(nvrtc.SupportedArchitectures.SequenceEqual(nvrtc.SupportedArchitectures.OrderBy(a => a)));
    }

    [NvrtcFact]
    public void An_explicit_path_to_the_library_file_loads_that_file()
    {
        string path = NvrtcAvailability.Nvrtc.Path;
        if (!Path.IsPathRooted(path)) path = FindOnDisk(path) ?? path;
        if (!File.Exists(path)) return; // a bare soname the loader resolved; nothing on disk to point at
        var lib = NvrtcLibrary.TryLoad(path, null, null, out _);
        Assert.NotNull(lib);
        Assert.Equal(path, lib!.Path);
    }

    private static string? FindOnDisk(string soname) =>
        new[] { "/usr/lib/x86_64-linux-gnu", "/usr/local/cuda/lib64", "/usr/lib64" }.Select(d => Path.Combine(d, soname)).FirstOrDefault(File.Exists);
}

using System;
using System.IO;
using System.Linq;
using System.Reflection;
using Kiln.Runtime.Cuda;

namespace Kiln.Generators.Tests;

/// <summary>Why the spirals example's kernel bundle is not there to check (null when it is).</summary>
internal static class SpiralsBundle
{
    public static string Directory => RepoFiles.Path("examples/Spirals/bin/Release/net10.0/kiln-kernels");

    public static string? SkipReason =>
        NvrtcAvailability.SkipReason ?? (System.IO.Directory.Exists(Directory)
            ? null
            : $"the spirals example has not been built in Release with its kernels ({Directory} is missing); `dotnet build Compiler.sln -c Release` builds it");
}

/// <summary>A fact that needs the spirals example's Release build with its kernel bundle.</summary>
public sealed class SpiralsBundleFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when the bundle is missing.</summary>
    public SpiralsBundleFactAttribute() => Skip = SpiralsBundle.SkipReason;
}

/// <summary>
/// The build task and the runtime agree end to end: the kernels `dotnet build` wrote next to the spirals example are
/// the ones the runtime's <see cref="KernelLocator"/> finds for the CUDA source the built assembly carries, for each
/// precision — a CUBIN for sm_80 and sm_90 and, for a GPU newer than the list, the PTX — without compiling anything.
/// </summary>
public class KernelBundleTests
{
    [SpiralsBundleFact]
    public void The_runtime_finds_the_prebuilt_kernels_of_the_example_for_every_precision_without_compiling()
    {
        var assembly = Assembly.LoadFrom(RepoFiles.Path("examples/Spirals/bin/Release/net10.0/Spirals.dll"));
        var field = assembly.GetTypes()
            .Select(t => t.GetField("KilnCudaSource", BindingFlags.Public | BindingFlags.Static))
            .Single(f => f is not null)!;
        var source = (string)field.GetRawConstantValue()!;
        var cache = Path.Combine(Path.GetTempPath(), "kiln-bundle-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            foreach (var define in new[] { KernelCacheKey.BFloat16Define, KernelCacheKey.Float16Define, KernelCacheKey.Float32Define })
            {
                var kernels = new GpuKernelSource("SpiralClassifier.cu", source, new[] { define });
                foreach (var (arch, origin, file) in new[]
                {
                    (80, KernelOrigin.BundleCubin, KernelCacheKey.CubinFile(kernels.Key, 80)),
                    (90, KernelOrigin.BundleCubin, KernelCacheKey.CubinFile(kernels.Key, 90)),
                    (120, KernelOrigin.BundlePtx, KernelCacheKey.PtxFile(kernels.Key, 90)),
                })
                {
                    var locator = new KernelLocator(arch, SpiralsBundle.Directory, cache,
                        (_, _) => throw new InvalidOperationException($"{define} sm_{arch}: the runtime compiled a kernel the build should have provided"));
                    var located = locator.Load<byte[]>(kernels, (KernelImage image, out byte[]? module, out string reason) =>
                    {
                        module = image.Image; reason = string.Empty; return true;
                    });
                    Assert.Equal(origin, located.Image.Origin);
                    Assert.Equal(Path.Combine(SpiralsBundle.Directory, file), located.Image.Path);
                    if (origin == KernelOrigin.BundleCubin) Assert.Equal(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }, located.Module.Take(4));
                    else Assert.Contains("kiln_rt_adamw", System.Text.Encoding.UTF8.GetString(located.Module), StringComparison.Ordinal);
                }
            }
        }
        finally
        {
            if (System.IO.Directory.Exists(cache)) System.IO.Directory.Delete(cache, recursive: true);
        }
    }
}

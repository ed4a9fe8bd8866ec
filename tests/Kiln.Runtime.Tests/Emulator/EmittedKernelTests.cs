using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Kiln.Cuda.Emulator;
using Kiln.Runtime.Cuda;

namespace Kiln.Runtime.Tests.Emulator;

/// <summary>A translation unit the CUDA emitter produced (the generator's Mlp golden file) builds for the emulator in every precision variant.</summary>
public sealed class EmittedKernelTests
{
    [EmulatorTheory]
    [InlineData(KernelCacheKey.BFloat16Define)]
    [InlineData(KernelCacheKey.Float16Define)]
    [InlineData(KernelCacheKey.Float32Define)]
    public void The_emitted_Mlp_module_compiles_and_every_kernel_resolves(string define)
    {
        string source = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Emulator", "Inputs", "Mlp.cu.txt"));
        string[] declared = Regex.Matches(source, @"__global__ void (\w+)\(").Select(m => m.Groups[1].Value).ToArray();
        Assert.NotEmpty(declared);
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(new GpuKernelSource("Mlp.cu", source, [define]));
        foreach (string name in declared) Assert.Equal(name, module.GetKernel(name).Name);
    }
}

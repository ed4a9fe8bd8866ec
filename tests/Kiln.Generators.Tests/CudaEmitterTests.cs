using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Kiln.Generators.Emit;
using Kiln.Generators.Ir;
using Kiln.Generators.Passes;
using Kiln.Generators.Tests.Reference;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Interop;

namespace Kiln.Generators.Tests;

/// <summary>
/// The emitted CUDA translation unit: pinned for the golden MLP, self-contained, one kernel per non-matmul
/// fusion group, and accepted by NVRTC for sm_80 and sm_90 in each precision variant (no GPU needed). Whether the
/// kernels compute the right numbers is checked on the host emulator (CudaProgramTests) and, on a GPU, by the GPU tests.
/// </summary>
public class CudaEmitterTests
{
    private static readonly byte[] ElfMagic = { 0x7f, (byte)'E', (byte)'L', (byte)'F' };

    private static string SpiralsSource() => RepoFiles.Read("examples/Spirals/SpiralClassifier.cs");

    /// <summary>Every model the CUDA checks cover: the example, the hand-written corpus, the golden models and models of the module library.</summary>
    public static IEnumerable<object[]> Models =>
        new[] { "Spirals" }.Concat(HandWritten.Types).Concat(new[] { "Golden.Mlp", "Golden.SpiralClassifier", "Golden.TinySequenceModel" })
            .Concat(new[] { "L.GptModel", "L.LlamaModel", "L.CrossAttentionModel", "A.SelfFused", "A.CrossFused" })
            .Select(m => new object[] { m });

    private static CompiledModel Compile(string model)
    {
        var spec = model switch
        {
            "Spirals" => GeneratorHarness.Spec(SpiralsSource()),
            "Golden.Mlp" => GeneratorHarness.Spec(GoldenTests.Mlp),
            "Golden.SpiralClassifier" => GeneratorHarness.Spec(GoldenTests.Residual),
            "Golden.TinySequenceModel" => GeneratorHarness.Spec(GoldenTests.Sequence),
            _ when model.StartsWith("L.", StringComparison.Ordinal) => ModelGraphs.Spec(LibraryModuleTests.Source, model),
            _ when model.StartsWith("A.", StringComparison.Ordinal) => ModelGraphs.Spec(FusedAttentionTests.Source, model),
            _ => ModelGraphs.Spec(HandWritten.Source, model),
        };
        var (compiled, diagnostics) = Pipeline.Compile(spec, false);
        Assert.True(compiled is not null, $"{model} did not compile: " + string.Join("; ", diagnostics.Select(d => d.Id + " " + string.Join(", ", d.Args))));
        return compiled!;
    }

    private static IEnumerable<(Graph Graph, string Kind)> Programs(CompiledModel m)
    {
        yield return (m.Train, "train");
        yield return (m.Eval, "eval");
        if (m.Predict is not null) yield return (m.Predict, "predict");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Emitted_cuda_has_no_include_and_one_kernel_per_non_matmul_group(string model)
    {
        var compiled = Compile(model);
        var cuda = CudaEmitter.Emit(compiled);
        Assert.DoesNotContain("#include", cuda, StringComparison.Ordinal);
        var kernels = Regex.Matches(cuda, @"extern ""C"" __global__ void (\w+)\(").Select(x => x.Groups[1].Value).ToList();
        Assert.Equal(kernels.Count, kernels.Distinct().Count());
        void Check(Graph g, string prefix)
        {
            foreach (var gr in g.Groups!)
            {
                var root = g[gr.Root];
                // Dropout masks run the runtime's kiln_rt_dropout_mask kernel; a loop runs its body's kernels.
                bool wantsKernel = gr.Kind is not (GroupKind.Const or GroupKind.Alias or GroupKind.MatMul or GroupKind.Loop) && root.Op != Op.DropoutMask;
                int count = kernels.Count(k => k.StartsWith($"{prefix}_k{gr.Id}_", StringComparison.Ordinal));
                Assert.True(count == (wantsKernel ? 1 : 0), $"{model} {prefix} group k{gr.Id} ({gr.Kind}, {root.Op}) has {count} kernels");
                if (gr.Kind == GroupKind.MatMul)
                    Assert.Contains($"// GEMM (cuBLASLt, no emitted kernel): %{root.Id} ", cuda, StringComparison.Ordinal);
                // A body's kernels are emitted once, whatever the loop's count.
                if (root.Attr is LoopAttr loop) Check(loop.Body, $"{prefix}_L{root.Id}");
            }
        }
        foreach (var (g, kind) in Programs(compiled)) Check(g, $"{compiled.Spec.Name}_{kind}");
    }

    [NvrtcTheory]
    [MemberData(nameof(Models))]
    public void Emitted_cuda_compiles_with_nvrtc_for_sm80_and_sm90(string model)
    {
        var compiled = Compile(model);
        var cuda = CudaEmitter.Emit(compiled);
        var nvrtc = NvrtcCompiler.Create();
        // The bf16 build (the GPU default) of every model on both architectures; the fp16 and fp32 variants of the
        // example and golden models too (the hand-written ones add nothing those don't cover, and NVRTC costs ~1 s a compile).
        var defines = model.StartsWith("C.", StringComparison.Ordinal) || model.StartsWith("L.", StringComparison.Ordinal) || model == "A.CrossFused"
            ? new[] { KernelCacheKey.BFloat16Define }
            : new[] { KernelCacheKey.BFloat16Define, KernelCacheKey.Float16Define, KernelCacheKey.Float32Define };
        foreach (var define in defines)
            foreach (int arch in new[] { 80, 90 })
            {
                var result = nvrtc.Compile(cuda, CudaEmitter.FileName(compiled), NvrtcCompiler.DefaultOptions.Append(define).ToList(), cubinArch: arch);
                // Warnings too: generated code that NVRTC warns about would surface as KILNB003 in every user's build.
                Assert.True(result.Diagnostics.Count == 0, $"{model} {define} sm_{arch}: " + string.Join("\n", result.Diagnostics.Select(d => $"{d.File}({d.Line}): {d.Severity}: {d.Message}")));
                Assert.NotNull(result.Cubin);
                Assert.Equal(ElfMagic, result.Cubin!.Take(4).ToArray());
                // The runtime's kernels are in every module.
                Assert.Contains("kiln_rt_adamw", result.Ptx, StringComparison.Ordinal);
            }
    }

    [NvrtcFact]
    public void A_broken_kernel_statement_is_reported_at_the_csharp_line_it_came_from()
    {
        var compiled = Compile("Golden.Mlp");
        var cuda = CudaEmitter.Emit(compiled, injectIntoUserCode: "KILN_BROKEN;");
        var directive = Regex.Match(cuda, @"#line (\d+) ""([^""]+)""\nKILN_BROKEN;");
        Assert.True(directive.Success, "the injected statement follows a #line directive that points at user code");
        int expectedLine = int.Parse(directive.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("Model0.cs", directive.Groups[2].Value);
        // The line is real C# of the model: the Forward or Loss method the first kernel's ops came from.
        var csharpLine = GoldenTests.Mlp.Replace("\r\n", "\n").Split('\n')[expectedLine - 1];
        Assert.Matches(@"Forward|Loss", csharpLine);

        var error = Assert.Throws<NvrtcCompileException>(() => NvrtcCompiler.Create().Compile(cuda, CudaEmitter.FileName(compiled), cubinArch: 80));
        var diagnostic = Assert.Single(error.Diagnostics, d => d.Severity == NvrtcSeverity.Error);
        Assert.Equal("Model0.cs", diagnostic.File);
        Assert.Equal(expectedLine, diagnostic.Line);
        Assert.Contains("KILN_BROKEN", diagnostic.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_generator_adds_the_cuda_source_as_a_constant_of_the_model_class()
    {
        var asm = GeneratorHarness.Build(GoldenTests.Mlp);
        var field = asm.GetType("Golden.Mlp", throwOnError: true)!.GetField("KilnCudaSource");
        Assert.NotNull(field);
        Assert.True(field!.IsLiteral);
        Assert.Equal(CudaEmitter.Emit(Compile("Golden.Mlp")), (string)field.GetRawConstantValue()!);
    }

    [Fact]
    public void Mlp_cuda_matches_its_golden_file() => GoldenTests.AssertMatchesGolden("Mlp.cu.txt", CudaEmitter.Emit(Compile("Golden.Mlp")));
}

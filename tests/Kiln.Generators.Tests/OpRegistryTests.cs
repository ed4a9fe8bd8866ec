using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Kiln.Generators.Emit;
using Kiln.Generators.Ir;
using Kiln.Generators.Tests.Reference;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Interop;
using Microsoft.CodeAnalysis;

namespace Kiln.Generators.Tests;

/// <summary>
/// The registry is complete: every op has a shape rule and a lowering for every backend whose helpers exist (the CPU
/// templates compile against the runtime, the CUDA templates against the prelude with NVRTC), reference semantics
/// and a gradient check; every <c>Ops</c> method lowers to something and nothing in the registry lacks its stub.
/// </summary>
public class OpRegistryTests
{
    public static IEnumerable<object[]> AllOps => Enum.GetNames(typeof(Op)).Select(o => new object[] { o });

    [Theory]
    [MemberData(nameof(AllOps))]
    public void Every_op_has_a_complete_registry_entry(string name)
    {
        var op = Enum.Parse<Op>(name);
        var def = OpRegistry.Of(op);
        Assert.Equal(op, def.Op);
        var problems = RegistryChecks.Problems(def);
        Assert.True(problems.Count == 0, $"{op}: " + string.Join("; ", problems));
    }

    [Theory]
    [MemberData(nameof(AllOps))]
    public void Every_op_has_float64_reference_semantics(string op) =>
        Assert.True(ReferenceInterpreter.Handles(Enum.Parse<Op>(op)), $"the reference interpreter has no case for {op}; add one to ReferenceInterpreter.Semantics");

    [Fact]
    public void The_completeness_check_reports_a_missing_or_broken_lowering()
    {
        // The check itself must be able to fail: an entry whose CUDA helper does not exist, whose CPU template drops an
        // operand, and one with no lowering at all.
        var broken = new OpDef(Op.Exp, OpKind.Elementwise, 1)
        {
            Shape = ShapeRules.UnaryFloat,
            Lowering = new ElementwiseLowering("V.Exp({0})", "S.Exp(1f)", "kiln_ExpButMissing({0})"),
        };
        var problems = RegistryChecks.Problems(broken);
        Assert.Contains(problems, p => p.Contains("kiln_ExpButMissing", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("{0}", StringComparison.Ordinal));
        Assert.NotEmpty(RegistryChecks.Problems(new OpDef(Op.Exp, OpKind.Elementwise, 1) { Shape = ShapeRules.UnaryFloat }));
        Assert.NotEmpty(RegistryChecks.Problems(new OpDef(Op.Gather, OpKind.Indexing, 2) { Shape = ShapeRules.UnaryFloat, Lowering = new NoKernel("no") }));
    }

    [Fact]
    public void Every_Ops_method_lowers_and_every_DSL_name_has_an_Ops_method()
    {
        var methods = typeof(Kiln.Ops).GetMethods(BindingFlags.Public | BindingFlags.Static).Select(m => m.Name).Distinct().ToList();
        var unlowered = methods.Where(m => DslFunctions.Primitive(m) is null && DslFunctions.Find(m) is null).ToList();
        Assert.True(unlowered.Count == 0, "Ops methods without a primitive (OpDef.Dsl) or a DslFunction: " + string.Join(", ", unlowered));
        var names = OpRegistry.All.Where(d => d.Dsl is not null).Select(d => d.Dsl!).Concat(DslFunctions.All.Select(f => f.Name));
        var orphans = names.Where(n => !methods.Contains(n)).ToList();
        Assert.True(orphans.Count == 0, "DSL names with no Ops method for users to call: " + string.Join(", ", orphans));
    }

    [Fact]
    public void Every_tensor_only_Ops_function_has_a_generated_gradient_check()
    {
        // Functions of float tensors get a finite-difference case automatically (GradientCheckTests); the others need a
        // hand-written model in CompositeModels. This keeps the two lists honest.
        Assert.Contains("Softmax_last_axis", GradCases.All.Keys);
        foreach (var fn in DslGradientModels.Functions) Assert.Contains("Ops." + fn, GradCases.All.Keys);
        Assert.Contains("Tanh", DslGradientModels.Functions);
        Assert.DoesNotContain("Greater", DslGradientModels.Functions); // no gradient flows through a comparison
    }

    [Fact]
    public void Every_cpu_template_compiles_against_the_runtime_helpers()
    {
        var sb = new StringBuilder("using System.Runtime.Intrinsics;\nstatic class Templates\n{\n");
        foreach (var def in OpRegistry.All)
        {
            if (def.Lowering is not ElementwiseLowering e) continue;
            string Fill(string t, string prefix, string scalar) =>
                t.Replace("{0}", prefix + "0").Replace("{1}", prefix + "1").Replace("{2}", prefix + "2").Replace("{s}", scalar)
                 .Replace("V.", "global::Kiln.Runtime.Cpu.V.").Replace("S.", "global::Kiln.Runtime.Cpu.S.");
            sb.Append($"    static Vector256<float> V{def.Op}(Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> vq) => {Fill(e.CpuVector, "v", "vq")};\n");
            sb.Append($"    static float S{def.Op}(float e0, float e1, float e2, float q) => {Fill(e.CpuScalar, "e", "q")};\n");
        }
        sb.Append("}\n");
        var errors = GeneratorHarness.Compilation(sb.ToString()).GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors) + "\n" + sb);
    }

    [NvrtcFact]
    public void Every_cuda_template_compiles_with_nvrtc_without_warnings()
    {
        var sb = new StringBuilder(CudaPrelude.Text.Replace("\r\n", "\n")).Append('\n');
        foreach (var def in OpRegistry.All)
        {
            if (def.Lowering is not ElementwiseLowering e) continue;
            var t = e.Cuda.Replace("{0}", "e0").Replace("{1}", "e1").Replace("{2}", "e2").Replace("{s}", "q");
            sb.Append($"extern \"C\" __global__ void t_{def.Op}(float* __restrict__ out, const float* __restrict__ x, float q, long long n)\n{{\n")
              .Append($"    KILN_FOR_ELEMENTS(i, n) {{ {string.Concat(Enumerable.Range(0, def.Arity).Select(k => $"float e{k} = x[i] + {k}.0f; "))}out[i] = {t}; }}\n}}\n");
        }
        var result = NvrtcCompiler.Create().Compile(sb.ToString(), "templates.cu", NvrtcCompiler.DefaultOptions.Append(KernelCacheKey.BFloat16Define).ToList(), cubinArch: 80);
        Assert.True(result.Diagnostics.Count == 0, string.Join("\n", result.Diagnostics.Select(d => $"{d.Line}: {d.Message}")));
        foreach (var def in OpRegistry.All.Where(d => d.Lowering is ElementwiseLowering))
            Assert.Contains("t_" + def.Op, result.Ptx, StringComparison.Ordinal);
    }
}

/// <summary>What a registry entry must have; each problem is a sentence naming what is missing.</summary>
internal static class RegistryChecks
{
    /// <summary>The ops that need no kernel on any backend (aliases of storage that already exists).</summary>
    private static readonly Op[] WithoutKernel = { Op.Input, Op.Param, Op.Reshape, Op.TensorReplicate, Op.LoopArg, Op.LoopOut };

    public static List<string> Problems(OpDef def)
    {
        var p = new List<string>();
        if (def.Shape is null) p.Add("no shape rule");
        if (def.Attr is not null && !typeof(OpAttr).IsAssignableFrom(def.Attr)) p.Add($"attribute type {def.Attr.Name} is not an OpAttr");
        switch (def.Lowering)
        {
            case null:
                p.Add("no lowering");
                break;
            case ElementwiseLowering e:
                if (def.Kind != OpKind.Elementwise) p.Add($"elementwise templates on a {def.Kind} op");
                CheckTemplate(p, def, "CPU vector", e.CpuVector, "V.", typeof(Kiln.Runtime.Cpu.V), forbid: new[] { "S.", "kiln_" });
                CheckTemplate(p, def, "CPU scalar", e.CpuScalar, "S.", typeof(Kiln.Runtime.Cpu.S), forbid: new[] { "V.", "kiln_" });
                CheckTemplate(p, def, "CUDA", e.Cuda, "kiln_", null, forbid: new[] { "V.", "S." });
                break;
            case KernelLowering k:
                if (def.Kind == OpKind.Elementwise) p.Add("an elementwise op needs templates (it is fused), not a kernel");
                if (k.Cpu is null) p.Add("no CPU kernel");
                if (k.Cuda is null) p.Add("no CUDA kernel");
                break;
            case GemmLowering:
                if (def.Kind != OpKind.MatMul) p.Add("a GEMM lowering on an op that is not a matmul");
                break;
            case RegionLowering:
                if (def.Kind != OpKind.Region) p.Add("a region lowering on an op that is not a region");
                break;
            case NoKernel:
                if (!WithoutKernel.Contains(def.Op)) p.Add("no kernel on any backend, but it is not an input, parameter or view (reshape, tensor replicate)");
                break;
        }
        if (def.Kind == OpKind.Elementwise && def.Lowering is not ElementwiseLowering) p.Add("an elementwise op without fused-kernel templates");
        return p;
    }

    private static readonly Lazy<string> Prelude = new(() => CudaPrelude.Text.Replace("\r\n", "\n"));

    private static void CheckTemplate(List<string> p, OpDef def, string backend, string template, string helperPrefix, Type? helpers, string[] forbid)
    {
        if (string.IsNullOrWhiteSpace(template)) { p.Add($"no {backend} template"); return; }
        for (int i = 0; i < 3; i++)
        {
            bool uses = template.Contains("{" + i + "}");
            if (i < def.Arity && !uses) p.Add($"the {backend} template does not use operand {{{i}}}");
            if (i >= def.Arity && uses) p.Add($"the {backend} template uses operand {{{i}}} of a {def.Arity}-input op");
        }
        bool scalar = def.Attr == typeof(ScalarAttr);
        if (scalar != template.Contains("{s}")) p.Add($"the {backend} template {(scalar ? "ignores" : "uses")} the scalar {{s}}");
        foreach (var f in forbid)
            if (template.Contains(f)) p.Add($"the {backend} template names another backend's helper ({f})");
        foreach (Match m in Regex.Matches(template, Regex.Escape(helperPrefix) + @"(\w+)\("))
        {
            var name = m.Groups[1].Value;
            if (helpers is not null)
            {
                if (helpers.GetMethods(BindingFlags.Public | BindingFlags.Static).All(x => x.Name != name))
                    p.Add($"the {backend} template calls {helpers.FullName}.{name}, which does not exist");
            }
            else if (!Regex.IsMatch(Prelude.Value, @"__device__[^\n(]*\bkiln_" + name + @"\("))
                p.Add($"the {backend} template calls kiln_{name}, which the CUDA prelude does not define");
        }
    }
}

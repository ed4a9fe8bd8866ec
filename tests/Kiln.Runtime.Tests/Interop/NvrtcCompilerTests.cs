using System;
using System.Buffers.Binary;
using System.Linq;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Tests.Interop;

/// <summary>NVRTC compiles Kiln-style kernels without a GPU; these run wherever libnvrtc is installed (CI: Debian's libnvrtc11.2).</summary>
public sealed class NvrtcCompilerTests
{
    private const ushort ElfMachineCuda = 190; // EM_CUDA

    private static NvrtcCompiler Compiler
    {
        get
        {
            Assert.True(NvrtcCompiler.TryCreate(out var compiler, out string reason), reason);
            return compiler;
        }
    }

    [NvrtcFact]
    public void NVRTC_reports_its_version_and_supports_Ampere_and_Hopper()
    {
        var compiler = Compiler;

        Assert.True(compiler.Version >= new Version(11, 2), $"NVRTC {compiler.Version} is older than the 11.2 Kiln probes for");
        Assert.Contains(80, compiler.SupportedArchitectures);
        Assert.Contains(90, compiler.SupportedArchitectures);
        Assert.Equal(compiler.SupportedArchitectures.OrderBy(a => a), compiler.SupportedArchitectures);
        Assert.False(string.IsNullOrEmpty(compiler.LibraryPath));
    }

    [NvrtcTheory]
    [InlineData(80)]
    [InlineData(90)]
    public void Self_contained_kernels_compile_to_a_CUBIN_for_a_real_architecture(int architecture)
    {
        var result = Compiler.Compile(TestKernels.Source, "kiln_test_kernels.cu", cubinArch: architecture);

        Assert.Equal($"sm_{architecture}", result.Architecture);
        Assert.Equal(["-default-device", "--std=c++17", $"--gpu-architecture=sm_{architecture}"], result.Options);
        Assert.NotNull(result.Cubin);
        Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }, result.Cubin[..4]); // a CUBIN is an ELF image
        Assert.Equal(ElfMachineCuda, BinaryPrimitives.ReadUInt16LittleEndian(result.Cubin.AsSpan(18)));
        foreach (string kernel in new[] { TestKernels.Bf16RoundTrip, TestKernels.AdamWUpdate, TestKernels.VectorAdd })
        {
            Assert.Contains($".entry {kernel}", result.Ptx, StringComparison.Ordinal);
            // extern "C" keeps the names unmangled in the machine code too.
            Assert.True(result.Cubin.AsSpan().IndexOf(System.Text.Encoding.ASCII.GetBytes(kernel)) >= 0, $"{kernel} is in the CUBIN's symbols");
        }

        Assert.DoesNotContain(result.Diagnostics, d => d.Severity == NvrtcSeverity.Error);
    }

    [NvrtcFact]
    public void A_virtual_architecture_gives_PTX_only()
    {
        var result = Compiler.Compile(TestKernels.Source, "kiln_test_kernels.cu", ptxArch: 90);

        Assert.Equal("compute_90", result.Architecture);
        Assert.Null(result.Cubin);
        Assert.Contains("--gpu-architecture=compute_90", result.Options);
        Assert.Contains(".target sm_90", result.Ptx, StringComparison.Ordinal);
        Assert.Contains($".entry {TestKernels.AdamWUpdate}", result.Ptx, StringComparison.Ordinal);
        Assert.Contains($".entry {TestKernels.Bf16RoundTrip}", result.Ptx, StringComparison.Ordinal);
        Assert.DoesNotContain('\0', result.Ptx);
    }

    [NvrtcFact]
    public void A_compile_error_carries_the_log_and_the_line_of_the_mistake()
    {
        string[] lines =
        [
            "extern \"C\" __global__ void kiln_test_broken(float* out, int n)",
            "{",
            "    int i = blockIdx.x * blockDim.x + threadIdx.x;",
            "    if (i < n) out[i] = undeclared_value * 2.0f;",
            "}",
        ];
        int errorLine = Array.FindIndex(lines, l => l.Contains("undeclared_value", StringComparison.Ordinal)) + 1;

        var error = Assert.Throws<NvrtcCompileException>(
            () => Compiler.Compile(string.Join('\n', lines), "kiln_test_broken.cu", cubinArch: 80));

        Assert.Equal("nvrtcCompileProgram", error.Api);
        Assert.Equal(6, error.Status);
        Assert.Equal("NVRTC_ERROR_COMPILATION", error.StatusName);
        Assert.EndsWith("NvrtcCompiler.cs", error.CallerFile, StringComparison.Ordinal);
        Assert.True(error.CallerLine > 0);
        Assert.Equal("kiln_test_broken.cu", error.ProgramName);
        Assert.Contains("undeclared_value", error.Log, StringComparison.Ordinal);
        var diagnostic = Assert.Single(error.Diagnostics, d => d.Severity == NvrtcSeverity.Error);
        Assert.Equal("kiln_test_broken.cu", diagnostic.File);
        Assert.Equal(errorLine, diagnostic.Line);
        Assert.Contains("undeclared_value", diagnostic.Message, StringComparison.Ordinal);
        // The message is enough on its own: the call, the status and the compiler's words.
        Assert.Contains("nvrtcCompileProgram failed with NVRTC_ERROR_COMPILATION", error.Message, StringComparison.Ordinal);
        Assert.Contains($"kiln_test_broken.cu({errorLine})", error.Message, StringComparison.Ordinal);
    }

    [NvrtcFact]
    public void An_architecture_newer_than_this_NVRTC_names_the_supported_ones_and_the_fix()
    {
        var compiler = Compiler;
        int newest = compiler.SupportedArchitectures[^1];
        int tooNew = newest + 10; // sm_100 for NVRTC 11.8, whose newest is sm_90

        var error = Assert.Throws<NvrtcArchitectureException>(
            () => compiler.Compile(TestKernels.Source, "kiln_test_kernels.cu", cubinArch: tooNew));

        Assert.Equal($"sm_{tooNew}", error.Requested);
        Assert.Contains($"cannot compile for sm_{tooNew}", error.Message, StringComparison.Ordinal);
        foreach (int supported in compiler.SupportedArchitectures)
            Assert.Contains($"sm_{supported}", error.Message, StringComparison.Ordinal);
        Assert.Contains($"compute_{newest}", error.Message, StringComparison.Ordinal);
        Assert.Contains("KILN_CUDA_PATH", error.Message, StringComparison.Ordinal);
        Assert.Equal(newest, compiler.BestArchitectureFor(tooNew));
    }

    [NvrtcFact]
    public void Warnings_from_a_successful_compile_are_parsed()
    {
        string source = string.Join('\n',
            "extern \"C\" __global__ void kiln_test_warns(float* out)",
            "{",
            "    int unused_counter;",
            "    out[threadIdx.x] = 1.0f;",
            "}");

        var result = Compiler.Compile(source, "kiln_test_warns.cu", cubinArch: 80);

        Assert.NotNull(result.Cubin);
        var warning = Assert.Single(result.Diagnostics);
        Assert.Equal(NvrtcSeverity.Warning, warning.Severity);
        Assert.Equal(3, warning.Line);
        Assert.Contains("unused_counter", warning.Message, StringComparison.Ordinal);
    }

    [NvrtcFact]
    public void An_architecture_given_twice_is_rejected_before_compiling()
    {
        var error = Assert.Throws<ArgumentException>(() => Compiler.Compile(
            TestKernels.Source, "kiln_test_kernels.cu", ["--gpu-architecture=sm_80"], cubinArch: 90));
        Assert.Contains("sm_80", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Diagnostics_are_parsed_from_NVRTC_log_lines()
    {
        const string log = """
            gpt(block).cu(12): error: identifier "x" is undefined
                  out[i] = x;
                           ^

            gpt(block).cu(3): warning #177-D: variable "unused" was declared but never referenced
            kernels.cu(40): catastrophic error: cannot open source file "cuda_bf16.h"
            2 errors detected in the compilation of "gpt(block).cu".
            """;

        var diagnostics = NvrtcDiagnostic.Parse(log);

        Assert.Equal(3, diagnostics.Count);
        Assert.Equal(new NvrtcDiagnostic("gpt(block).cu", 12, NvrtcSeverity.Error, null, "identifier \"x\" is undefined"), diagnostics[0]);
        Assert.Equal(new NvrtcDiagnostic("gpt(block).cu", 3, NvrtcSeverity.Warning, "177-D", "variable \"unused\" was declared but never referenced"), diagnostics[1]);
        Assert.Equal(NvrtcSeverity.Error, diagnostics[2].Severity);
        Assert.Equal(40, diagnostics[2].Line);
        Assert.Equal("gpt(block).cu(3): warning #177-D: variable \"unused\" was declared but never referenced", diagnostics[1].ToString());
        Assert.Empty(NvrtcDiagnostic.Parse(string.Empty));
    }

    [Fact]
    public void A_diagnostic_at_the_end_of_the_source_has_no_location()
    {
        var diagnostic = Assert.Single(NvrtcDiagnostic.Parse("At end of source: error: expected a \"}\"\n1 error detected in the compilation of \"m.cu\"."));
        Assert.Equal(new NvrtcDiagnostic(string.Empty, 0, NvrtcSeverity.Error, null, "expected a \"}\""), diagnostic);
    }
}

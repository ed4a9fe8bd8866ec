using Kiln.Build.Tasks.Kernels;
using Kiln.Build.Tasks.Nvrtc;

namespace Kiln.Build.Tasks.Tests;

public class TestBreakKernelTests
{
    private const string Source = "// header\n__device__ float helper(float x) { return x; }\n#line 5 \"/m/Prelude.cs\"\n" +
        "extern \"C\" __global__ void m_k0_fwd(float* out)\n{\n    float a = 1;\n#line 27 \"/m/Model.cs\"\n    float b = a;\n#line 9 \"M.cu\"\n    out[0] = b;\n}\n" +
        "extern \"C\" __global__ void m_k1_fwd(float* out)\n{\n#line 30 \"/m/Model.cs\"\n    out[0] = 2;\n}\n";

    [Fact]
    public void Puts_the_broken_statement_right_after_the_first_CSharp_line_directive_in_the_first_kernel()
    {
        string broken = TestBreakKernel.Break(Source)!;
        Assert.Contains("#line 27 \"/m/Model.cs\"\n" + TestBreakKernel.BrokenStatement + "\n    float b = a;", broken);
        Assert.Equal(Source, broken.Replace(TestBreakKernel.BrokenStatement + "\n", ""));
    }

    [Fact]
    public void A_source_without_kernels_is_left_alone()
    {
        Assert.Null(TestBreakKernel.Break("__device__ float f(float x) { return x; }\n"));
    }

    [NvrtcFact]
    public void NVRTC_reports_the_broken_statement_at_the_CSharp_line()
    {
        var result = NvrtcAvailability.Nvrtc.Compile(TestBreakKernel.Break(Source)!, "M.cu", new[] { "-default-device", "--std=c++17", "--gpu-architecture=sm_80" }, wantsCubin: true);
        Assert.False(result.Ok);
        var d = Assert.Single(NvrtcLog.Parse(result.Log), x => x.IsError);
        Assert.Equal("/m/Model.cs", d.File);
        Assert.Equal(27, d.Line);
        Assert.Contains("kiln_test_break_kernel_undefined", d.Message);
    }
}

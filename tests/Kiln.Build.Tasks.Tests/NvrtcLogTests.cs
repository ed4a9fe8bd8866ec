using System.Linq;
using Kiln.Build.Tasks.Nvrtc;

namespace Kiln.Build.Tasks.Tests;

public class NvrtcLogTests
{
    [Fact]
    public void Located_error_keeps_the_file_line_and_message()
    {
        var d = Assert.Single(NvrtcLog.Parse("/src/app/Model.cs(27): error: identifier \"kiln_x\" is undefined\n\n1 error detected in the compilation of \"Model.cu\".\n"));
        Assert.True(d.IsError);
        Assert.Equal("/src/app/Model.cs", d.File);
        Assert.Equal(27, d.Line);
        Assert.Equal("identifier \"kiln_x\" is undefined", d.Message);
    }

    [Fact]
    public void Numbered_warning_is_a_warning_without_its_number()
    {
        var d = Assert.Single(NvrtcLog.Parse("/src/Model.cs(13): warning #177-D: variable \"rem\" was declared but never referenced\n\nRemark: The warnings can be suppressed with \"-diag-suppress <warning-number>\"\n"));
        Assert.False(d.IsError);
        Assert.Equal(13, d.Line);
        Assert.Equal("variable \"rem\" was declared but never referenced", d.Message);
    }

    [Fact]
    public void Windows_path_with_drive_colon_is_one_file()
    {
        var d = Assert.Single(NvrtcLog.Parse("C:\\Users\\me\\Models\\Net.cs(8): catastrophic error: cannot open source file \"x.h\"\r\n"));
        Assert.True(d.IsError);
        Assert.Equal("C:\\Users\\me\\Models\\Net.cs", d.File);
        Assert.Equal(8, d.Line);
        Assert.Equal("cannot open source file \"x.h\"", d.Message);
    }

    [Fact]
    public void Messages_without_a_location_have_no_file()
    {
        var all = NvrtcLog.Parse("At end of source: error: expected a \"}\"\nnvrtc: error: invalid value for --gpu-architecture (-arch)\nptxas warning : Registers are spilled to local memory in function 'k'\n");
        Assert.Equal(3, all.Count);
        Assert.All(all, d => Assert.Null(d.File));
        Assert.Equal("At end of source: expected a \"}\"", all[0].Message);
        Assert.Equal("invalid value for --gpu-architecture (-arch)", all[1].Message);
        Assert.True(all[0].IsError && all[1].IsError);
        Assert.False(all[2].IsError);
        Assert.StartsWith("ptxas: Registers are spilled", all[2].Message);
    }

    [Fact]
    public void Ptxas_info_summary_and_blank_lines_are_not_diagnostics()
    {
        var log = "ptxas info    : 0 bytes gmem\nptxas info    : Compiling entry function 'k' for 'sm_80'\nptxas info    : Function properties for k\n" +
                  "ptxas         .     400 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\nptxas info    : Used 32 registers, 256 bytes smem, 360 bytes cmem[0]\n\n2 errors detected in the compilation of \"a.cu\".\n";
        Assert.Empty(NvrtcLog.Parse(log));
    }

    [Fact]
    public void Several_lines_keep_their_order()
    {
        var all = NvrtcLog.Parse("a.cs(1): error: one\nb.cs(2): warning: two\nSpirals.cu(300): error: three\n");
        Assert.Equal(new[] { "one", "two", "three" }, all.Select(d => d.Message));
        Assert.Equal(new[] { "a.cs", "b.cs", "Spirals.cu" }, all.Select(d => d.File));
    }
}

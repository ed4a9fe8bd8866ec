using System.Collections.Generic;
using System.Linq;
using Kiln.Build.Tasks.Kernels;
using Kiln.Runtime.Cuda;

namespace Kiln.Build.Tasks.Tests;

public class KernelTargetsTests
{
    [Fact]
    public void Architectures_accept_sm_names_and_numbers_and_drop_duplicates()
    {
        var errors = new List<string>();
        Assert.Equal(new[] { 80, 90, 86 }, KernelTargets.ParseArchitectures(" sm_80; 90 ;SM_86;sm_90;", errors));
        Assert.Empty(errors);
    }

    [Theory]
    [InlineData("sm_7x")]
    [InlineData("compute_90")]
    [InlineData("8.0")]
    [InlineData("sm_90a")]
    public void Malformed_architecture_is_an_error_naming_the_entry_and_the_forms(string entry)
    {
        var errors = new List<string>();
        KernelTargets.ParseArchitectures("sm_80;" + entry, errors);
        var e = Assert.Single(errors);
        Assert.Contains("'" + entry + "'", e);
        Assert.Contains("sm_XX", e);
    }

    [Fact]
    public void Empty_architecture_list_is_an_error()
    {
        var errors = new List<string>();
        Assert.Empty(KernelTargets.ParseArchitectures(" ; ", errors));
        Assert.Contains("empty", Assert.Single(errors));
    }

    [Fact]
    public void Precisions_map_to_the_runtime_defines_in_list_order()
    {
        var errors = new List<string>();
        var p = KernelTargets.ParsePrecisions("f32;bfloat16;fp16;bf16", errors);
        Assert.Empty(errors);
        Assert.Equal(new[] { "f32", "bf16", "f16" }, p.Select(x => x.Name));
        Assert.Equal(new[] { KernelCacheKey.Float32Define, KernelCacheKey.BFloat16Define, KernelCacheKey.Float16Define }, p.Select(x => x.Define));
    }

    [Fact]
    public void Unknown_precision_is_an_error_listing_the_accepted_ones()
    {
        var errors = new List<string>();
        KernelTargets.ParsePrecisions("bf16;int8", errors);
        var e = Assert.Single(errors);
        Assert.Contains("'int8'", e);
        Assert.Contains("bf16, f16 and f32", e);
    }
}

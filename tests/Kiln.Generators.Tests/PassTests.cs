using System;
using System.Linq;
using Kiln.Generators.Ir;
using Kiln.Generators.Passes;
using Kiln.Generators.Tests.Reference;

namespace Kiln.Generators.Tests;

/// <summary>
/// The open graph and explicit passes: analyses live in side tables that survive rewrites (or are dropped when they
/// cannot), passes refuse a graph that lacks what they require, and the verifier checks every attached analysis.
/// </summary>
public class PassTests
{
    private const string Source = """
        using Kiln;
        namespace P;
        [Model] public partial class Net(int d = 3, int h = 5, int c = 2)
        {
            Linear a = new(d, h), b = new(h, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B")] Tensor<int> y) => Ops.CrossEntropy(b.Forward(Ops.Gelu(a.Forward(x))), y);
        }
        """;

    private static Graph Through(params Pass[] passes)
    {
        var g = ModelGraphs.Forward(ModelGraphs.Spec(Source, "P.Net"), GraphKind.Train);
        foreach (var p in new[] { Passes.Passes.ShapeInference, Passes.Passes.Autodiff }.Concat(passes)) g = p.Apply(g);
        return g;
    }

    [Fact]
    public void Precision_marks_survive_a_rewrite_after_mixed_precision()
    {
        var g = Through(Passes.Passes.Simplify, Passes.Passes.MixedPrecision);
        Assert.NotEmpty(g.Low!);
        // A later pass that rewrites the graph (here: the same nodes re-listed) keeps every mark and the fact.
        var rewritten = g.WithNodes(g.Nodes.ToList(), g.Outputs);
        Assert.Equal(g.Low!.OrderBy(i => i), rewritten.Low!.OrderBy(i => i));
        Assert.True(rewritten.Facts.HasFlag(GraphFacts.PrecisionPlanned));
        Verifier.Verify(rewritten, "a rewrite");
    }

    [Fact]
    public void A_rewrite_that_breaks_the_precision_policy_is_caught_by_the_verifier()
    {
        var g = Through(Passes.Passes.Simplify, Passes.Passes.MixedPrecision);
        // A pass after MixedPrecision adds a matmul of fp32 operands: the marks travel with the graph, so the verifier sees it.
        var b = new GraphBuilder(g.Nodes.Max(n => n.Id) + 1);
        foreach (var n in g.Nodes) b.Import(n);
        var weight = g.Nodes.First(n => n.Op == Op.Param && n.Rank == 2);
        var extra = b.MatMul(weight.Id, weight.Id, false, true);
        var broken = g.WithNodes(b.Nodes.ToList(), g.Outputs);
        var e = Assert.Throws<InvalidOperationException>(() => Verifier.Verify(broken, "a late pass"));
        Assert.Contains($"%{extra}", e.Message, StringComparison.Ordinal);
        Assert.Contains("matmul operand is not in low precision", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rewrite_drops_fusion_groups_and_the_memory_plan_and_a_pass_needing_them_says_so()
    {
        var g = Through(Passes.Passes.Simplify, Passes.Passes.MixedPrecision, Passes.Passes.Fusion, Passes.Passes.MemoryPlan);
        Assert.NotNull(g.Groups);
        Assert.NotNull(g.Plan);
        var rewritten = g.WithNodes(g.Nodes.ToList(), g.Outputs);
        Assert.Null(rewritten.Groups);
        Assert.Null(rewritten.Plan);
        Assert.False(rewritten.Facts.HasFlag(GraphFacts.Fused));
        var e = Assert.Throws<InvalidOperationException>(() => Passes.Passes.MemoryPlan.Apply(rewritten));
        Assert.Contains("memory plan", e.Message, StringComparison.Ordinal);
        Assert.Contains("Fused", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pass_out_of_order_names_the_fact_it_is_missing()
    {
        var g = Through(Passes.Passes.Simplify);
        var e = Assert.Throws<InvalidOperationException>(() => Passes.Passes.Fusion.Apply(g));
        Assert.Contains("PrecisionPlanned", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_verifier_rejects_fusion_groups_that_do_not_partition_the_nodes()
    {
        var g = Through(Passes.Passes.Simplify, Passes.Passes.MixedPrecision, Passes.Passes.Fusion);
        var groups = g.Groups!.Where(gr => gr.Root != g.Outputs[0].Node).ToList();
        var e = Assert.Throws<InvalidOperationException>(() => Verifier.Verify(g.With(new FusionPlan(groups)), "a broken fusion"));
        Assert.Contains("in no fusion group", e.Message, StringComparison.Ordinal);
    }
}

using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;
using Kiln.Generators.Passes;
using Kiln.Generators.Tests.Reference;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// Repeated blocks as loop regions: the lowered graph holds one loop whatever the depth, its loss and every gradient
/// (of stacked parameters, layer by layer) equal those of the same model written out block by block, in float64,
/// with activations saved or recomputed; gradients match finite differences; and loops that cannot be regions are
/// unrolled.
/// </summary>
public class LoopTests
{
    private readonly ITestOutputHelper _out;
    public LoopTests(ITestOutputHelper output) => _out = output;

    internal const string Source = """
        using Kiln;
        namespace L;

        [Module]
        public partial class Block(int dim, int hidden)
        {
            LayerNorm norm = new(dim);
            Linear up = new(dim, hidden), down = new(hidden, dim);
            Tensor gain = Parameter.Ones(dim);
            Dropout drop = new(0.25f);
            public Tensor Forward(Tensor x) => x + drop.Forward(down.Forward(Ops.Gelu(up.Forward(norm.Forward(x))))) * gain;
        }

        [Module, Recompute]
        public partial class CheckpointedBlock(int dim, int hidden)
        {
            LayerNorm norm = new(dim);
            Linear up = new(dim, hidden), down = new(hidden, dim);
            public Tensor Forward(Tensor x) => x + down.Forward(Ops.Tanh(up.Forward(norm.Forward(x))));
        }

        [Model]
        public partial class Looped(int features = 2, int dim = 4, int hidden = 6, int classes = 3, int layers = 3)
        {
            Linear embed = new(features, dim);
            Block[] blocks = Module.Repeat(layers, _ => new Block(dim, hidden));
            Linear head = new(dim, classes);
            public Tensor Forward([Shape("B", "features")] Tensor x)
            {
                var h = embed.Forward(x);
                foreach (var b in blocks) h = b.Forward(h);
                return head.Forward(h);
            }
            [Loss] public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> y) => Ops.CrossEntropy(Forward(x), y);
        }

        [Model]
        public partial class Unrolled(int features = 2, int dim = 4, int hidden = 6, int classes = 3)
        {
            Linear embed = new(features, dim);
            Block b0 = new(dim, hidden), b1 = new(dim, hidden), b2 = new(dim, hidden);
            Linear head = new(dim, classes);
            public Tensor Forward([Shape("B", "features")] Tensor x) => head.Forward(b2.Forward(b1.Forward(b0.Forward(embed.Forward(x)))));
            [Loss] public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> y) => Ops.CrossEntropy(Forward(x), y);
        }

        [Model]
        public partial class IndexedFor(int dim = 4, int hidden = 5, int layers = 2)
        {
            CheckpointedBlock[] blocks = Module.Repeat(layers, _ => new CheckpointedBlock(dim, hidden));
            [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor t)
            {
                var h = x;
                for (int i = 0; i < layers; i++) h = blocks[i].Forward(h);
                return Ops.MseLoss(h, t);
            }
        }

        [Model]
        public partial class TwoStreams(int dim = 4, int layers = 3)
        {
            Linear[] mix = Module.Repeat(layers, _ => new Linear(dim, dim));
            Tensor shared = Parameter.Normal(0.5f, dim);
            [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor t)
            {
                var a = x;
                var b = Ops.Tanh(x);
                foreach (var m in mix)
                {
                    var next = Ops.Tanh(m.Forward(a) + b * shared);
                    b = a;
                    a = next;
                }
                return Ops.MseLoss(a + b, t);
            }
        }

        /// <summary>Branches on hyperparameters: both compiled, the choice made at construction.</summary>
        [Model]
        public partial class Branches(int dim = 4, bool gated = true, int depth = 3)
        {
            Linear a = new(dim, dim), b = new(dim, dim);
            Tensor gate = Parameter.Ones(dim);
            [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor t)
            {
                var h = Ops.Tanh(a.Forward(x));
                if (gated && depth > 1) h = h * Ops.Sigmoid(b.Forward(h)) * gate;
                else h = h + b.Forward(h);
                if (!gated) h = Ops.Tanh(h);
                return Ops.MseLoss(h, t);
            }
        }

        [Model]
        public partial class UsesIndex(int dim = 4, int layers = 3)
        {
            Linear[] mix = Module.Repeat(layers, i => new Linear(dim, dim, i % 2 == 0));
            [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor t)
            {
                var h = x;
                foreach (var m in mix) h = Ops.Tanh(m.Forward(h));
                return Ops.MseLoss(h, t);
            }
        }
        """;

    private static Graph Forward(string type, GraphKind kind = GraphKind.Train) => ModelGraphs.Forward(ModelGraphs.Spec(Source, type), kind);

    [Fact]
    public void Repeated_blocks_lower_to_one_loop_with_stacked_parameters()
    {
        var g = Forward("L.Looped");
        var loop = Assert.Single(g.Nodes, n => n.Op == Op.Loop);
        var attr = loop.A<LoopAttr>();
        Assert.Equal(Sym.Var("layers"), attr.Count);
        Assert.Equal(1, attr.Carried);
        // The body is lowered once: one GELU whatever the depth.
        Assert.Single(attr.Body.Nodes, n => n.Op == Op.Gelu);
        var up = g.Parameters.Single(p => p.Name == "blocks.up.weight");
        Assert.Equal("[layers, hidden, dim]", Shapes.Format(up.Shape));
        Assert.Equal("[layers, dim]", Shapes.Format(g.Parameters.Single(p => p.Name == "blocks.gain").Shape));
        Assert.False(g.Parameters.Single(p => p.Name == "blocks.gain").WeightDecay); // per-layer a vector
        Assert.True(up.WeightDecay);
    }

    [Fact]
    public void A_looped_model_computes_the_loss_and_gradients_of_the_same_model_unrolled()
    {
        var looped = ModelGraphs.Train(ModelGraphs.Spec(Source, "L.Looped"));
        var unrolled = ModelGraphs.Train(ModelGraphs.Spec(Source, "L.Unrolled"));
        var rng = new Random(TestSeeds.For("looped vs unrolled"));
        _out.WriteLine(TestSeeds.Describe("looped vs unrolled"));
        var run = new ReferenceRun();
        ModelGraphs.BindDefaultHypers(ModelGraphs.Spec(Source, "L.Unrolled"), run);
        ModelGraphs.RandomInputs(unrolled, run, rng, _ => 5);
        run.Params = ModelGraphs.RandomParams(unrolled, run, rng);
        var masks = new Dictionary<(int, long), double[]>();
        var maskRng = new Random(7);
        double[] Mask(int site, long layer, double p, long[] shape)
        {
            if (!masks.TryGetValue((site, layer), out var m))
                masks[(site, layer)] = m = Enumerable.Range(0, (int)ReferenceInterpreter.Numel(shape)).Select(_ => maskRng.NextDouble() < p ? 0.0 : 1.0 / (1 - p)).ToArray();
            return m;
        }
        // Unrolled block l has its own dropout site (1, 2, 3) and layer 0; the loop has one site (1) and layers 0..2.
        run.Masks = (site, layer, p, shape) => Mask(site - 1, 0, p, shape);
        var expected = ReferenceInterpreter.Run(unrolled, run);

        // The same values, stacked: blocks.X[l] = bl.X.
        var loopRun = run.Clone();
        loopRun.Symbols["layers"] = 3;
        loopRun.Masks = (site, layer, p, shape) => Mask((int)layer, 0, p, shape);
        loopRun.Params = looped.Parameters.Select(p => p.Name.StartsWith("blocks.", StringComparison.Ordinal)
            ? Enumerable.Range(0, 3).SelectMany(l => run.Params[Index(unrolled, $"b{l}.{p.Name.Substring(7)}")]).ToArray()
            : run.Params[Index(unrolled, p.Name)]).ToList();
        var actual = ReferenceInterpreter.Run(looped, loopRun);

        Assert.Equal(expected.Loss!.Value, actual.Loss!.Value, 12);
        for (int p = 0; p < looped.Parameters.Count; p++)
        {
            var name = looped.Parameters[p].Name;
            var want = name.StartsWith("blocks.", StringComparison.Ordinal)
                ? Enumerable.Range(0, 3).SelectMany(l => expected.ParamGrads[Index(unrolled, $"b{l}.{name.Substring(7)}")]!).ToArray()
                : expected.ParamGrads[Index(unrolled, name)]!;
            var got = actual.ParamGrads[p] ?? throw new Xunit.Sdk.XunitException($"no gradient for {name}");
            Assert.Equal(want.Length, got.Length);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(want[i] - got[i]) <= 1e-12 * (1 + Math.Abs(want[i])), $"grad({name})[{i}]: unrolled {want[i]:R}, looped {got[i]:R}");
        }
    }

    private static int Index(Graph g, string name) => g.Parameters.Select((p, i) => (p, i)).Single(x => x.p.Name == name).i;

    // Their gradients against finite differences: the Loop_* cases of GradientCheckTests.

    private static readonly Lazy<System.Reflection.Assembly> Compiled = new(() => GeneratorHarness.Build(Source));

    // The compiled CPU and CUDA (emulated) programs of looped models: C.ResNet, C.LoopedBlocks and C.TwoCarried in
    // CompiledVsReferenceTests and CudaProgramTests.

    [Fact]
    public void One_build_runs_any_depth()
    {
        foreach (int layers in new[] { 1, 2, 5 })
        {
            var hypers = new Dictionary<string, double> { ["features"] = 2, ["dim"] = 4, ["hidden"] = 6, ["classes"] = 3, ["layers"] = layers };
            CompiledCheck.Run(Compiled.Value, Source, "L.Looped", new Random(TestSeeds.For("depth " + layers)), $"L.Looped with {layers} layers", _out, null, null, hypers);
        }
    }

    [Fact]
    public void A_for_loop_over_a_hyperparameter_is_a_region_and_recompute_saves_only_the_carried_value()
    {
        var g = ModelGraphs.Train(ModelGraphs.Spec(Source, "L.IndexedFor"));
        var loops = g.Nodes.Where(n => n.Op == Op.Loop).Select(n => n.A<LoopAttr>()).ToList();
        Assert.Equal(2, loops.Count);
        var forward = loops.Single(l => !l.Reverse);
        Assert.True(forward.Recompute);
        // Saved per iteration: the carried value only (the backward body recomputes the rest).
        Assert.Equal(1, forward.StackedResults);
        var backward = loops.Single(l => l.Reverse);
        Assert.Single(backward.Body.Nodes, n => n.Op == Op.Tanh && backward.Body.Nodes.Any(m => m.Inputs.Contains(n.Id)));
    }

    [Fact]
    public void Without_recompute_the_backward_body_reads_saved_activations()
    {
        var g = ModelGraphs.Train(ModelGraphs.Spec(Source, "L.Looped"));
        var forward = g.Nodes.Where(n => n.Op == Op.Loop).Select(n => n.A<LoopAttr>()).Single(l => !l.Reverse);
        Assert.False(forward.Recompute);
        Assert.True(forward.StackedResults > 1, "the forward loop saves activations besides the carried value");
        var backward = g.Nodes.Where(n => n.Op == Op.Loop).Select(n => n.A<LoopAttr>()).Single(l => l.Reverse);
        Assert.DoesNotContain(backward.Body.Nodes, n => n.Op == Op.Gelu); // read from the saved stack, not recomputed
    }

    [Fact]
    public void An_if_on_hyperparameters_compiles_both_branches_and_each_choice_matches_the_reference()
    {
        var g = Forward("L.Branches");
        Assert.Equal(3, g.Nodes.Count(n => n.Op == Op.Loop)); // then, else, and the second if
        Assert.Single(g.Nodes.Where(n => n.Op == Op.Loop), n => n.A<LoopAttr>().Body.Nodes.Any(b => b.Op == Op.Sigmoid));
        foreach (var (gated, depth) in new[] { (1.0, 3.0), (0.0, 3.0), (1.0, 1.0) })
        {
            var hypers = new Dictionary<string, double> { ["dim"] = 4, ["gated"] = gated, ["depth"] = depth };
            CompiledCheck.Run(Compiled.Value, Source, "L.Branches", new Random(TestSeeds.For($"branches {gated} {depth}")), $"L.Branches(gated: {gated}, depth: {depth})", _out, null, null, hypers);
        }
    }

    [Fact]
    public void Loops_that_cannot_be_regions_are_unrolled()
    {
        // Two carried tensors: still a region.
        Assert.Single(Forward("L.TwoStreams").Nodes, n => n.Op == Op.Loop);
        // A factory that uses its index builds blocks that differ: unrolled, as many blocks as the default count.
        var g = Forward("L.UsesIndex");
        Assert.DoesNotContain(g.Nodes, n => n.Op == Op.Loop);
        Assert.Equal(3, g.Nodes.Count(n => n.Op == Op.Tanh));
        Assert.Contains(g.Parameters, p => p.Name == "mix.2.weight");
    }
}

using System;
using System.Linq;
using System.Reflection;
using Kiln.Runtime;

namespace Kiln.Generators.Tests;

/// <summary>What a generated program does with hyperparameters and inputs it is given at run time.</summary>
public class ProgramBehaviourTests
{
    private const string Heads = """
        using Kiln;
        namespace H;
        [Model]
        public partial class Heads(int dim = 8, int heads = 2, int layers = 2)
        {
            Linear qkv = new(dim, dim);
            Linear[] extra = Module.Repeat(layers, _ => new Linear(dim, dim));
            public Tensor Forward([Shape("B", "T", "dim")] Tensor x)
            {
                var h = qkv.Forward(x);
                var split = Ops.Reshape(h, x.Dim(0), x.Dim(1), heads, dim / heads);
                var merged = Ops.Reshape(Ops.Transpose(split, 1, 2), x.Dim(0), x.Dim(1), dim);
                foreach (var l in extra) merged = l.Forward(merged);
                return merged;
            }
            [Loss] public Tensor Loss([Shape("B", "T", "dim")] Tensor x) => Ops.Mean(Ops.Square(Forward(x)));
        }
        """;

    private static readonly Lazy<Assembly> HeadsAssembly = new(() => GeneratorHarness.Build(Heads));

    private static Exception Unwrap(Exception e) => e is TargetInvocationException { InnerException: { } inner } ? inner : e;

    [Fact]
    public void The_program_lists_its_programs_with_entry_points_and_inputs()
    {
        var program = GeneratorHarness.CreateProgram(HeadsAssembly.Value, "H.Heads");
        Assert.Equal(new[] { "train", "eval", "predict" }, program.Programs.Select(p => p.Name));
        Assert.Equal(new[] { "TrainStep", "EvalLoss", "Forward" }, program.Programs.Select(p => p.EntryPoint));
        Assert.All(program.Programs, p => Assert.Equal("x", Assert.Single(p.Inputs).Name));
        Assert.Same(program.LossInputs, program.Programs[0].Inputs);
    }

    [Fact]
    public void A_dimension_not_divisible_by_heads_is_rejected_at_construction_naming_both_hyperparameters()
    {
        var e = Unwrap(Assert.ThrowsAny<Exception>(() => GeneratorHarness.CreateProgram(HeadsAssembly.Value, "H.Heads", 10, 4)));
        Assert.IsType<ArgumentException>(e);
        Assert.Contains("dim must be divisible by heads", e.Message);
        Assert.Contains("Model0.cs:", e.Message);
        Assert.Contains("dim = 10", e.Message);
    }

    [Fact]
    public void Float_hyperparameters_out_of_their_range_are_rejected_when_the_model_is_constructed()
    {
        // Layers and Parameter declarations validate their arguments as the model's field initializers run, so a
        // bad value passed for a hyperparameter fails at 'new Model(...)', naming the rule.
        const string source = """
            using Kiln;
            namespace N;
            [Model]
            public partial class Ranges(float p = 0.1f, float eps = 1e-5f, float std = 0.02f, int dim = 4)
            {
                Tensor w = Parameter.Normal(std, dim, dim);
                LayerNorm norm = new(dim, eps);
                Dropout drop = new(p);
                [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x) => Ops.Mean(Ops.Square(drop.Forward(norm.Forward(Ops.MatMul(x, w)))));
            }
            """;
        var asm = GeneratorHarness.Build(source);
        Assert.NotNull(GeneratorHarness.CreateProgram(asm, "N.Ranges"));
        Assert.NotNull(GeneratorHarness.CreateProgram(asm, "N.Ranges", 0.0f, 1e-3f, 0.0f));
        foreach (var (args, phrase) in new (object[] Args, string Phrase)[]
        {
            (new object[] { 1.0f }, "probability must be in [0, 1)"),
            (new object[] { -0.5f }, "probability must be in [0, 1)"),
            (new object[] { 0.1f, 0.0f }, "eps must be positive"),
            (new object[] { 0.1f, 1e-5f, -1.0f }, "finite and non-negative"),
            (new object[] { 0.1f, 1e-5f, float.PositiveInfinity }, "finite and non-negative"),
            (new object[] { 0.1f, 1e-5f, 0.02f, 0 }, "must be positive"),
        })
        {
            var e = Unwrap(Assert.ThrowsAny<Exception>(() => GeneratorHarness.CreateProgram(asm, "N.Ranges", args)));
            Assert.IsType<ArgumentOutOfRangeException>(e);
            Assert.Contains(phrase, e.Message);
        }
    }

    [Fact]
    public void Hyperparameters_named_like_generated_parameters_compile_and_run()
    {
        // device, precision, gpu, table, options, batch and ctx are names the generated code uses too.
        const string source = """
            using Kiln;
            namespace N;
            [Model]
            public partial class Names(int device = 3, int precision = 4, int gpu = 2, int table = 5, float options = 0.5f, int batch = 1, int ctx = 2)
            {
                Linear a = new(device, precision), b = new(precision, gpu);
                Embedding e = new(table, device);
                [Loss] public Tensor Loss([Shape("B", "device")] Tensor x, [Shape("B")] Tensor<int> i) =>
                    Ops.Mean(Ops.Square(b.Forward(a.Forward(x + e.Forward(i))))) * options + batch * ctx;
            }
            """;
        var asm = GeneratorHarness.Build(source);
        var program = GeneratorHarness.CreateProgram(asm, "N.Names");
        program.InitParameters(1);
        var loss = program.EvalLoss(new Batch(("x", TensorData.Float(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3)), ("i", TensorData.Int(new[] { 0, 4 }, 2))));
        Assert.True(float.IsFinite(loss) && loss > 2, $"loss {loss}");
        Assert.Equal(3 * 4 + 4 + 4 * 2 + 2 + 5 * 3, program.Params.Length);
    }

    [Fact]
    public void A_repeat_count_other_than_its_default_runs_from_the_same_build()
    {
        // Module.Repeat over same-shaped blocks is a loop region: the count is bound when the model is constructed.
        foreach (int layers in new[] { 1, 3, 7 })
        {
            var program = GeneratorHarness.CreateProgram(HeadsAssembly.Value, "H.Heads", 8, 2, layers);
            Assert.Equal(8 * 8 + 8 + layers * (8 * 8 + 8), program.Params.Length);
            program.InitParameters(3);
            var loss = program.EvalLoss(new Batch(("x", TensorData.Float(Enumerable.Range(0, 2 * 3 * 8).Select(i => (float)Math.Sin(i)).ToArray(), 2, 3, 8))));
            Assert.True(float.IsFinite(loss) && loss > 0, $"layers {layers}: loss {loss}");
        }
    }

    private const string Alternating = """
        using Kiln;
        namespace H;
        [Model]
        public partial class Alternating(int dim = 8, int layers = 2)
        {
            Linear[] blocks = Module.Repeat(layers, i => new Linear(dim, dim, i % 2 == 0));
            [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x)
            {
                foreach (var l in blocks) x = Ops.Tanh(l.Forward(x));
                return Ops.Mean(Ops.Square(x));
            }
        }
        """;

    [Fact]
    public void A_structural_hyperparameter_other_than_its_default_is_rejected_with_the_fix()
    {
        // Blocks that differ by index are unrolled at the default count; another count is refused at construction.
        var asm = GeneratorHarness.Build(Alternating);
        var e = Unwrap(Assert.ThrowsAny<Exception>(() => GeneratorHarness.CreateProgram(asm, "H.Alternating", 8, 3)));
        Assert.IsType<ArgumentException>(e);
        Assert.Contains("layers", e.Message);
        Assert.Contains("compiled as 2", e.Message);
        Assert.Contains("change the default", e.Message);
    }

    [Fact]
    public void Symbolic_dimensions_accept_any_bound_value()
    {
        var program = GeneratorHarness.CreateProgram(HeadsAssembly.Value, "H.Heads", 12, 3);
        program.InitParameters(3);
        var loss = program.EvalLoss(new Batch(("x", TensorData.Float(new float[2 * 5 * 12], 2, 5, 12))));
        Assert.True(float.IsFinite(loss) && loss > 0, $"loss {loss}");
        long small = program.ArenaBytes;
        program.EvalLoss(new Batch(("x", TensorData.Float(new float[4 * 5 * 12], 4, 5, 12))));
        Assert.True(program.ArenaBytes > small, "the arena is a formula of B: a larger batch needs more");
        Assert.Equal(12 * 12 * 3 + 12 * 3, program.Params.Length);
    }

    [Fact]
    public void An_input_with_the_wrong_shape_is_rejected_naming_the_input_and_dimension()
    {
        var program = GeneratorHarness.CreateProgram(HeadsAssembly.Value, "H.Heads");
        var e = Assert.Throws<ArgumentException>(() => program.EvalLoss(new Batch(("x", TensorData.Float(new float[2 * 5 * 7], 2, 5, 7)))));
        Assert.Contains("Input 'x'", e.Message);
        Assert.Contains("dimension 2 ('dim') must be 8", e.Message);
    }

    [Fact]
    public void An_input_of_the_wrong_element_type_or_rank_is_rejected()
    {
        var program = GeneratorHarness.CreateProgram(HeadsAssembly.Value, "H.Heads");
        var e = Assert.Throws<ArgumentException>(() => program.EvalLoss(new Batch(("x", TensorData.Int(new int[16], 2, 8)))));
        Assert.Contains("must be a float tensor of shape [B, T, dim]", e.Message);
    }

    [Fact]
    public void A_missing_input_is_named()
    {
        var program = GeneratorHarness.CreateProgram(HeadsAssembly.Value, "H.Heads");
        var e = Assert.Throws<System.Collections.Generic.KeyNotFoundException>(() => program.EvalLoss(new Batch(("y", TensorData.Float(new float[1], 1)))));
        Assert.Contains("'x'", e.Message);
    }

    [Fact]
    public void A_model_without_Forward_explains_why_Predict_is_unavailable()
    {
        var asm = GeneratorHarness.Build("""
            using Kiln;
            [Model] public partial class LossOnly(int d = 2)
            {
                Linear fc = new(d, 1);
                [Loss] public Tensor Loss([Shape("B", "d")] Tensor x) => Ops.Mean(fc.Forward(x));
            }
            """);
        var program = GeneratorHarness.CreateProgram(asm, "LossOnly");
        var e = Assert.Throws<NotSupportedException>(() => program.Forward(new Batch(("x", TensorData.Float(new float[2], 1, 2)))));
        Assert.Contains("declares no Forward", e.Message);
    }

    [Fact]
    public void Generated_program_exposes_its_IR_and_a_report_with_the_arena_formula()
    {
        var program = GeneratorHarness.CreateProgram(HeadsAssembly.Value, "H.Heads");
        Assert.Contains("graph train(x: f32[B, T, dim])", program.IrText);
        Assert.Contains("output grad(qkv.weight)", program.IrText);
        Assert.Contains("activation arena: f32[", program.Report);
        Assert.Contains("B*T*dim", program.Report);
    }
    [Fact]
    public void A_hyperparameter_that_sizes_no_tensor_may_be_negative()
    {
        var asm = GeneratorHarness.Build("""
            using Kiln;
            [Model] public partial class Tagger(int classes = 3, int ignore = -100)
            {
                Linear fc = new(4, classes);
                [Loss] public Tensor Loss([Shape("B", "4")] Tensor x, [Shape("B")] Tensor<int> y) => Ops.CrossEntropy(fc.Forward(x), y, ignore);
            }
            """);
        var program = GeneratorHarness.CreateProgram(asm, "Tagger");
        program.InitParameters(1);
        float loss = program.EvalLoss(new Batch(("x", TensorData.Float(new float[8], 2, 4)), ("y", TensorData.Int(new[] { 1, -100 }, 2))));
        Assert.True(float.IsFinite(loss));
        var e = Unwrap(Assert.ThrowsAny<Exception>(() => GeneratorHarness.CreateProgram(asm, "Tagger", 0, -100)));
        Assert.Contains("must be positive", e.Message); // the layer's own check fires first, at construction
    }
}

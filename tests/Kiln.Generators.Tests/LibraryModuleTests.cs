using System;
using System.Linq;
using System.Reflection;
using Kiln.Generators.Tests.Reference;
using Kiln;
using Kiln.Runtime;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// The module library (Kiln.Nn, DSL source the generator adds to the compilation): every module's gradients match
/// finite differences in float64, compiled programs built from them match the reference, RoPE and the sinusoidal
/// table equal their formulas, the tied embedding gives padded rows no probability, and a GPT written from the
/// library trains.
/// </summary>
public class LibraryModuleTests
{
    private readonly ITestOutputHelper _out;
    public LibraryModuleTests(ITestOutputHelper output) => _out = output;

    internal const string Source = """
        using Kiln;
        using Kiln.Nn;
        namespace L;

        [Model] public partial class GptModel(int vocab = 64, int context = 6, int dim = 8, int heads = 2, int layers = 2)
        {
            TiedEmbedding tokens = new(vocab, dim);
            LearnedPositions positions = new(context, dim);
            GptBlock[] blocks = Module.Repeat(layers, _ => new GptBlock(dim, heads));
            LayerNorm final = new(dim);

            public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
            {
                var x = tokens.Forward(idx) + positions.Forward(idx.Dim(1));
                foreach (var block in blocks) x = block.Forward(x);
                return tokens.Logits(final.Forward(x));
            }

            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
        }

        [Model] public partial class LlamaModel(int vocab = 64, int dim = 8, int heads = 2, int hidden = 12, int layers = 2)
        {
            TiedEmbedding tokens = new(vocab, dim);
            LlamaBlock[] blocks = Module.Repeat(layers, _ => new LlamaBlock(dim, heads, hidden));
            RmsNorm final = new(dim);

            public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
            {
                var x = tokens.Forward(idx);
                foreach (var block in blocks) x = block.Forward(x);
                return tokens.Logits(final.Forward(x));
            }

            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
        }

        [Model] public partial class CrossAttentionModel(int dim = 8, int heads = 2)
        {
            MultiHeadAttention cross = new(dim, heads);
            [Loss] public Tensor Loss([Shape("B", "T", "dim")] Tensor x, [Shape("B", "S", "dim")] Tensor memory, [Shape("B", "S")] Tensor keep, [Shape("B", "T", "dim")] Tensor w, [Shape("B", "S", "dim")] Tensor v) =>
                Ops.Sum(cross.Masked(x, memory, keep) * w) + Ops.Sum(cross.Forward(memory, x) * v);
        }

        [Model] public partial class Positions(int dim = 6)
        {
            RotaryEmbedding rope = new(dim);
            Linear proj = new(dim, dim);
            public Tensor Forward([Shape("B", "H", "T", "dim")] Tensor x) => rope.Forward(x);
            // The loss has a parameter before the rotation so its gradient flows through RoPE (and past the constant table).
            [Loss] public Tensor Loss([Shape("B", "H", "T", "dim")] Tensor x, [Shape("T", "dim")] Tensor w) => Ops.Sum((rope.Forward(proj.Forward(x)) + Ops.SinusoidalPositions(x.Dim(2), dim)) * w);
        }
        """;

    private static readonly Lazy<Assembly> Assembly = new(() => GeneratorHarness.Build(Source));

    /// <summary>The compiled library test models (L.GptModel, L.LlamaModel, …), for other test classes that need a Kiln.Nn GPT.</summary>
    internal static Assembly Models => Assembly.Value;

    [Theory]
    [InlineData("L.GptModel")]
    [InlineData("L.LlamaModel")]
    [InlineData("L.CrossAttentionModel")]
    [InlineData("L.Positions")]
    public void Library_module_gradients_match_finite_differences(string model)
    {
        var why = $"{model}: {TestSeeds.Describe(model)}";
        _out.WriteLine(why);
        GradientCheckTests.CheckGradients(CompositeModels.Case(Source, model, new Random(TestSeeds.For(model))), why);
    }

    [Theory]
    [InlineData("L.GptModel")]
    [InlineData("L.LlamaModel")]
    public void Compiled_library_models_match_the_reference(string model)
    {
        var why = $"{model}: {TestSeeds.Describe(model + " compiled")}";
        _out.WriteLine(why);
        CompiledCheck.Run(Assembly.Value, Source, model, new Random(TestSeeds.For(model + " compiled")), why, _out, null, null);
    }

    [Fact]
    public void Rotary_and_sinusoidal_positions_equal_their_formulas()
    {
        var program = GeneratorHarness.CreateProgram(Assembly.Value, "L.Positions");
        int b = 1, h = 2, t = 5, d = 6;
        var rng = new Random(3);
        var x = Enumerable.Range(0, b * h * t * d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var y = program.Forward(new Batch(("x", TensorData.Float(x, b, h, t, d)))).Floats!;
        for (int head = 0; head < h; head++)
            for (int p = 0; p < t; p++)
                for (int i = 0; i < d / 2; i++)
                {
                    double angle = p * Math.Pow(10000, -2.0 * i / d);
                    int row = (head * t + p) * d;
                    double x1 = x[row + i], x2 = x[row + i + d / 2];
                    Assert.Equal(x1 * Math.Cos(angle) - x2 * Math.Sin(angle), y[row + i], 5);
                    Assert.Equal(x2 * Math.Cos(angle) + x1 * Math.Sin(angle), y[row + i + d / 2], 5);
                }
        // The loss adds Σ SinusoidalPositions · w (broadcast over the batch and the heads): with a zero projection and
        // w one-hot it reads one table entry b·h times.
        Array.Clear(program.Params);
        program.ParametersChanged();
        var zero = new float[b * h * t * d];
        for (int p = 0; p < t; p++)
            for (int j = 0; j < d; j++)
            {
                var w = new float[t * d];
                w[p * d + j] = 1;
                double rate = Math.Pow(10000, -2.0 * (j / 2) / d);
                double expected = j % 2 == 0 ? Math.Sin(p * rate) : Math.Cos(p * rate);
                Assert.Equal(b * h * expected, program.EvalLoss(new Batch(("x", TensorData.Float(zero, b, h, t, d)), ("w", TensorData.Float(w, t, d)))), 5);
            }
    }

    [Fact]
    public void The_tied_embedding_pads_its_table_and_gives_padding_no_probability()
    {
        var program = GeneratorHarness.CreateProgram(Assembly.Value, "L.GptModel", 11);
        var table = program.Parameters.Single(p => p.Name == "tokens.weight");
        Assert.Equal(new[] { 64, 8 }, table.Shape); // 11 rounded up to 64
        Assert.Equal(0.02f, table.InitScale);
        Assert.Contains(program.Parameters, p => p.Name == "blocks.attention.qkv.weight" && p.Shape.SequenceEqual(new[] { 2, 24, 8 }));
        program.InitParameters(1);
        var logits = program.Forward(new Batch(("idx", TensorData.Int(new[] { 1, 2, 3 }, 1, 3)))).Floats!;
        Assert.Equal(3 * 64, logits.Length);
        for (int r = 0; r < 3; r++)
        {
            Assert.All(logits.AsSpan(r * 64, 11).ToArray(), v => Assert.True(float.IsFinite(v)));
            Assert.All(logits.AsSpan(r * 64 + 11, 53).ToArray(), v => Assert.Equal(float.NegativeInfinity, v));
        }
    }

    [Fact]
    public void A_gpt_and_a_llama_built_from_the_library_train()
    {
        foreach (var (name, args) in new[] { ("L.GptModel", new object[] { 11, 6, 16, 2, 2 }), ("L.LlamaModel", new object[] { 9, 16, 2, 24, 2 }) })
        {
            var type = Assembly.Value.GetType(name, throwOnError: true)!;
            var model = Activator.CreateInstance(type, args)!;
            // Repeating sequences: each next token is (token + 1) mod vocab, learnable from the context.
            int vocab = (int)args[0], n = 256, t = 5;
            var rng = new Random(7);
            var idx = new int[n * t]; var targets = new int[n * t];
            for (int i = 0; i < n; i++)
            {
                int start = rng.Next(vocab);
                for (int j = 0; j < t; j++) { idx[i * t + j] = (start + j) % vocab; targets[i * t + j] = (start + j + 1) % vocab; }
            }
            var data = new InMemoryDataset(("idx", TensorData.Int(idx, n, t)), ("targets", TensorData.Int(targets, n, t)));
            var trainer = (Trainer)type.GetMethod("CreateTrainer")!.Invoke(model, new object[] { new TrainOptions { Steps = 150, BatchSize = 32, LearningRate = 1e-2f, Progress = ProgressMode.None } })!;
            double before = trainer.Evaluate(data);
            trainer.Fit(data);
            double after = trainer.Evaluate(data);
            _out.WriteLine($"{name}: loss {before:F3} → {after:F3}");
            Assert.True(after < 0.2 * before, $"{name}: loss {before} → {after}");
        }
    }
}

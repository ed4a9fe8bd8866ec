using System;
using System.Linq;
using System.Reflection;
using Kiln.Generators.Tests.Reference;
using Kiln;
using Kiln.Runtime;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// Layers a user writes as ordinary <c>[Module]</c> code with parameters declared in C#: RMSNorm, a gated (SwiGLU)
/// MLP and a learned-scale residual. Their gradients match finite differences in float64, the compiled CPU program
/// matches the reference, and the parameter table carries the declared names, shapes, inits and weight decay.
/// </summary>
public class UserModuleTests
{
    private readonly ITestOutputHelper _out;
    public UserModuleTests(ITestOutputHelper output) => _out = output;

    internal const string Source = """
        using Kiln;
        namespace U;

        [Module]
        public partial class RmsNorm(int dim, float eps = 1e-6f)
        {
            Tensor gain = Parameter.Ones(dim);
            public Tensor Forward(Tensor x) => x * Ops.Rsqrt(Ops.Mean(Ops.Square(x), -1, true) + eps) * gain;
        }

        [Module]
        public partial class SwiGlu(int dim, int hidden)
        {
            Linear gate = new(dim, hidden, false), up = new(dim, hidden, false), down = new(hidden, dim, false);
            public Tensor Forward(Tensor x) => down.Forward(Ops.Silu(gate.Forward(x)) * up.Forward(x));
        }

        /// <summary>x + α·f(x) with a learned scalar α (ReZero) and a learned per-channel scale (LayerScale).</summary>
        [Module]
        public partial class ScaledResidual(int dim)
        {
            Tensor alpha = Parameter.Zeros();
            Tensor channel = Parameter.Ones(dim);
            [WeightDecay(false)] Tensor w = Parameter.Normal(0.02f, dim, dim);
            public Tensor Forward(Tensor x) => x + alpha * Ops.Tanh(Ops.MatMul(x, w)) * channel;
        }

        [Model] public partial class RmsNormModel(int d = 3, int c = 5)
        {
            Linear fc = new(d, c);
            RmsNorm norm = new(c, 0.01f);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "c")] Tensor w) => Ops.Sum(norm.Forward(fc.Forward(x)) * w);
        }

        [Model] public partial class SwiGluModel(int d = 3, int hidden = 5)
        {
            SwiGlu mlp = new(d, hidden);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "d")] Tensor w) => Ops.Sum(mlp.Forward(x) * w);
        }

        [Model] public partial class ScaledResidualModel(int d = 4)
        {
            ScaledResidual res = new(d);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "d")] Tensor w) => Ops.Sum(res.Forward(x) * w);
        }

        [Model] public partial class UserBlockClassifier(int features = 2, int dim = 6, int hidden = 8, int classes = 3)
        {
            Linear embed = new(features, dim);
            RmsNorm norm1 = new(dim), norm2 = new(dim);
            SwiGlu mlp = new(dim, hidden);
            ScaledResidual res = new(dim);
            [WeightDecay] Tensor bias = Parameter.Uniform(0.1f, classes);
            Linear head = new(dim, classes, false);

            public Tensor Forward([Shape("B", "features")] Tensor x)
            {
                var h = embed.Forward(x);
                h = h + mlp.Forward(norm1.Forward(h));
                return head.Forward(norm2.Forward(res.Forward(h))) + bias;
            }

            [Loss] public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> label) => Ops.CrossEntropy(Forward(x), label);
        }
        """;

    private static readonly Lazy<Assembly> Assembly = new(() => GeneratorHarness.Build(Source));

    [Theory]
    [InlineData("U.RmsNormModel")]
    [InlineData("U.SwiGluModel")]
    [InlineData("U.ScaledResidualModel")]
    [InlineData("U.UserBlockClassifier")]
    public void User_module_gradients_match_finite_differences(string model)
    {
        var why = $"{model}: {TestSeeds.Describe(model)}";
        _out.WriteLine(why);
        GradientCheckTests.CheckGradients(CompositeModels.Case(Source, model, new Random(TestSeeds.For(model))), why);
    }

    [Fact]
    public void Compiled_program_with_user_modules_matches_the_reference()
    {
        const string model = "U.UserBlockClassifier";
        var why = $"{model}: {TestSeeds.Describe(model + " compiled")}";
        _out.WriteLine(why);
        CompiledCheck.Run(Assembly.Value, Source, model, new Random(TestSeeds.For(model + " compiled")), why, _out, null, null);
        CompiledCheck.Run(Assembly.Value, Source, model, new Random(TestSeeds.For(model + " hypers")), why + " (dim 10)", _out, null, null,
            new System.Collections.Generic.Dictionary<string, double> { ["features"] = 2, ["dim"] = 10, ["hidden"] = 7, ["classes"] = 4 });
    }

    [Fact]
    public void Declared_parameters_keep_their_names_shapes_inits_and_weight_decay()
    {
        var program = GeneratorHarness.CreateProgram(Assembly.Value, "U.UserBlockClassifier");
        var byName = program.Parameters.ToDictionary(p => p.Name);
        Assert.Equal(new[] { 6 }, byName["norm1.gain"].Shape);
        Assert.Equal(InitKind.Ones, byName["norm1.gain"].Init);
        Assert.False(byName["norm1.gain"].WeightDecay); // a vector: no decay by default
        Assert.Empty(byName["res.alpha"].Shape);
        Assert.Equal(1, byName["res.alpha"].Length);
        Assert.Equal(InitKind.Zeros, byName["res.alpha"].Init);
        Assert.Equal(new[] { 6, 6 }, byName["res.w"].Shape);
        Assert.Equal(InitKind.Normal, byName["res.w"].Init);
        Assert.Equal(0.02f, byName["res.w"].InitScale);
        Assert.False(byName["res.w"].WeightDecay); // [WeightDecay(false)] on a matrix
        Assert.True(byName["bias"].WeightDecay);   // [WeightDecay] on a vector
        Assert.Equal(InitKind.Uniform, byName["bias"].Init);
        Assert.Equal(0.1f, byName["bias"].InitScale);
        Assert.True(byName["mlp.gate.weight"].WeightDecay);
        Assert.False(byName.ContainsKey("mlp.gate.bias"));

        program.InitParameters(3);
        var w = program.Params.AsSpan((int)byName["res.w"].Offset, (int)byName["res.w"].Length).ToArray();
        var std = Math.Sqrt(w.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.01, 0.03); // 36 draws of N(0, 0.02²)
        Assert.All(program.Params.AsSpan((int)byName["norm1.gain"].Offset, 6).ToArray(), v => Assert.Equal(1f, v));
    }

    [Fact]
    public void A_user_module_model_trains_and_its_loss_falls()
    {
        var type = Assembly.Value.GetType("U.UserBlockClassifier", throwOnError: true)!;
        var model = Activator.CreateInstance(type, 2, 16, 32, 3)!;
        var rng = new Random(5);
        int n = 256;
        var x = new float[n * 2]; var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            x[2 * i] = (float)(rng.NextDouble() * 2 - 1); x[2 * i + 1] = (float)(rng.NextDouble() * 2 - 1);
            y[i] = x[2 * i] > 0 ? (x[2 * i + 1] > 0 ? 0 : 1) : 2;
        }
        var data = new InMemoryDataset(("x", TensorData.Float(x, n, 2)), ("label", TensorData.Int(y, n)));
        var trainer = (Trainer)type.GetMethod("CreateTrainer")!.Invoke(model, new object[] { new TrainOptions { Steps = 300, BatchSize = 64, LearningRate = 1e-2f, Progress = ProgressMode.None } })!;
        double before = trainer.Evaluate(data);
        trainer.Fit(data);
        double after = trainer.Evaluate(data);
        Assert.True(after < 0.5 * before, $"loss {before} → {after}");
    }
}

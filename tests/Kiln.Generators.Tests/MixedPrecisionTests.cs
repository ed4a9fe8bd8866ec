using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Kiln.Generators.Ir;
using Kiln.Generators.Passes;
using Kiln.Generators.Tests.Reference;
using Kiln.Runtime;
using Kiln.Runtime.Precision;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// The precision policy on the IR, and the CPU's emulation of it: bf16/fp16 stores round exactly where the
/// policy says, fp32 parameter gradients, the loss-scale seed, and fp16/bf16 training through the trainer.
/// </summary>
public class MixedPrecisionTests
{
    private readonly ITestOutputHelper _out;
    public MixedPrecisionTests(ITestOutputHelper output) => _out = output;

    private static readonly Lazy<Assembly> Golden = new(() => GeneratorHarness.Build(GoldenTests.Mlp, GoldenTests.Residual.Replace("namespace Golden;", "namespace Golden2;")));

    public static IEnumerable<object[]> Models => new[] { "Golden.Mlp", "Golden.SpiralClassifier", "Golden.TinySequenceModel" }.Concat(HandWritten.Types).Select(m => new object[] { m });

    private static CompiledModel Compile(string model)
    {
        var spec = model switch
        {
            "Golden.Mlp" => GeneratorHarness.Spec(GoldenTests.Mlp),
            "Golden.SpiralClassifier" => GeneratorHarness.Spec(GoldenTests.Residual),
            "Golden.TinySequenceModel" => GeneratorHarness.Spec(GoldenTests.Sequence),
            _ => ModelGraphs.Spec(HandWritten.Source, model),
        };
        var (compiled, diagnostics) = Pipeline.Compile(spec, false);
        Assert.True(compiled is not null, string.Join("; ", diagnostics.Select(d => d.Id)));
        return compiled!;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Policy_puts_matmuls_in_low_precision_and_keeps_reductions_gradients_and_the_loss_in_fp32(string model)
    {
        var cm = Compile(model);
        foreach (var g in new[] { cm.Train, cm.Eval, cm.Predict }.Where(x => x is not null).Select(x => x!))
        {
            Assert.NotNull(g.Low);
            foreach (var n in g.Nodes)
            {
                if (n.Op == Op.MatMul) Assert.All(n.Inputs, i => Assert.True(g.IsLow(i), $"{model}: matmul %{n.Id} operand %{i} is not low"));
                if (n.Op is Op.ReduceSum or Op.ReduceMax or Op.SumTo or Op.Exp or Op.Log or Op.Rsqrt or Op.Sqrt or Op.PickLast or Op.Gather or Op.GatherGrad)
                    Assert.False(g.IsLow(n.Id), $"{model}: %{n.Id} {n.Op} should be fp32");
                if (n.Op == Op.Cast && g[n.Inputs[0]].Op == Op.Param)
                    Assert.Equal(BufferKind.LowParams, g.Plan!.Placements[n.Id].Buffer);
            }
            foreach (var o in g.Outputs)
            {
                if (o.Role == OutputRole.ParamGrad) Assert.False(g.IsLow(o.Node));
                if (o.Role == OutputRole.Loss) Assert.False(g.IsLow(o.Node));
            }
            // Every low tensor that is stored lives in the low arena (or is the parameter shadow).
            foreach (var (id, pl) in g.Plan!.Placements)
                if (g.IsLow(id) && pl.Buffer is not (BufferKind.Fused or BufferKind.Input))
                    Assert.True(pl.Buffer is BufferKind.LowArena or BufferKind.LowParams, $"{model}: low %{id} placed in {pl.Buffer}");
        }
    }

    [Fact]
    public void Bf16_and_fp16_programs_store_only_representable_values_where_the_policy_says()
    {
        // The Mlp's Forward ends in Linear (matmul + bias), which the policy stores low.
        var rng = new Random(TestSeeds.For("bf16 forward"));
        var x = Enumerable.Range(0, 16 * 3).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var batch = new Batch(("x", TensorData.Float(x, 16, 3)));
        var outputs = new Dictionary<PrecisionMode, float[]>();
        foreach (var p in new[] { PrecisionMode.Float32, PrecisionMode.BFloat16, PrecisionMode.Float16 })
        {
            var program = GeneratorHarness.CreateProgram(Golden.Value, "Golden.Mlp", "cpu", p);
            Assert.Equal(p, program.Precision);
            program.InitParameters(5);
            outputs[p] = program.Forward(batch).Floats!;
        }
        Assert.All(outputs[PrecisionMode.BFloat16], v => Assert.Equal(Bf16.Round(v), v));
        Assert.All(outputs[PrecisionMode.Float16], v => Assert.Equal(Fp16.Round(v), v));
        Assert.Contains(outputs[PrecisionMode.Float32], v => Bf16.Round(v) != v); // fp32 really is fp32
        // Rounding error stays at the type's scale: 8 bits of mantissa (bf16), 11 (fp16), compounded over two layers.
        for (int i = 0; i < x.Length / 3; i++)
        {
            float f = outputs[PrecisionMode.Float32][i];
            Assert.True(Math.Abs(outputs[PrecisionMode.BFloat16][i] - f) <= 0.05 * (1 + Math.Abs(f)), $"bf16 {outputs[PrecisionMode.BFloat16][i]} vs fp32 {f}");
            Assert.True(Math.Abs(outputs[PrecisionMode.Float16][i] - f) <= 0.01 * (1 + Math.Abs(f)), $"fp16 {outputs[PrecisionMode.Float16][i]} vs fp32 {f}");
        }
    }

    [Fact]
    public void Loss_scale_seeds_the_backward_pass_so_gradients_scale_exactly()
    {
        var program = GeneratorHarness.CreateProgram(Golden.Value, "Golden2.SpiralClassifier", "cpu", PrecisionMode.Float32);
        program.InitParameters(3);
        var rng = new Random(TestSeeds.For("loss scale"));
        var x = Enumerable.Range(0, 8 * 2).Select(_ => (float)rng.NextDouble()).ToArray();
        var batch = new Batch(("x", TensorData.Float(x, 8, 2)), ("label", TensorData.Int(Enumerable.Range(0, 8).Select(i => i % 2).ToArray(), 8)));
        program.ZeroGrads();
        float l1 = program.TrainStep(batch, new StepContext(1, 0, 0, 1f));
        var g1 = (float[])program.Grads.Clone();
        program.ZeroGrads();
        float l2 = program.TrainStep(batch, new StepContext(1, 0, 0, 1024f));
        Assert.Equal(l1, l2); // the loss itself is unscaled
        // Scaling by a power of two commutes with every rounding of the backward pass (no overflow here).
        for (int i = 0; i < g1.Length; i++) Assert.Equal(g1[i] * 1024f, program.Grads[i]);
        Assert.Contains(g1, v => v != 0);
    }

    private static (Trainer Trainer, TrainResult Result, double Accuracy, Dataset Held) TrainSpirals(PrecisionMode precision, bool stochastic = false, int steps = 400, float initialLossScale = 65536f)
    {
        var asm = SpiralsAssembly.Value;
        var data = asm.GetType("Spirals.SpiralData", throwOnError: true)!;
        var (x, y) = ((float[], int[]))data.GetMethod("Generate")!.Invoke(null, new object[] { 2000, 2.0, 0.08, 7 })!;
        var all = new InMemoryDataset(("x", TensorData.Float(x, 2000, 2)), ("label", TensorData.Int(y, 2000)));
        var (train, heldOut) = all.Split(0.2, 11);
        var program = GeneratorHarness.CreateProgram(asm, "Spirals.SpiralClassifier", "cpu", precision);
        var trainer = new Trainer(program, new TrainOptions
        {
            Steps = steps, BatchSize = 64, LearningRate = 3e-3f, WarmupSteps = 50, Progress = ProgressMode.None, Device = "cpu",
            Precision = precision, StochasticRounding = stochastic, InitialLossScale = initialLossScale,
        });
        var result = trainer.Fit(train, heldOut);
        double accuracy = (double)data.GetMethod("Accuracy")!.Invoke(null, new object[] { trainer, heldOut })!;
        return (trainer, result, accuracy, heldOut);
    }

    private static readonly Lazy<Assembly> SpiralsAssembly = new(() =>
        GeneratorHarness.Build(RepoFiles.Read("examples/Spirals/SpiralClassifier.cs"), RepoFiles.Read("examples/Spirals/SpiralData.cs")));

    [Fact]
    public void Emulated_bf16_and_fp16_training_reach_the_fp32_accuracy_and_fp16_uses_the_loss_scaler()
    {
        var f32 = TrainSpirals(PrecisionMode.Float32);
        var bf16 = TrainSpirals(PrecisionMode.BFloat16);
        var fp16 = TrainSpirals(PrecisionMode.Float16);
        _out.WriteLine($"held-out accuracy fp32 {f32.Accuracy:P2} bf16 {bf16.Accuracy:P2} fp16 {fp16.Accuracy:P2}; " +
                       $"final loss {f32.Result.FinalTrainLoss:F4} / {bf16.Result.FinalTrainLoss:F4} / {fp16.Result.FinalTrainLoss:F4}; fp16 scale {fp16.Trainer.LossScaler!.Scale}");
        Assert.Null(f32.Trainer.LossScaler);
        Assert.Null(bf16.Trainer.LossScaler);
        Assert.NotNull(fp16.Trainer.LossScaler);
        // 400 steps reach ~97% in fp32; reduced precision must not cost more than a couple of points.
        Assert.True(f32.Accuracy > 0.9, $"fp32 {f32.Accuracy:P2}");
        Assert.True(bf16.Accuracy > f32.Accuracy - 0.03, $"bf16 {bf16.Accuracy:P2} vs fp32 {f32.Accuracy:P2}");
        Assert.True(fp16.Accuracy > f32.Accuracy - 0.03, $"fp16 {fp16.Accuracy:P2} vs fp32 {f32.Accuracy:P2}");
        // The stated loss tolerance: held-out cross-entropy within 0.02 + 10% of fp32's (in the runs of 2026-12-04:
        // fp32 0.0374, bf16 0.0240, fp16 0.0272 after 400 steps).
        double lf = f32.Trainer.Evaluate(f32.Held), lb = bf16.Trainer.Evaluate(bf16.Held), lh = fp16.Trainer.Evaluate(fp16.Held);
        _out.WriteLine($"held-out loss fp32 {lf:F4} bf16 {lb:F4} fp16 {lh:F4}");
        Assert.True(Math.Abs(lb - lf) <= 0.02 + 0.1 * lf, $"bf16 held-out loss {lb:F4} vs fp32 {lf:F4}");
        Assert.True(Math.Abs(lh - lf) <= 0.02 + 0.1 * lf, $"fp16 held-out loss {lh:F4} vs fp32 {lf:F4}");
        // bf16 really changed the numbers (the emulation is not a no-op).
        Assert.NotEqual(f32.Result.FinalTrainLoss, bf16.Result.FinalTrainLoss);
    }

    [Fact]
    public void Fp16_overflow_skips_steps_and_halves_the_loss_scale_until_gradients_fit()
    {
        // 2^40 times the loss gradient overflows fp16 (max 65504) in the low-precision backward tensors.
        var run = TrainSpirals(PrecisionMode.Float16, steps: 200, initialLossScale: MathF.Pow(2, 40));
        var scaler = run.Trainer.LossScaler!;
        _out.WriteLine($"skipped {run.Result.SkippedSteps}, scaler skips {scaler.SkippedSteps}, final scale 2^{Math.Log2(scaler.Scale)}, accuracy {run.Accuracy:P2}");
        Assert.True(scaler.SkippedSteps >= 10, $"only {scaler.SkippedSteps} overflow skips from 2^40");
        Assert.Equal(scaler.SkippedSteps, run.Result.SkippedSteps);
        // Every skip halved the scale and nothing grew it (growth needs 2000 clean steps).
        Assert.Equal(MathF.Pow(2, 40 - scaler.SkippedSteps), scaler.Scale);
        Assert.True(run.Accuracy > 0.8, $"training continued after the back-off: {run.Accuracy:P2}");
    }

    [Fact]
    public void Stochastic_rounding_of_the_parameter_copy_is_deterministic_and_within_one_ulp()
    {
        var a = TrainSpirals(PrecisionMode.BFloat16, stochastic: true, steps: 30);
        var b = TrainSpirals(PrecisionMode.BFloat16, stochastic: true, steps: 30);
        Assert.Equal(a.Trainer.Program.Params, b.Trainer.Program.Params);
        var low = LowParamsOf(a.Trainer.Program);
        var master = a.Trainer.Program.Params;
        int differFromNearest = 0;
        for (int i = 0; i < master.Length; i++)
        {
            float nearest = Bf16.Round(master[i]);
            Assert.Equal(Bf16.Round(low[i]), low[i]);
            Assert.True(Math.Abs(low[i] - master[i]) <= Math.Abs(master[i]) * Bf16.Epsilon + 1e-30f, $"element {i}: {low[i]} vs {master[i]}");
            if (low[i] != nearest) differFromNearest++;
        }
        Assert.True(differFromNearest > 0, "stochastic rounding never left round-to-nearest");
    }

    private static float[] LowParamsOf(ModelProgram p) =>
        (float[])typeof(ModelProgram).GetProperty("LowParams", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(p)!;
}

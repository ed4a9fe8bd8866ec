using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Kiln.Cuda.Emulator;
using Kiln.Generators.Ir;
using Kiln.Generators.Tests.Reference;
using Kiln.Runtime;
using Kiln.Runtime.Cuda;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// The generated CUDA programs — every emitted kernel, the runtime's kernels, the host launch sequence, the
/// arena layout and the GEMM mapping onto cuBLASLt's column-major contract — run on the host CUDA emulator and
/// are compared with the CPU program of the same precision on the same parameters and inputs. In fp32 the two
/// differ only by summation order and libm (tolerance 1e-4 + 1e-3·scale, as against the float64 reference);
/// in bf16 a value near a rounding boundary may round to the neighbouring bf16 on one side, so the tolerance
/// is a few bf16 ulps (2⁻⁸) of the tensor's scale. The same checks run on a real GPU (<see cref="GpuCudaProgramTests"/>)
/// where one is present, with cuBLASLt and the driver in place of the emulator.
/// </summary>
public abstract class CudaProgramChecks : IDisposable
{
    private readonly ITestOutputHelper _out;
    private readonly IGpu? _gpu;

    protected CudaProgramChecks(ITestOutputHelper output, Func<IGpu?> open)
    {
        _out = output;
        _gpu = open();
    }

    public void Dispose()
    {
        _gpu?.Dispose();
        GC.SuppressFinalize(this);
    }

    private static readonly Lazy<Assembly> Models = new(() => GeneratorHarness.Build(HandWritten.Source));

    public static IEnumerable<object[]> Cases =>
        HandWritten.Types.SelectMany(t => new[] { new object[] { t, PrecisionMode.Float32 }, new object[] { t, PrecisionMode.BFloat16 } });

    private static (double Abs, double Rel) Tolerance(PrecisionMode p) => p == PrecisionMode.Float32 ? (1e-4, 1e-3) : (2e-3, 4e-2);

    protected void ProgramMatchesCpu(string model, PrecisionMode precision)
    {
        var why = $"{model} {precision}: {TestSeeds.Describe(model + " cuda")}";
        _out.WriteLine(why);
        var rng = new Random(TestSeeds.For(model + " cuda"));
        var spec = ModelGraphs.Spec(HandWritten.Source, model);
        var train = ModelGraphs.Train(spec);
        var root = spec.Modules.First(m => m.FullName == spec.RootModule);
        var predict = root.Methods.Any(m => m.Name == "Forward") ? ModelGraphs.Forward(spec, GraphKind.Predict) : null;
        var cpu = GeneratorHarness.CreateProgram(Models.Value, model, "cpu", precision);
        using var gpuProgram = (CudaModelProgram)GeneratorHarness.CreateProgram(Models.Value, model, _gpu!, precision);
        Assert.Equal(precision, gpuProgram.Precision);
        var (abs, rel) = Tolerance(precision);

        // The default sizes give odd element counts (the scalar loops); B=8, T=4 gives counts divisible by 8 and
        // 16-byte aligned slots, so the elementwise kernels take their vector path.
        foreach (var (b, t, step) in CompiledCheck.DefaultSizes.Append((8L, 4L, 3L)))
        {
            var what = $"{why} [B={b}, T={t}]";
            var (_, batch) = CompiledCheck.Prepare(spec, train, predict, cpu, rng, b, t, HandWritten.Inputs(model));
            Array.Copy(cpu.Params, gpuProgram.Params, cpu.Params.Length);
            cpu.ParametersChanged();
            gpuProgram.ParametersChanged();
            var ctx = new StepContext((ulong)rng.Next(1, int.MaxValue), step, rng.Next(3));

            cpu.ZeroGrads(); gpuProgram.ZeroGrads();
            float lc = cpu.TrainStep(batch, ctx), lg = gpuProgram.TrainStep(batch, ctx);
            _out.WriteLine($"{what}: loss cpu {lc:R} gpu {lg:R}");
            CompiledCheck.AssertClose($"{what}: loss", new double[] { lg }, new double[] { lc }, abs, rel);
            gpuProgram.SyncGradientsToHost();
            AssertSlabs($"{what}: gradients", cpu, gpuProgram.Grads, cpu.Grads, abs, rel);

            CompiledCheck.AssertClose($"{what}: EvalLoss", new double[] { gpuProgram.EvalLoss(batch) }, new double[] { cpu.EvalLoss(batch) }, abs, rel);
            if (predict is not null)
            {
                var pc = cpu.Forward(batch); var pg = gpuProgram.Forward(batch);
                Assert.Equal(pc.Shape, pg.Shape);
                if (pc.Ints is not null) Assert.Equal(pc.Ints, pg.Ints!);
                else CompiledCheck.AssertClose($"{what}: Forward", pg.Floats!.Select(v => (double)v).ToArray(), pc.Floats!.Select(v => (double)v).ToArray(), abs, rel);
            }

            // Accumulation: a second step without zeroing adds the same gradient again on both sides.
            cpu.TrainStep(batch, ctx); gpuProgram.TrainStep(batch, ctx);
            gpuProgram.SyncGradientsToHost();
            AssertSlabs($"{what}: accumulated gradients", cpu, gpuProgram.Grads, cpu.Grads, abs, rel);
        }
    }

    /// <summary>Compares two gradient (or parameter) slabs tensor by tensor, each at its own scale.</summary>
    private static void AssertSlabs(string what, ModelProgram program, float[] actual, float[] expected, double abs, double rel)
    {
        foreach (var p in program.Parameters)
            CompiledCheck.AssertClose($"{what} {p.Name}",
                actual.AsSpan((int)p.Offset, (int)p.Length).ToArray().Select(v => (double)v).ToArray(),
                expected.AsSpan((int)p.Offset, (int)p.Length).ToArray().Select(v => (double)v).ToArray(), abs, rel);
    }

    protected void ComparisonDetectsAWrongResult()
    {
        // The harness must be able to fail: one perturbed gradient element is reported.
        const string model = "C.Mlp";
        var cpu = GeneratorHarness.CreateProgram(Models.Value, model, "cpu", PrecisionMode.Float32);
        using var g = (CudaModelProgram)GeneratorHarness.CreateProgram(Models.Value, model, _gpu!, PrecisionMode.Float32);
        var spec = ModelGraphs.Spec(HandWritten.Source, model);
        var (_, batch) = CompiledCheck.Prepare(spec, ModelGraphs.Train(spec), null, cpu, new Random(TestSeeds.For("cuda wrong")), 3, 4, null);
        Array.Copy(cpu.Params, g.Params, cpu.Params.Length);
        cpu.ParametersChanged(); g.ParametersChanged();
        cpu.ZeroGrads(); g.ZeroGrads();
        cpu.TrainStep(batch, new StepContext(1, 0, 0)); g.TrainStep(batch, new StepContext(1, 0, 0));
        g.SyncGradientsToHost();
        AssertSlabs("unperturbed", cpu, g.Grads, cpu.Grads, 1e-4, 1e-3);
        g.Grads[1] += 0.01f * (1 + Math.Abs(g.Grads[1]));
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => AssertSlabs("perturbed", cpu, g.Grads, cpu.Grads, 1e-4, 1e-3));
    }

    private static readonly Lazy<Assembly> Spirals = new(() => GeneratorHarness.Build(
        RepoFiles.Read("examples/Spirals/SpiralClassifier.cs"), RepoFiles.Read("examples/Spirals/SpiralData.cs")));

    public static IEnumerable<object[]> TrainingCases => new[]
    {
        new object[] { PrecisionMode.Float32, OptimizerKind.AdamW, false },
        new object[] { PrecisionMode.BFloat16, OptimizerKind.AdamW, false },
        new object[] { PrecisionMode.BFloat16, OptimizerKind.AdamW, true },
        new object[] { PrecisionMode.Float16, OptimizerKind.Sgd, false },
    };

    protected void TrainingFollowsCpu(PrecisionMode precision, OptimizerKind optimizer, bool stochastic)
    {
        // A small spirals model through the whole trainer: device optimizer (fused with the low-precision copy and
        // stochastic rounding), device gradient norm and clipping, fp16 loss scaling, evaluation.
        var asm = Spirals.Value;
        var data = asm.GetType("Spirals.SpiralData", throwOnError: true)!;
        var (x, y) = ((float[], int[]))data.GetMethod("Generate")!.Invoke(null, new object[] { 600, 2.0, 0.08, 7 })!;
        var all = new InMemoryDataset(("x", TensorData.Float(x, 600, 2)), ("label", TensorData.Int(y, 600)));
        var (trainSet, heldOut) = all.Split(0.2, 11);
        var options = new TrainOptions
        {
            Steps = 40, BatchSize = 32, LearningRate = optimizer == OptimizerKind.Sgd ? 0.05f : 5e-3f, WarmupSteps = 5, Progress = ProgressMode.None,
            Optimizer = optimizer, Precision = precision, StochasticRounding = stochastic, EvalEvery = 20, Seed = 42,
        };
        var type = asm.GetType("Spirals.SpiralClassifier", throwOnError: true)!;
        var model = Activator.CreateInstance(type, 2, 16, 32, 2, 3)!;
        var cpu = (ModelProgram)type.GetMethod("CreateProgram", new[] { typeof(string), typeof(PrecisionMode) })!.Invoke(model, new object[] { "cpu", precision })!;
        using var gpu = (CudaModelProgram)type.GetMethod("CreateProgram", new[] { typeof(IGpu), typeof(PrecisionMode) })!.Invoke(model, new object[] { _gpu!, precision })!;
        var lossesCpu = new List<double>(); var lossesGpu = new List<double>();
        var tc = new Trainer(cpu, options); var tg = new Trainer(gpu, options);
        double before = tg.Evaluate(heldOut);
        var rc = tc.Fit(trainSet, heldOut); var rg = tg.Fit(trainSet, heldOut);
        gpu.SyncParametersToHost();
        _out.WriteLine($"{precision} {optimizer} sr={stochastic}: final loss cpu {rc.FinalTrainLoss:F5} gpu {rg.FinalTrainLoss:F5}; eval cpu {rc.BestEvalLoss:F5} gpu {rg.BestEvalLoss:F5}");
        var (abs, rel) = precision == PrecisionMode.Float32 ? (2e-4, 2e-3) : (2e-2, 0.1);
        CompiledCheck.AssertClose("final train loss", new[] { rg.FinalTrainLoss }, new[] { rc.FinalTrainLoss }, abs, rel);
        CompiledCheck.AssertClose("eval losses", rg.EvalHistory.Select(e => e.Loss).ToArray(), rc.EvalHistory.Select(e => e.Loss).ToArray(), abs, rel);
        if (precision == PrecisionMode.Float32)
            AssertSlabs("parameters after 40 steps", cpu, gpu.Params, cpu.Params, 1e-4, 1e-3);
        Assert.Equal(rc.SkippedSteps, rg.SkippedSteps);
        Assert.True(rg.BestEvalLoss < before - 0.03, $"the GPU program did not learn: held-out loss {before:F4} before, {rg.BestEvalLoss:F4} after");
    }

    protected void OptimizerStateIsReadableAndResumes()
    {
        // AdamW's moments live on the device; Optimizer.State downloads them, LoadState uploads them before the next update.
        var asm = Spirals.Value;
        var type = asm.GetType("Spirals.SpiralClassifier", throwOnError: true)!;
        var model = Activator.CreateInstance(type, 2, 8, 16, 2, 2)!;
        ModelProgram Create(string device) => device == "cpu"
            ? (ModelProgram)type.GetMethod("CreateProgram", new[] { typeof(string), typeof(PrecisionMode) })!.Invoke(model, new object[] { "cpu", PrecisionMode.Float32 })!
            : (ModelProgram)type.GetMethod("CreateProgram", new[] { typeof(IGpu), typeof(PrecisionMode) })!.Invoke(model, new object[] { _gpu!, PrecisionMode.Float32 })!;
        var rng = new Random(TestSeeds.For("optimizer state"));
        var batches = Enumerable.Range(0, 8).Select(_ =>
        {
            var x = Enumerable.Range(0, 16 * 2).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var y = Enumerable.Range(0, 16).Select(_ => rng.Next(2)).ToArray();
            return new Batch(("x", TensorData.Float(x, 16, 2)), ("label", TensorData.Int(y, 16)));
        }).ToList();
        void Steps(ModelProgram p, Optimizer o, int from, int to)
        {
            for (int i = from; i < to; i++)
            {
                p.ZeroGrads();
                p.TrainStep(batches[i], new StepContext(5, i, 0));
                o.Step(p, 1e-2f);
            }
        }
        var cpu = Create("cpu");
        using var gpu = (CudaModelProgram)Create("gpu");
        cpu.InitParameters(1);
        Array.Copy(cpu.Params, gpu.Params, cpu.Params.Length);
        gpu.ParametersChanged();
        var oc = new AdamW(); var og = new AdamW();
        Steps(cpu, oc, 0, 4); Steps(gpu, og, 0, 4);
        Assert.Equal(new[] { "m", "v" }, og.State.Keys.OrderBy(k => k));
        foreach (var name in new[] { "m", "v" })
            CompiledCheck.AssertClose($"optimizer state {name} after 4 device steps", og.State[name].Select(v => (double)v).ToArray(), oc.State[name].Select(v => (double)v).ToArray(), 1e-7, 1e-3);
        Assert.Contains(og.State["v"], v => v > 0);

        // A fresh device program and optimizer resumed from the host copy continue exactly as the original does.
        gpu.SyncParametersToHost();
        var atStep4 = (float[])gpu.Params.Clone();
        using var resumed = (CudaModelProgram)Create("gpu");
        Array.Copy(gpu.Params, resumed.Params, gpu.Params.Length);
        resumed.ParametersChanged();
        var or = new AdamW();
        or.LoadState(og.StepCount, og.State);
        Steps(gpu, og, 4, 8); Steps(resumed, or, 4, 8);
        gpu.SyncParametersToHost(); resumed.SyncParametersToHost();
        Assert.Equal(gpu.Params, resumed.Params);
        Assert.Equal(og.State["m"], or.State["m"]);
        // Without the state the same continuation ends elsewhere (so the comparison above can fail).
        using var cold = (CudaModelProgram)Create("gpu");
        Array.Copy(atStep4, cold.Params, atStep4.Length);
        cold.ParametersChanged();
        Steps(cold, new AdamW(), 4, 8);
        cold.SyncParametersToHost();
        Assert.NotEqual(gpu.Params, cold.Params);
    }

    protected void DropoutMasksMatchCpu()
    {
        // C.SeqPool uses Dropout: with fp32 and identical inputs, a mask differing in one element would change the loss.
        const string model = "C.SeqPool";
        var spec = ModelGraphs.Spec(HandWritten.Source, model);
        var cpu = GeneratorHarness.CreateProgram(Models.Value, model, "cpu", PrecisionMode.Float32);
        using var g = (CudaModelProgram)GeneratorHarness.CreateProgram(Models.Value, model, _gpu!, PrecisionMode.Float32);
        var rng = new Random(TestSeeds.For("cuda dropout"));
        var (_, batch) = CompiledCheck.Prepare(spec, ModelGraphs.Train(spec), null, cpu, rng, 6, 5, HandWritten.Inputs(model));
        Array.Copy(cpu.Params, g.Params, cpu.Params.Length);
        cpu.ParametersChanged(); g.ParametersChanged();
        var losses = new HashSet<float>();
        for (int step = 0; step < 4; step++)
        {
            var ctx = new StepContext(99, step, 0);
            float lc = cpu.TrainStep(batch, ctx), lg = g.TrainStep(batch, ctx);
            CompiledCheck.AssertClose($"step {step}", new double[] { lg }, new double[] { lc }, 1e-5, 1e-5);
            losses.Add(lc);
        }
        Assert.True(losses.Count > 1, "dropout masks did not change between steps");
    }
}

/// <summary>The checks of <see cref="CudaProgramChecks"/> on the host CUDA emulator (runs in CI).</summary>
public sealed class CudaProgramTests(ITestOutputHelper output)
    : CudaProgramChecks(output, () => EmulatorAvailability.SkipReason is null ? new EmulatedGpu() : null)
{
    [EmulatorTheory]
    [MemberData(nameof(Cases), MemberType = typeof(CudaProgramChecks))]
    public void Cuda_program_matches_the_cpu_program_loss_gradients_eval_and_forward(string model, PrecisionMode precision) => ProgramMatchesCpu(model, precision);

    [EmulatorFact]
    public void Comparison_detects_a_wrong_kernel_result() => ComparisonDetectsAWrongResult();

    [EmulatorTheory]
    [MemberData(nameof(TrainingCases), MemberType = typeof(CudaProgramChecks))]
    public void Training_on_the_cuda_program_follows_the_cpu_loss_curve_and_parameters(PrecisionMode precision, OptimizerKind optimizer, bool stochastic)
        => TrainingFollowsCpu(precision, optimizer, stochastic);

    [EmulatorFact]
    public void Dropout_masks_on_the_device_are_the_cpu_masks_bit_for_bit() => DropoutMasksMatchCpu();

    [EmulatorFact]
    public void Optimizer_state_on_the_device_is_readable_and_a_resumed_run_continues_exactly() => OptimizerStateIsReadableAndResumes();
}

/// <summary>
/// The checks of <see cref="CudaProgramChecks"/> on CUDA device 0: NVRTC-compiled kernels, cuBLASLt GEMMs and the
/// driver, against the CPU program. Skipped, with the reason, where no GPU (or no driver) is present.
/// </summary>
[Trait("Device", "Gpu")]
public sealed class GpuCudaProgramTests(ITestOutputHelper output)
    : CudaProgramChecks(output, () => GpuAvailability.SkipReason is null ? GpuSelection.Open("cuda:0") : null)
{
    [GpuTheory]
    [MemberData(nameof(Cases), MemberType = typeof(CudaProgramChecks))]
    public void Cuda_program_matches_the_cpu_program_loss_gradients_eval_and_forward(string model, PrecisionMode precision) => ProgramMatchesCpu(model, precision);

    [GpuFact]
    public void Comparison_detects_a_wrong_kernel_result() => ComparisonDetectsAWrongResult();

    [GpuTheory]
    [MemberData(nameof(TrainingCases), MemberType = typeof(CudaProgramChecks))]
    public void Training_on_the_cuda_program_follows_the_cpu_loss_curve_and_parameters(PrecisionMode precision, OptimizerKind optimizer, bool stochastic)
        => TrainingFollowsCpu(precision, optimizer, stochastic);

    [GpuFact]
    public void Dropout_masks_on_the_device_are_the_cpu_masks_bit_for_bit() => DropoutMasksMatchCpu();

    [GpuFact]
    public void Optimizer_state_on_the_device_is_readable_and_a_resumed_run_continues_exactly() => OptimizerStateIsReadableAndResumes();
}

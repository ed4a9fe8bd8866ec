using System;
using System.Collections.Generic;
using System.Linq;
using Kiln;
using Kiln.Runtime;
using Kiln.Runtime.Cuda;
using Spirals;

namespace Kiln.Benchmarks;

/// <summary>
/// The on-device correctness check, for a machine that has a GPU but no .NET SDK (publish this app self-contained):
/// every generated kernel and GEMM of two models (the spirals classifier and the GPT-shaped model) runs on the device
/// and is compared with the CPU program of the same precision on the same parameters and batch — loss, every
/// parameter's gradient, accumulation, evaluation loss — and then the spirals model trains end to end on both and
/// the loss curves are compared. Prints one line per check and exits 1 if any fails.
/// </summary>
/// <remarks>
/// Tolerances (per tensor, against the tensor's own scale s = max|CPU value|): fp32 |Δ| ≤ 1e-4 + 1e-3·s (summation
/// order and libm differ); bf16 |Δ| ≤ 2e-3 + 4e-2·s (a value near a rounding boundary may round to the neighbouring
/// bf16, a few 2⁻⁸ ulps). End to end: final and held-out losses within 2e-3 relative (fp32) and 10% (bf16).
/// <c>--device=emulator</c> runs the same checks on the host CUDA emulator, to test the check itself without a GPU.
/// </remarks>
internal static class GpuCheck
{
    private sealed record Outcome(string What, double Worst, bool Pass);

    public static int Run(string[] args)
    {
        string device = args.FirstOrDefault(a => a.StartsWith("--device=", StringComparison.Ordinal))?["--device=".Length..] ?? "cuda";
        int steps = args.FirstOrDefault(a => a.StartsWith("--steps=", StringComparison.Ordinal)) is { } s ? int.Parse(s["--steps=".Length..]) : 200;
        using var gpu = device == "emulator" ? new Kiln.Cuda.Emulator.EmulatedGpu() : GpuSelection.Open(device)
            ?? throw new InvalidOperationException($"--device={device} names no GPU; use cuda or cuda:N.");
        Console.WriteLine($"gpu-check on {gpu.Name} ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        var outcomes = new List<Outcome>();

        foreach (var precision in new[] { PrecisionMode.Float32, PrecisionMode.BFloat16, PrecisionMode.Float16 })
        {
            var spirals = new SpiralClassifier(2, 16, 32, 2, 3);
            outcomes.AddRange(CompareStep("spirals", spirals.CreateProgram("cpu", precision), spirals.CreateProgram(gpu, precision), precision, SpiralBatch));
            var gpt = new Gpt(vocab: 128, context: 32, dim: 64, heads: 4, layers: 6);
            outcomes.AddRange(CompareStep("gpt", gpt.CreateProgram("cpu", precision), gpt.CreateProgram(gpu, precision), precision, GptBatch));
        }
        foreach (var precision in new[] { PrecisionMode.Float32, PrecisionMode.BFloat16 })
            outcomes.AddRange(CompareTraining(gpu, precision, steps));

        int failed = outcomes.Count(o => !o.Pass);
        Console.WriteLine($"{outcomes.Count - failed} of {outcomes.Count} checks passed{(failed == 0 ? "" : $"; {failed} FAILED")}");
        return failed == 0 ? 0 : 1;
    }

    private static Batch SpiralBatch(Random rng, int size)
    {
        var x = new float[size * 2]; var y = new int[size];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
        for (int i = 0; i < size; i++) y[i] = rng.Next(2);
        return new Batch(("x", TensorData.Float(x, size, 2)), ("label", TensorData.Int(y, size)));
    }

    private static Batch GptBatch(Random rng, int size)
    {
        const int context = 32;
        var idx = new int[size * context]; var tgt = new int[size * context];
        for (int i = 0; i < idx.Length; i++) { idx[i] = rng.Next(128); tgt[i] = rng.Next(128); }
        return new Batch(("idx", TensorData.Int(idx, size, context)), ("targets", TensorData.Int(tgt, size, context)));
    }

    private static (double Abs, double Rel) Tolerance(PrecisionMode p) => p == PrecisionMode.Float32 ? (1e-4, 1e-3) : (2e-3, 4e-2);

    /// <summary>The worst |Δ| / (abs + rel·scale) over a tensor; ≤ 1 passes.</summary>
    private static double Ratio(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double abs, double rel)
    {
        double scale = 0, worst = 0;
        foreach (var e in expected) scale = Math.Max(scale, Math.Abs((double)e));
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs((double)actual[i] - expected[i]);
            if (!double.IsFinite(actual[i])) d = double.PositiveInfinity;
            worst = Math.Max(worst, d / (abs + rel * scale));
        }
        return worst;
    }

    private static Outcome Report(string what, double ratio)
    {
        var o = new Outcome(what, ratio, ratio <= 1);
        Console.WriteLine($"  {(o.Pass ? "pass" : "FAIL")}  {what}: worst error {ratio:F3} of tolerance");
        return o;
    }

    private static IEnumerable<Outcome> CompareStep(string name, ModelProgram cpu, ModelProgram device, PrecisionMode precision, Func<Random, int, Batch> makeBatch)
    {
        var results = new List<Outcome>();
        var gpuProgram = (CudaModelProgram)device;
        try
        {
            var (abs, rel) = Tolerance(precision);
            var rng = new Random(1234);
            cpu.InitParameters(5);
            Array.Copy(cpu.Params, gpuProgram.Params, cpu.Params.Length);
            cpu.ParametersChanged(); gpuProgram.ParametersChanged();
            foreach (int size in new[] { 1, 7, 32 })
            {
                var batch = makeBatch(rng, size);
                var ctx = new StepContext(99, 3, 0);
                cpu.ZeroGrads(); gpuProgram.ZeroGrads();
                float lc = cpu.TrainStep(batch, ctx), lg = gpuProgram.TrainStep(batch, ctx);
                string tag = $"{name} {precision} batch {size}";
                results.Add(Report($"{tag} loss ({lc:G6} cpu, {lg:G6} device)", Ratio(new[] { lg }, new[] { lc }, abs, rel)));
                gpuProgram.SyncGradientsToHost();
                results.Add(Report($"{tag} gradients of {cpu.Parameters.Count} tensors", cpu.Parameters.Max(p =>
                    Ratio(gpuProgram.Grads.AsSpan((int)p.Offset, (int)p.Length), cpu.Grads.AsSpan((int)p.Offset, (int)p.Length), abs, rel))));
                cpu.TrainStep(batch, ctx); gpuProgram.TrainStep(batch, ctx);
                gpuProgram.SyncGradientsToHost();
                results.Add(Report($"{tag} accumulated gradients", cpu.Parameters.Max(p =>
                    Ratio(gpuProgram.Grads.AsSpan((int)p.Offset, (int)p.Length), cpu.Grads.AsSpan((int)p.Offset, (int)p.Length), abs, rel))));
                float ec = cpu.EvalLoss(batch), eg = gpuProgram.EvalLoss(batch);
                results.Add(Report($"{tag} eval loss", Ratio(new[] { eg }, new[] { ec }, abs, rel)));
            }
        }
        catch (Exception e)
        {
            Console.WriteLine($"  FAIL  {name} {precision}: {e.GetType().Name}: {e.Message}");
            results.Add(new Outcome($"{name} {precision}", double.PositiveInfinity, false));
        }
        finally
        {
            gpuProgram.Dispose();
        }
        return results;
    }

    private static IEnumerable<Outcome> CompareTraining(IGpu gpu, PrecisionMode precision, int steps)
    {
        var (x, y) = SpiralData.Generate(2000, 2.0, 0.08, 7);
        var all = new InMemoryDataset(("x", TensorData.Float(x, 2000, 2)), ("label", TensorData.Int(y, 2000)));
        var (train, heldOut) = all.Split(0.2, 11);
        var options = new TrainOptions
        {
            Steps = steps, BatchSize = 64, LearningRate = 5e-3f, WarmupSteps = 20, Progress = ProgressMode.None,
            Precision = precision, EvalEvery = Math.Max(1, steps / 4), Seed = 42,
        };
        var model = new SpiralClassifier(2, 16, 32, 2, 3);
        var cpu = model.CreateProgram("cpu", precision);
        using var device = (CudaModelProgram)model.CreateProgram(gpu, precision);
        var rc = new Trainer(cpu, options).Fit(train, heldOut);
        var rg = new Trainer(device, options).Fit(train, heldOut);
        Console.WriteLine($"  {precision} spirals, {steps} steps: final train loss cpu {rc.FinalTrainLoss:F5} device {rg.FinalTrainLoss:F5}; held-out " +
                          string.Join(" ", rc.EvalHistory.Zip(rg.EvalHistory, (c, g) => $"[{c.Step}] {c.Loss:F4}/{g.Loss:F4}")));
        double rel = precision == PrecisionMode.Float32 ? 2e-3 : 0.1;
        var expected = rc.EvalHistory.Select(e => (float)e.Loss).Append((float)rc.FinalTrainLoss).ToArray();
        var actual = rg.EvalHistory.Select(e => (float)e.Loss).Append((float)rg.FinalTrainLoss).ToArray();
        return new[]
        {
            Report($"spirals {precision} training loss curve over {steps} steps (cpu vs device)", actual.Length == expected.Length ? Ratio(actual, expected, 2e-4, rel) : double.PositiveInfinity),
            Report($"spirals {precision} skipped steps ({rc.SkippedSteps} cpu, {rg.SkippedSteps} device)", rc.SkippedSteps == rg.SkippedSteps ? 0 : double.PositiveInfinity),
        };
    }
}

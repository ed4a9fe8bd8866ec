using System;
using System.Diagnostics;
using System.Linq;
using Kiln;
using Kiln.Runtime;
using Spirals;

namespace Kiln.Benchmarks;

/// <summary>
/// Times the generated training step of the spirals example model (the README's main job) at several
/// batch sizes: the program's TrainStep alone, and a full trainer step (TrainStep + clipping + AdamW).
/// Reports the achieved matmul GFLOP/s against the machine's FMA peak measured in the same run.
/// </summary>
internal static class StepBench
{
    public static int Run(string[] args)
    {
        int reps = args.FirstOrDefault(a => a.StartsWith("--reps=", StringComparison.Ordinal)) is { } r ? int.Parse(r.AsSpan(7)) : 400;
        double peak = GemmBench.MeasurePeak(Environment.ProcessorCount);
        Console.WriteLine($"measured fp32 FMA peak: {peak:F1} GFLOP/s on {Environment.ProcessorCount} threads");
        Console.WriteLine("| model | batch | TrainStep ms (median) | trainer step ms (median) | examples/s | matmul GFLOP/s | % of peak |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (dim, hidden, depth) in new[] { (64, 128, 3), (256, 1024, 4) })
            foreach (int batch in new[] { 64, 256, 1024 })
                Measure(dim, hidden, depth, batch, reps, peak);
        return 0;
    }

    private static void Measure(int dim, int hidden, int depth, int batch, int reps, double peak)
    {
        var model = new SpiralClassifier(dim: dim, hidden: hidden, depth: 3);
        if (depth != 3) model = new SpiralClassifier(dim: dim, hidden: hidden); // depth is structural (compiled at 3)
        var program = model.CreateProgram();
        var (x, y) = SpiralData.Generate(batch, 2, 0.1, 1);
        var data = new InMemoryDataset(("x", TensorData.Float(x, batch, 2)), ("label", TensorData.Int(y, batch)));
        var batchData = data.GetBatch(Enumerable.Range(0, batch).ToArray());
        program.InitParameters(1);
        int steps = Math.Max(20, reps * 64 / batch * 64 / dim);
        // Warm up by time, not count: generated kernels reach tier-1 JIT code only after many calls
        // (measured: the first few hundred steps of the small model run ~2x slower).
        var warm = Stopwatch.StartNew();
        for (int i = 0; warm.Elapsed.TotalSeconds < 2 || i < 500; i++) program.TrainStep(batchData, new StepContext(1, i, 0));
        var times = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            program.TrainStep(batchData, new StepContext(1, i, 0));
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(times);
        double stepMs = times[steps / 2];

        var trainer = new Trainer(program, new TrainOptions { Steps = steps, BatchSize = batch, Progress = ProgressMode.None, Device = "cpu" });
        var result = trainer.Fit(data);
        double trainerMs = result.WallTime.TotalMilliseconds / Math.Max(1, result.StepsRun);

        // Matmul FLOPs of forward + backward: 2·B·in·out per product, three products per Linear.
        double flops = 0;
        foreach (var p in program.Parameters.Where(p => p.Shape.Length == 2)) flops += 6.0 * batch * p.Shape[0] * p.Shape[1];
        double gflops = flops / (stepMs * 1e-3) / 1e9;
        Console.WriteLine($"| spirals dim={dim} hidden={hidden} depth=3 ({program.Params.Length:N0} params) | {batch} | {stepMs:F3} | {trainerMs:F3} | {batch / (trainerMs * 1e-3):N0} | {gflops:F1} | {100 * gflops / peak:F0}% |");
    }
}

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using Kiln;
using Kiln.Runtime;

namespace Kiln.Benchmarks;

/// <summary>
/// <c>attention</c>: one causal self-attention layer (QKV projection, attention, output projection) trained a step at a
/// time with the fused op (<see cref="AttentionFused"/>) and with the composition (<see cref="AttentionComposed"/>), at
/// each sequence length: median TrainStep time (forward and backward), the activation arena the program plans (its peak
/// activation memory) and the losses of both (which must agree). Options: <c>--dim=384 --heads=6 --batch=1
/// --lengths=256,1024,4096 --reps=5</c>.
/// </summary>
internal static class AttentionBench
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => args.FirstOrDefault(a => a.StartsWith("--" + name + "=", StringComparison.Ordinal)) is { } a ? a[(name.Length + 3)..] : fallback;
        int dim = int.Parse(Arg("dim", "384")), heads = int.Parse(Arg("heads", "6")), batch = int.Parse(Arg("batch", "1")), reps = int.Parse(Arg("reps", "5"));
        var lengths = Arg("lengths", "256,1024,4096").Split(',').Select(int.Parse).ToArray();
        Console.WriteLine($"causal self-attention: dim {dim}, {heads} heads (head size {dim / heads}), batch {batch}; {Environment.ProcessorCount} threads; median of {reps} TrainSteps (forward + backward) after warm-up steps (40 or 2 s, at least 3) and a throwaway first run");
        Console.WriteLine("| what | T | fused ms | composed ms | composed / fused | fused arena MiB | composed arena MiB | fused / composed memory | loss fused | loss composed |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        // The process's first steps pay for thread-pool start-up and JIT across the runtime: a throwaway run first.
        foreach (bool layer in new[] { false, true })
        foreach (int entry in lengths.Prepend(-Math.Min(256, lengths.Min())))
        {
            bool warmUp = entry < 0;
            int t = Math.Abs(entry);
            var rng = new Random(5);
            var x = new float[batch * t * dim]; var y = new float[batch * t * dim];
            for (int i = 0; i < x.Length; i++) { x[i] = (float)(rng.NextDouble() * 2 - 1); y[i] = (float)(rng.NextDouble() * 2 - 1); }
            var data = new Batch(("x", TensorData.Float(x, batch, t, dim)), ("y", TensorData.Float(y, batch, t, dim)));
            var fused = layer ? new AttentionFused(dim, heads).CreateProgram() : new AttentionOnlyFused(dim, heads).CreateProgram();
            var composed = layer ? new AttentionComposed(dim, heads).CreateProgram() : new AttentionOnlyComposed(dim, heads).CreateProgram();
            fused.InitParameters(1); composed.InitParameters(1);
            // The same weights on both sides (the parameter tables have the same layout).
            Array.Copy(fused.Params, composed.Params, fused.Params.Length); composed.ParametersChanged();
            var (fm, fl) = Time(fused, data, reps);
            long fusedArena = fused.ArenaBytes;
            fused = null;
            GC.Collect();
            var (cm, cl) = Time(composed, data, reps);
            long composedArena = composed.ArenaBytes;
            if (!warmUp) Console.WriteLine($"| {(layer ? "layer (QKV, attention, projection)" : "attention only")} | {t} | {fm:F1} | {cm:F1} | {cm / fm:F2} | {fusedArena / 1048576.0:F1} | {composedArena / 1048576.0:F1} | {(double)fusedArena / composedArena:F3} | {fl:F5} | {cl:F5} |");
            composed = null;
            GC.Collect();
        }
        return 0;
    }

    private static (double Median, float Loss) Time(ModelProgram program, Batch data, int reps)
    {
        float loss = 0;
        program.ZeroGrads();
        // Warm-up: arena growth and the JIT's tiers (the generated program's methods reach optimised code after ~30 calls).
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 3 || (i < 40 && warm.Elapsed.TotalSeconds < 2); i++) { program.ZeroGrads(); loss = program.TrainStep(data, new StepContext(1, 0, 0)); }
        var times = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            program.ZeroGrads();
            long t0 = Stopwatch.GetTimestamp();
            program.TrainStep(data, new StepContext(1, i + 1, 0));
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        times.Sort();
        return (times[times.Count / 2], loss);
    }
}

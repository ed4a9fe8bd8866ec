using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Kiln;
using Kiln.Runtime;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Interop;

namespace Kiln.Benchmarks;

/// <summary>
/// Trains the GPT-shaped model on Tiny Shakespeare (characters) and reports tokens/s, achieved TFLOP/s and
/// MFU against a ceiling measured in the same run: on a GPU, Kiln's own bf16 cuBLASLt GEMM at 8192³; on the
/// CPU, the FMA peak. FLOPs per token follow DESIGN.md: 6N + 6·L·C·T (N parameters, L layers, C width, T context).
/// With <c>--profile</c> it also times every kernel of one step (host-timed: synchronise before and after each,
/// minus the measured cost of an empty synchronisation) and the device's copy bandwidth.
/// </summary>
internal static class GptBench
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback) => args.FirstOrDefault(a => a.StartsWith("--" + name + "=", StringComparison.Ordinal)) is { } a ? a[(name.Length + 3)..] : fallback;
        string device = Arg("device", "cpu");
        var precision = Arg("precision", "auto").ToLowerInvariant() switch
        {
            "f32" or "fp32" => PrecisionMode.Float32, "bf16" => PrecisionMode.BFloat16, "f16" or "fp16" => PrecisionMode.Float16, _ => PrecisionMode.Auto,
        };
        int layers = int.Parse(Arg("layers", "6")), dim = int.Parse(Arg("dim", "384")), heads = int.Parse(Arg("heads", "6"));
        int context = int.Parse(Arg("context", "256")), batch = int.Parse(Arg("batch", "16")), steps = int.Parse(Arg("steps", "30"));
        bool profile = args.Contains("--profile");
        int vocab = int.Parse(Arg("vocab", "128"));
        string attention = Arg("attention", "fused");
        if (attention is not ("fused" or "composed")) throw new ArgumentException($"--attention={attention}: use fused (Kiln.Nn blocks, Ops.Attention) or composed (MatMul/Softmax/MatMul).");
        int generate = int.Parse(Arg("generate", "0"));
        string dataPath = Arg("data", FindShakespeare());

        var text = File.ReadAllText(dataPath);
        var chars = text.Distinct().OrderBy(c => c).ToArray();
        var id = chars.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i);
        var tokens = text.Select(c => id[c]).ToArray();
        if (chars.Length > vocab) throw new InvalidOperationException($"{chars.Length} distinct characters do not fit the vocabulary of {vocab}.");

        var gpu = GpuSelection.Open(device);
        // Every size is bound here, the number of layers included: the blocks are one loop region in the generated program.
        ModelProgram Create(IGpu? g)
        {
            if (attention == "composed")
            {
                var m = new Gpt(vocab: vocab, context: context, dim: dim, heads: heads, layers: layers);
                return g is null ? m.CreateProgram(device, precision) : m.CreateProgram(g, precision);
            }
            var f = new LibGpt(vocab: vocab, context: context, dim: dim, heads: heads, layers: layers);
            return g is null ? f.CreateProgram(device, precision) : f.CreateProgram(g, precision);
        }
        var program = Create(gpu);
        program.InitParameters(1);
        long n = program.Params.LongLength;
        double flopsPerToken = 6.0 * n + 6.0 * layers * dim * context;
        Console.WriteLine($"GPT ({attention} attention): {layers} layers, dim {dim}, {heads} heads, vocab {vocab}, context {context}, {n:N0} parameters; batch {batch}; {program.Device}, {program.Precision}");

        var rng = new Random(7);
        Batch NextBatch()
        {
            var idx = new int[batch * context]; var tgt = new int[batch * context];
            for (int b = 0; b < batch; b++)
            {
                int start = rng.Next(tokens.Length - context - 1);
                for (int t = 0; t < context; t++) { idx[b * context + t] = tokens[start + t]; tgt[b * context + t] = tokens[start + t + 1]; }
            }
            return new Batch(("idx", TensorData.Int(idx, batch, context)), ("targets", TensorData.Int(tgt, batch, context)));
        }

        var trainer = new Trainer(program, new TrainOptions { Steps = 1, BatchSize = batch, Progress = ProgressMode.None, Device = device, Precision = precision, LearningRate = 1e-3f }, initializeParameters: false);
        var optimizer = trainer.Optimizer;
        void Step(int i)
        {
            program.ZeroGrads();
            program.TrainStep(NextBatch(), new StepContext(1, i, 0));
            program.GradientNorm();
            optimizer.Step(program, 1e-3f);
        }
        for (int i = 0; i < 3; i++) Step(i); // warm-up: kernel load, JIT, arena growth
        gpu?.Synchronize();
        var clock = Stopwatch.StartNew();
        float firstLoss = program.EvalLoss(NextBatch());
        for (int i = 0; i < steps; i++) Step(3 + i);
        float lastLoss = program.EvalLoss(NextBatch());
        gpu?.Synchronize();
        double seconds = clock.Elapsed.TotalSeconds;
        double tokensPerSecond = (double)steps * batch * context / seconds;
        double achieved = tokensPerSecond * flopsPerToken;

        double ceiling = gpu is null ? GemmBench.MeasurePeak(Environment.ProcessorCount) * 1e9 : MeasureGemm(gpu);
        Console.WriteLine($"loss {firstLoss:F3} → {lastLoss:F3} over {steps} steps ({seconds:F2} s, {1000 * seconds / steps:F1} ms/step incl. gradient norm and AdamW); activation arena {program.ArenaBytes / 1048576.0:F1} MiB");
        Console.WriteLine("| device | precision | params | batch×context | tokens/s | achieved TFLOP/s | ceiling TFLOP/s | MFU |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| {program.Device} | {program.Precision} | {n:N0} | {batch}×{context} | {tokensPerSecond:N0} | {achieved / 1e12:F3} | {ceiling / 1e12:F3} ({(gpu is null ? "fp32 FMA peak" : "bf16 GEMM 8192³")}) | {100 * achieved / ceiling:F1}% |");

        if (generate > 0)
        {
            // Batch 1, a 16-token prompt, greedy and sampled tokens alike; without the cache every new token reruns Forward
            // over the whole window, with it (the decode program) each new token runs one position.
            var prompt = tokens.Take(Math.Min(16, context)).ToList();
            foreach (bool cache in new[] { false, true })
            {
                if (cache && !program.SupportsDecode) { Console.WriteLine("generation with the KV cache: this model has no decode program"); continue; }
                Generation.Generate(program, prompt, 2, context, new SamplingOptions { Temperature = 0 }, useCache: cache);
                var g0 = Stopwatch.StartNew();
                var produced = Generation.Generate(program, prompt, generate, context, new SamplingOptions { Temperature = 0.8f, Seed = 3 }, useCache: cache);
                double gs = g0.Elapsed.TotalSeconds;
                Console.WriteLine($"generation ({(cache ? "KV cache" : "uncached")}, batch 1, prompt {prompt.Count}, window up to {context}): {produced.Length} tokens in {gs:F2} s = {produced.Length / gs:F1} tokens/s; first tokens {string.Join(",", produced.Take(8))}");
            }
        }

        if (profile && gpu is not null)
        {
            double copy = MeasureCopyBandwidth(gpu);
            Console.WriteLine($"device copy bandwidth (device→device, 1 GiB): {copy / 1e9:F0} GB/s");
            var timed = new TimedGpu(gpu);
            var p2 = Create(timed);
            p2.InitParameters(1);
            var b = NextBatch();
            p2.TrainStep(b, new StepContext(1, 0, 0));
            timed.Reset();
            p2.TrainStep(b, new StepContext(1, 1, 0));
            Console.WriteLine($"kernel times of one TrainStep (host-timed, empty-sync overhead {timed.OverheadMicroseconds:F1} µs subtracted):");
            Console.WriteLine("| kernel | launches | total µs |");
            Console.WriteLine("|---|---:|---:|");
            foreach (var (name, count, micros) in timed.Totals().OrderByDescending(x => x.Micros).Take(25))
                Console.WriteLine($"| {name} | {count} | {micros:F1} |");
            (p2 as IDisposable)?.Dispose();
        }
        (program as IDisposable)?.Dispose();
        gpu?.Dispose();
        return 0;
    }

    private static string FindShakespeare()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data", "tinyshakespeare.txt");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("tinyshakespeare.txt not found above the benchmark's directory; pass --data=PATH.");
    }

    /// <summary>bf16 GEMM throughput of the device through Kiln's own cuBLASLt path (fp32 accumulation).</summary>
    private static double MeasureGemm(IGpu gpu, int size = 8192, int reps = 20)
    {
        long bytes = (long)size * size * 2;
        ulong a = gpu.Allocate(bytes), b = gpu.Allocate(bytes), c = gpu.Allocate(bytes);
        gpu.Fill(a, 0x3c, bytes); gpu.Fill(b, 0x3c, bytes);
        var mm = LtMatmul.RowMajor(false, false, size, size, size, a, GpuDataType.BFloat16, b, GpuDataType.BFloat16, c, GpuDataType.BFloat16);
        for (int i = 0; i < 3; i++) gpu.Matmul(mm);
        gpu.Synchronize();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++) gpu.Matmul(mm);
        gpu.Synchronize();
        double flops = 2.0 * size * size * size * reps / clock.Elapsed.TotalSeconds;
        gpu.Free(a); gpu.Free(b); gpu.Free(c);
        return flops;
    }

    /// <summary>Device-to-device copy bandwidth (bytes read + written per second).</summary>
    private static double MeasureCopyBandwidth(IGpu gpu, long bytes = 1L << 30, int reps = 10)
    {
        ulong a = gpu.Allocate(bytes), b = gpu.Allocate(bytes);
        gpu.CopyDeviceToDevice(b, a, bytes);
        gpu.Synchronize();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++) gpu.CopyDeviceToDevice(b, a, bytes);
        gpu.Synchronize();
        double rate = 2.0 * bytes * reps / clock.Elapsed.TotalSeconds;
        gpu.Free(a); gpu.Free(b);
        return rate;
    }

    /// <summary>An <see cref="IGpu"/> that synchronises around every kernel launch and GEMM and records the time each took.</summary>
    private sealed class TimedGpu(IGpu inner) : IGpu
    {
        private readonly Dictionary<string, (int Count, double Micros)> _totals = new();
        public double OverheadMicroseconds { get; } = MeasureOverhead(inner);

        private static double MeasureOverhead(IGpu gpu)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < 100; i++) gpu.Synchronize();
            return clock.Elapsed.TotalMilliseconds * 1000 / 100;
        }

        public void Reset() => _totals.Clear();
        public IEnumerable<(string Name, int Count, double Micros)> Totals() => _totals.Select(kv => (kv.Key, kv.Value.Count, kv.Value.Micros));

        private void Time(string name, Action action)
        {
            inner.Synchronize();
            long t0 = Stopwatch.GetTimestamp();
            action();
            inner.Synchronize();
            double us = Math.Max(0, Stopwatch.GetElapsedTime(t0).TotalMilliseconds * 1000 - OverheadMicroseconds);
            _totals[name] = _totals.TryGetValue(name, out var x) ? (x.Count + 1, x.Micros + us) : (1, us);
        }

        public string Name => inner.Name;
        public long TotalMemoryBytes => inner.TotalMemoryBytes;
        public ulong Allocate(long bytes) => inner.Allocate(bytes);
        public void Free(ulong pointer) => inner.Free(pointer);
        public void CopyToDevice(ulong destination, ReadOnlySpan<byte> source) => inner.CopyToDevice(destination, source);
        public void CopyToHost(Span<byte> destination, ulong source) => inner.CopyToHost(destination, source);
        public void CopyDeviceToDevice(ulong destination, ulong source, long bytes) => inner.CopyDeviceToDevice(destination, source, bytes);
        public void Fill(ulong destination, byte value, long bytes) => inner.Fill(destination, value, bytes);
        public IGpuModule LoadModule(GpuKernelSource source) => new Module(this, inner.LoadModule(source));
        public void Matmul(in LtMatmul matmul)
        {
            var m = matmul;
            Time($"GEMM {m.M}x{m.N}x{m.K} batch {m.BatchCount}", () => inner.Matmul(m));
        }
        public void Synchronize() => inner.Synchronize();
        public void Dispose() { }

        private sealed class Module(TimedGpu gpu, IGpuModule inner) : IGpuModule
        {
            public IGpuKernel GetKernel(string name) => new Kernel(gpu, inner.GetKernel(name));
            public void Dispose() => inner.Dispose();
        }

        private sealed class Kernel(TimedGpu gpu, IGpuKernel inner) : IGpuKernel
        {
            public string Name => inner.Name;
            public void Launch(uint gridBlocks, uint blockThreads, int sharedMemoryBytes, params ReadOnlySpan<KernelArgument> arguments)
            {
                var copy = arguments.ToArray();
                gpu.Time(inner.Name, () => inner.Launch(gridBlocks, blockThreads, sharedMemoryBytes, copy));
            }
        }
    }
}

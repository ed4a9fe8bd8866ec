using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Threading;
using Kiln.Runtime.Cpu;

namespace Kiln.Benchmarks;

/// <summary>
/// <c>gemm</c>: measures this machine's fp32 FMA peak, then Kiln's <see cref="Gemm.Sgemm(bool, bool, int, int, int, float*, int, float*, int, float*, int, bool)"/>
/// and, when it is installed, OpenBLAS <c>cblas_sgemm</c> on the same shapes and buffers.
/// Options: <c>--reps N</c> (timed repetitions per shape, default 15), <c>--no-openblas</c>.
/// </summary>
internal static unsafe class GemmBench
{
    private const int CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112;

    private readonly record struct Shape(int M, int N, int K, bool TransA, bool TransB, string Note);

    /// <summary>Best and median GFLOP/s over the timed repetitions.</summary>
    private readonly record struct Stats(double Best, double Median);

    // The last rows are the matrix products of a small MLP training step (2 → 64 → 64 → 2, batch 256): forward
    // x·Wᵀ, backward dX = dY·W (NN) and dW = dYᵀ·X (TN).
    private static readonly Shape[] Shapes =
    {
        new(1024, 1024, 1024, false, false, "square"),
        new(1024, 1024, 1024, false, true, "square, B stored [n,k]"),
        new(256, 3072, 768, false, false, "GPT MLP up"),
        new(256, 3072, 768, false, true, "GPT MLP up, x·Wᵀ"),
        new(256, 768, 3072, false, false, "GPT MLP down"),
        new(256, 768, 3072, false, true, "GPT MLP down, x·Wᵀ"),
        new(256, 64, 2, false, true, "step fwd x·W1ᵀ"),
        new(256, 64, 64, false, true, "step fwd h·W2ᵀ"),
        new(256, 2, 64, false, true, "step fwd h·W3ᵀ"),
        new(256, 64, 2, false, false, "step bwd dY·W3"),
        new(256, 64, 64, false, false, "step bwd dY·W2"),
        new(2, 64, 256, true, false, "step bwd dW3 = dYᵀ·h"),
        new(64, 64, 256, true, false, "step bwd dW2 = dYᵀ·h"),
        new(64, 2, 256, true, false, "step bwd dW1 = dYᵀ·x"),
    };

    public static int Run(string[] args)
    {
        int reps = 15;
        bool useBlas = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--reps" when i + 1 < args.Length:
                    reps = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--no-openblas":
                    useBlas = false;
                    break;
                default:
                    Console.Error.WriteLine($"gemm: unknown option '{args[i]}' (options: --reps N, --no-openblas)");
                    return 2;
            }
        }

        int cores = Environment.ProcessorCount;
        var load = LoadMeter.Start();
        Console.WriteLine($"command: dotnet run -c Release --project benchmarks/Kiln.Benchmarks -- gemm {string.Join(' ', args)}".TrimEnd());
        Console.WriteLine($"date:    {DateTime.Now:yyyy-MM-dd HH:mm}");
        Console.WriteLine($"machine: {CpuModel()}, {cores} logical cores, {RuntimeInformation.FrameworkDescription}, Vector512 accelerated: {Vector512.IsHardwareAccelerated}");

        double peak1 = MeasurePeak(1);
        double peakBefore = MeasurePeak(cores);

        string blasNote = "OpenBLAS: skipped (--no-openblas)";
        Blas? blas = useBlas ? Blas.TryLoad(out blasNote) : null;

        var rows = new List<(Shape Shape, Stats Kiln, Stats? Blas)>();
        foreach (Shape s in Shapes)
        {
            rows.Add(Measure(s, reps, blas));
        }

        // The machine may be shared: the peak is measured on both sides of the table and the higher figure is used.
        double peakAfter = MeasurePeak(cores);
        double peak = Math.Max(peakBefore, peakAfter);
        var (otherShare, seconds) = load.Stop();

        string kind = Vector512.IsHardwareAccelerated ? "Vector512" : "Vector256";
        Console.WriteLine($"fp32 FMA peak (measured, independent {kind} FMAs): 1 thread {peak1:F1} GFLOP/s; {cores} threads {peakBefore:F1} before the table, {peakAfter:F1} after; using {peak:F1}");
        Console.WriteLine(blasNote);
        Console.WriteLine(otherShare is double share
            ? $"other processes used {100 * share:F0}% of the machine's CPU time during the {seconds:F0} s run"
            : "CPU time used by other processes: unknown (no /proc/stat)");
        Console.WriteLine();
        Console.WriteLine("| shape (m×n×k) | layout | note | Kiln best GFLOP/s | Kiln median | Kiln % of peak (best) | OpenBLAS best GFLOP/s | OpenBLAS median | Kiln / OpenBLAS (best) |");
        Console.WriteLine("|---|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var (s, kiln, other) in rows)
        {
            string layout = (s.TransA ? "T" : "N") + (s.TransB ? "T" : "N");
            string blasCols = other is { } o ? $"{o.Best:F1} | {o.Median:F1} | {kiln.Best / o.Best:F2}" : "n/a | n/a | n/a";
            Console.WriteLine($"| {s.M}×{s.N}×{s.K} | {layout} | {s.Note} | {kiln.Best:F1} | {kiln.Median:F1} | {100 * kiln.Best / peak:F0}% | {blasCols} |");
        }
        Console.WriteLine();
        Console.WriteLine($"GFLOP/s = 2·m·n·k / time; best and median of {reps} repetitions each after warm-up, taken in three rounds that alternate");
        Console.WriteLine("Kiln and OpenBLAS. Layout: N/T for A then B (T = stored transposed). % of peak uses the all-core peak.");
        return 0;
    }

    private static (Shape Shape, Stats Kiln, Stats? Blas) Measure(Shape s, int reps, Blas? blas)
    {
        int m = s.M, n = s.N, k = s.K;
        bool transA = s.TransA, transB = s.TransB;
        float[] a = Random(m * k, 1), b = Random(k * n, 2), c = new float[m * n];
        int lda = transA ? m : k, ldb = transB ? k : n;
        double flop = 2.0 * m * n * k;
        fixed (float* pa = a, pb = b, pc = c)
        {
            float* xa = pa, xb = pb, xc = pc;
            Action kiln = () => Gemm.Sgemm(transA, transB, m, n, k, xa, lda, xb, ldb, xc, n, accumulate: false);
            Action? other = blas is null ? null : () => blas.Sgemm(transA, transB, m, n, k, xa, lda, xb, ldb, xc, n);
            var (kilnRates, otherRates) = Time(flop, reps, kiln, other);
            return (s, Summarize(kilnRates), otherRates is null ? null : Summarize(otherRates));
        }
    }

    private static Stats Summarize(List<double> rates)
    {
        rates.Sort();
        return new Stats(rates[^1], rates[rates.Count / 2]);
    }

    // Each repetition runs enough calls to last ~5 ms so tiny shapes are not dominated by timer resolution. The
    // repetitions come in three rounds, Kiln's block then OpenBLAS's, so both see the same machine over time; each
    // round starts with a pause because OpenBLAS's worker threads keep spinning for a while after a call and would
    // otherwise take a core from whatever runs next in this process.
    private static (List<double> First, List<double>? Second) Time(double flopPerCall, int reps, Action first, Action? second)
    {
        const int rounds = 3;
        int calls1 = WarmUp(first), calls2 = second is null ? 0 : WarmUp(second);
        var rates1 = new List<double>(reps);
        var rates2 = second is null ? null : new List<double>(reps);
        for (int round = 0; round < rounds; round++)
        {
            int inRound = (reps / rounds) + (round < reps % rounds ? 1 : 0);
            Thread.Sleep(200);
            for (int r = 0; r < inRound; r++)
            {
                rates1.Add(Rate(first, calls1, flopPerCall));
            }
            if (second is not null)
            {
                for (int r = 0; r < inRound; r++)
                {
                    rates2!.Add(Rate(second, calls2, flopPerCall));
                }
            }
        }
        return (rates1, rates2);
    }

    // Runs for at least 300 ms (so tiered compilation has settled) and returns calls per ~5 ms repetition.
    private static int WarmUp(Action call)
    {
        var sw = Stopwatch.StartNew();
        int warm = 0;
        while (warm < 3 || sw.ElapsedMilliseconds < 300)
        {
            call();
            warm++;
        }
        double perCall = sw.Elapsed.TotalSeconds / warm;
        return (int)Math.Clamp(0.005 / perCall, 1, 100_000);
    }

    private static double Rate(Action call, int calls, double flopPerCall)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < calls; i++)
        {
            call();
        }
        return flopPerCall * calls / Stopwatch.GetElapsedTime(start).TotalSeconds / 1e9;
    }

    private static float[] Random(int length, int seed)
    {
        var rng = new Random(seed);
        float[] x = new float[length];
        for (int i = 0; i < length; i++)
        {
            x[i] = (float)(rng.NextDouble() - 0.5);
        }
        return x;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Peak: every thread runs independent FMA chains (more chains than latency × throughput needs) for a fixed
    // time; the best of three rounds is reported.

    internal static double MeasurePeak(int threads)
    {
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            double[] rates = new double[threads];
            using var start = new Barrier(threads);
            var workers = new Thread[threads];
            for (int t = 0; t < threads; t++)
            {
                int id = t;
                workers[t] = new Thread(() =>
                {
                    start.SignalAndWait();
                    rates[id] = PeakOneThread(0.25);
                });
                workers[t].Start();
            }
            foreach (Thread w in workers)
            {
                w.Join();
            }
            best = Math.Max(best, rates.Sum());
        }
        return best;
    }

    private static double PeakOneThread(double seconds)
    {
        const int inner = 20_000;
        long iterations = 0;
        float sink = 0;
        var sw = Stopwatch.StartNew();
        bool wide = Vector512.IsHardwareAccelerated;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            sink += wide ? FmaLoop512(inner) : FmaLoop256(inner);
            iterations += inner;
        }
        double elapsed = sw.Elapsed.TotalSeconds;
        GC.KeepAlive(sink);
        int lanes = wide ? 16 : 8;
        return iterations * 12.0 * lanes * 2 / elapsed / 1e9;
    }

    // Kept free of calls so that the twelve accumulators stay in registers.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float FmaLoop512(int n)
    {
        Vector512<float> m = Vector512.Create(0.999f), a = Vector512.Create(0.001f);
        Vector512<float> c0 = Vector512.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int i = 0; i < n; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a);
            c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a);
            c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a);
            c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a);
            c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a);
            c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a);
            c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float FmaLoop256(int n)
    {
        Vector256<float> m = Vector256.Create(0.999f), a = Vector256.Create(0.001f);
        Vector256<float> c0 = Vector256.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int i = 0; i < n; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, a);
            c1 = Vector256.FusedMultiplyAdd(c1, m, a);
            c2 = Vector256.FusedMultiplyAdd(c2, m, a);
            c3 = Vector256.FusedMultiplyAdd(c3, m, a);
            c4 = Vector256.FusedMultiplyAdd(c4, m, a);
            c5 = Vector256.FusedMultiplyAdd(c5, m, a);
            c6 = Vector256.FusedMultiplyAdd(c6, m, a);
            c7 = Vector256.FusedMultiplyAdd(c7, m, a);
            c8 = Vector256.FusedMultiplyAdd(c8, m, a);
            c9 = Vector256.FusedMultiplyAdd(c9, m, a);
            c10 = Vector256.FusedMultiplyAdd(c10, m, a);
            c11 = Vector256.FusedMultiplyAdd(c11, m, a);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    // Measures how much CPU other processes took while the benchmark ran: busy time from /proc/stat minus this
    // process's own CPU time.
    private sealed class LoadMeter
    {
        private readonly long _busy0, _total0;
        private readonly TimeSpan _own0;
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        private LoadMeter(long busy, long total)
        {
            _busy0 = busy;
            _total0 = total;
            _own0 = Process.GetCurrentProcess().TotalProcessorTime;
        }

        public static LoadMeter Start()
        {
            ReadStat(out long busy, out long total);
            return new LoadMeter(busy, total);
        }

        public (double? OtherShare, double Seconds) Stop()
        {
            double seconds = _clock.Elapsed.TotalSeconds;
            if (!ReadStat(out long busy, out long total) || total <= _total0)
            {
                return (null, seconds);
            }
            double tick = 1.0 / 100; // USER_HZ
            double busyCpuSeconds = (busy - _busy0) * tick;
            double totalCpuSeconds = (total - _total0) * tick;
            double own = (Process.GetCurrentProcess().TotalProcessorTime - _own0).TotalSeconds;
            return (Math.Clamp((busyCpuSeconds - own) / totalCpuSeconds, 0, 1), seconds);
        }

        private static bool ReadStat(out long busy, out long total)
        {
            busy = total = 0;
            try
            {
                string? cpu = File.ReadLines("/proc/stat").FirstOrDefault(l => l.StartsWith("cpu ", StringComparison.Ordinal));
                if (cpu is null)
                {
                    return false;
                }
                long[] f = cpu.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
                total = f.Take(8).Sum();
                busy = total - f[3] - f[4];
                return true;
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        }
    }

    private static string CpuModel()
    {
        try
        {
            string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line is not null)
            {
                return line[(line.IndexOf(':') + 1)..].Trim();
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    // ---------------------------------------------------------------------------------------------------------

    private sealed class Blas
    {
        private readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> _sgemm;

        private Blas(delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void> sgemm) => _sgemm = sgemm;

        public static Blas? TryLoad(out string note)
        {
            // OpenBLAS reads OPENBLAS_CORETYPE with getenv when it loads. .NET keeps its own copy of the environment,
            // so the variable has to be placed in the C library's environment before the first load. Its runtime
            // CPU detection does not recognise every AVX-512 CPU (Zen 4 is one), so default to the SkylakeX kernels.
            string coreType = Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "SkylakeX";
            if (OperatingSystem.IsLinux())
            {
                _ = SetEnv("OPENBLAS_CORETYPE", coreType, 0);
            }
            if (!NativeLibrary.TryLoad("libopenblas.so.0", out IntPtr lib) && !NativeLibrary.TryLoad("libopenblas.so", out lib))
            {
                note = "OpenBLAS: not found (libopenblas.so.0); install libopenblas-dev to compare. Continuing without it.";
                return null;
            }
            if (!NativeLibrary.TryGetExport(lib, "cblas_sgemm", out IntPtr sgemm))
            {
                note = "OpenBLAS: libopenblas.so.0 has no cblas_sgemm export. Continuing without it.";
                return null;
            }
            string core = "?";
            if (NativeLibrary.TryGetExport(lib, "openblas_get_corename", out IntPtr corename))
            {
                core = Marshal.PtrToStringUTF8(((delegate* unmanaged[Cdecl]<IntPtr>)corename)()) ?? "?";
            }
            string threads = "?";
            if (NativeLibrary.TryGetExport(lib, "openblas_get_num_threads", out IntPtr numThreads))
            {
                threads = ((delegate* unmanaged[Cdecl]<int>)numThreads)().ToString(CultureInfo.InvariantCulture);
            }
            note = $"OpenBLAS: libopenblas.so.0, core {core} (OPENBLAS_CORETYPE={coreType}), {threads} threads";
            return new Blas((delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int, float*, int, float, float*, int, void>)sgemm);
        }

        public void Sgemm(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc) =>
            _sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, k, 1f, a, lda, b, ldb, 0f, c, ldc);

        [DllImport("libc", EntryPoint = "setenv")]
        private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
    }
}

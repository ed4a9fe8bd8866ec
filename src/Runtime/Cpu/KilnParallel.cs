using System;
using System.Threading.Tasks;

namespace Kiln.Runtime.Cpu;

/// <summary>
/// Splits a loop over rows across the cores when the work is large enough to pay for it. Generated
/// kernels call it with the number of rows and the elements per row.
/// </summary>
public static class KilnParallel
{
    /// <summary>Below this many elements a kernel runs on the calling thread: handing work to another core costs more than a memory-bound loop over fewer elements (measured on the spirals model).</summary>
    public static long MinParallelElements { get; set; } = 1 << 18;

    /// <summary>Degree of parallelism (defaults to the processor count; <c>KILN_NUM_THREADS</c> overrides).</summary>
    public static int Threads { get; set; } = ReadThreads();

    private static int ReadThreads()
    {
        var env = Environment.GetEnvironmentVariable("KILN_NUM_THREADS");
        return int.TryParse(env, out var n) && n > 0 ? n : Environment.ProcessorCount;
    }

    /// <summary>Runs <paramref name="body"/>(lo, hi) over [0, rows), in chunks on several threads when rows·perRow is large.</summary>
    public static void For(long rows, long perRow, Action<long, long> body)
    {
        if (rows <= 0) return;
        long work = rows * Math.Max(1, perRow);
        int threads = Threads;
        if (threads <= 1 || rows == 1 || work < MinParallelElements)
        {
            body(0, rows);
            return;
        }
        int chunks = (int)Math.Min(rows, threads * 4L);
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            long lo = rows * c / chunks, hi = rows * (c + 1) / chunks;
            if (hi > lo) body(lo, hi);
        });
    }
}

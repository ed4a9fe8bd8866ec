using System;
using System.Diagnostics;
using System.Threading;

namespace Kiln.Runtime.Cpu;

/// <summary>
/// Splits kernel work across the cores with a small persistent team of worker threads. A training step
/// runs hundreds of short kernels back to back; waking thread-pool threads for each costs more than the
/// kernels themselves (measured on the spirals model: two threads were slower than one). Team workers
/// spin briefly between kernels, so the next parallel region starts in well under a microsecond.
/// </summary>
public static class KilnParallel
{
    /// <summary>Below this many elements a kernel runs on the calling thread: handing work to another core costs more than a memory-bound loop over fewer elements.</summary>
    public static long MinParallelElements { get; set; } = 1 << 16;

    /// <summary>Degree of parallelism (defaults to the processor count; <c>KILN_NUM_THREADS</c> overrides).</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = Math.Max(1, value);
    }

    private static int _threads = ReadThreads();
    private static Team? _team;
    private static readonly object TeamLock = new();

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
        if (Threads <= 1 || rows == 1 || work < MinParallelElements)
        {
            body(0, rows);
            return;
        }
        int chunks = (int)Math.Min(rows, Threads * 4L);
        Run(chunks, c =>
        {
            long lo = rows * c / chunks, hi = rows * (c + 1) / chunks;
            if (hi > lo) body(lo, hi);
        });
    }

    /// <summary>Runs <paramref name="body"/>(i) for every i in [0, parts) across the team and returns when all are done.</summary>
    public static void Run(int parts, Action<int> body)
    {
        if (parts <= 0) return;
        if (parts == 1 || Threads <= 1)
        {
            for (int i = 0; i < parts; i++) body(i);
            return;
        }
        var team = _team;
        if (team is null || team.Size < Threads - 1)
        {
            lock (TeamLock)
            {
                team = _team;
                if (team is null || team.Size < Threads - 1) _team = team = new Team(Threads - 1);
            }
        }
        team.Run(parts, body, Threads - 1);
    }

    private sealed class Team
    {
        private const long SpinTicksMicroseconds = 200; // longer than the gap between two kernels of a step, short enough not to burn a core when idle
        private readonly object _gate = new();
        private Action<int>? _job;
        private int _parts, _next = int.MaxValue / 2, _remaining, _busy, _active;
        private long _generation;
        private Exception? _error;

        [ThreadStatic] private static bool _isWorker;

        public Team(int size)
        {
            Size = size;
            for (int i = 0; i < size; i++)
            {
                int index = i;
                new Thread(() => Loop(index)) { IsBackground = true, Name = "Kiln worker " + (i + 1) }.Start();
            }
        }

        public int Size { get; }

        public void Run(int parts, Action<int> body, int helpers)
        {
            // Nested or concurrent calls (a kernel inside a kernel, two trainers on two threads) run inline.
            if (_isWorker || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            {
                for (int i = 0; i < parts; i++) body(i);
                return;
            }
            try
            {
                _error = null;
                _job = body;
                _parts = parts;
                _active = helpers;
                Volatile.Write(ref _remaining, parts);
                Volatile.Write(ref _next, 0);
                Interlocked.Increment(ref _generation);
                lock (_gate) Monitor.PulseAll(_gate);
                Work();
                var spin = new SpinWait();
                while (Volatile.Read(ref _remaining) != 0) spin.SpinOnce(sleep1Threshold: -1);
                if (_error is { } e) throw new AggregateException("A Kiln kernel failed on a worker thread.", e);
            }
            finally
            {
                Volatile.Write(ref _next, int.MaxValue / 2);
                _job = null;
                Volatile.Write(ref _busy, 0);
            }
        }

        private void Work()
        {
            while (true)
            {
                int i = Interlocked.Increment(ref _next) - 1;
                if (i >= _parts || i < 0) return;
                var job = _job;
                try { job?.Invoke(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
                Interlocked.Decrement(ref _remaining);
            }
        }

        private void Loop(int index)
        {
            _isWorker = true;
            long seen = Volatile.Read(ref _generation);
            long spinTicks = Stopwatch.Frequency * SpinTicksMicroseconds / 1_000_000;
            while (true)
            {
                long start = Stopwatch.GetTimestamp();
                long g;
                while ((g = Volatile.Read(ref _generation)) == seen)
                {
                    if (Stopwatch.GetTimestamp() - start < spinTicks) { Thread.SpinWait(20); continue; }
                    lock (_gate)
                    {
                        while (Volatile.Read(ref _generation) == seen) Monitor.Wait(_gate);
                    }
                }
                seen = g;
                if (index < Volatile.Read(ref _active)) Work();
            }
        }
    }
}

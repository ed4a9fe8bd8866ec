using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Threading.Tasks;

namespace Kiln.Runtime.Cpu;

/// <summary>
/// Single-precision matrix multiplication for the CPU runtime. All matrices are row-major; leading dimensions
/// (<c>lda</c>, <c>ldb</c>, <c>ldc</c>) are the row strides, in elements, of the matrices as they are stored.
/// </summary>
/// <remarks>
/// Large products use a GotoBLAS/BLIS-style blocked algorithm: the k dimension is cut into panels, A and B are
/// packed into aligned per-thread buffers laid out for a register-blocked microkernel (8×48 with
/// <see cref="Vector512{T}"/> FMA, 6×16 with <see cref="Vector256{T}"/> FMA, 4×4 scalar otherwise), and the work
/// is split across cores along m or n. Skinny products choose between that path (in either orientation, reading B
/// in place when packing it would not pay) and a dot-product path, using a small cost model.
/// </remarks>
[SkipLocalsInit]
public static class Gemm
{
    /// <summary>
    /// Computes <c>C[m,n] = (accumulate ? C : 0) + op(A)[m,k] · op(B)[k,n]</c>, where <c>op(X)</c> is X or its transpose.
    /// </summary>
    /// <param name="transA">Whether A is stored transposed, as a [k,m] matrix, instead of [m,k].</param>
    /// <param name="transB">Whether B is stored transposed, as a [n,k] matrix, instead of [k,n].</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">The inner dimension.</param>
    /// <param name="a">The first element of A.</param>
    /// <param name="lda">Row stride of A as stored.</param>
    /// <param name="b">The first element of B.</param>
    /// <param name="ldb">Row stride of B as stored.</param>
    /// <param name="c">The first element of C, which must not overlap A or B.</param>
    /// <param name="ldc">Row stride of C.</param>
    /// <param name="accumulate">Add the product to C rather than overwrite C (when false, C is never read, so NaNs in it do not propagate).</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is negative or a leading dimension is smaller than its row length.</exception>
    /// <exception cref="ArgumentNullException">A pointer is null while the matrix it addresses has elements.</exception>
    public static unsafe void Sgemm(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        ValidatePointers(transA, transB, m, n, k, a, b, c);
        Run(MakeProblem(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate), Options.Default);
    }

    /// <summary>
    /// Computes <c>C[m,n] = (accumulate ? C : 0) + op(A)[m,k] · op(B)[k,n]</c> over spans, checking that each span holds its matrix.
    /// </summary>
    /// <param name="transA">Whether A is stored transposed, as a [k,m] matrix, instead of [m,k].</param>
    /// <param name="transB">Whether B is stored transposed, as a [n,k] matrix, instead of [k,n].</param>
    /// <param name="m">Rows of C.</param>
    /// <param name="n">Columns of C.</param>
    /// <param name="k">The inner dimension.</param>
    /// <param name="a">A as stored.</param>
    /// <param name="lda">Row stride of A as stored.</param>
    /// <param name="b">B as stored.</param>
    /// <param name="ldb">Row stride of B as stored.</param>
    /// <param name="c">C, which must not overlap A or B.</param>
    /// <param name="ldc">Row stride of C.</param>
    /// <param name="accumulate">Add the product to C rather than overwrite C.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is negative or a leading dimension is smaller than its row length.</exception>
    /// <exception cref="ArgumentException">A span is shorter than the matrix it must hold.</exception>
    public static unsafe void Sgemm(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        RequireLength(a.Length, transA ? k : m, transA ? m : k, lda, nameof(a), transA ? "A stored [k,m]" : "A stored [m,k]");
        RequireLength(b.Length, transB ? n : k, transB ? k : n, ldb, nameof(b), transB ? "B stored [n,k]" : "B stored [k,n]");
        RequireLength(c.Length, m, n, ldc, nameof(c), "C [m,n]");
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            Run(MakeProblem(transA, transB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate), Options.Default);
        }
    }

    /// <summary>
    /// Computes <paramref name="batch"/> independent products <c>C_i = (accumulate ? C_i : 0) + op(A_i) · op(B_i)</c>, where
    /// <c>X_i</c> starts <c>i · strideX</c> elements after <c>X_0</c>.
    /// </summary>
    /// <remarks>
    /// A stride of 0 for A or B reuses that operand for every product. When the C matrices overlap (for instance
    /// <paramref name="strideC"/> is 0) the products are applied one after another in batch order, so with
    /// <paramref name="accumulate"/> a shared C receives the sum of all of them.
    /// </remarks>
    /// <param name="batch">Number of products.</param>
    /// <param name="transA">Whether each A is stored transposed, as a [k,m] matrix.</param>
    /// <param name="transB">Whether each B is stored transposed, as a [n,k] matrix.</param>
    /// <param name="m">Rows of each C.</param>
    /// <param name="n">Columns of each C.</param>
    /// <param name="k">The inner dimension.</param>
    /// <param name="a">The first element of A_0.</param>
    /// <param name="lda">Row stride of each A as stored.</param>
    /// <param name="strideA">Elements between consecutive A matrices (0 to broadcast).</param>
    /// <param name="b">The first element of B_0.</param>
    /// <param name="ldb">Row stride of each B as stored.</param>
    /// <param name="strideB">Elements between consecutive B matrices (0 to broadcast).</param>
    /// <param name="c">The first element of C_0.</param>
    /// <param name="ldc">Row stride of each C.</param>
    /// <param name="strideC">Elements between consecutive C matrices.</param>
    /// <param name="accumulate">Add each product to its C rather than overwrite it.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size or stride is negative, or a leading dimension is smaller than its row length.</exception>
    /// <exception cref="ArgumentNullException">A pointer is null while the matrices it addresses have elements.</exception>
    public static unsafe void SgemmBatched(int batch, bool transA, bool transB, int m, int n, int k, float* a, int lda, long strideA, float* b, int ldb, long strideB, float* c, int ldc, long strideC, bool accumulate)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(strideA);
        ArgumentOutOfRangeException.ThrowIfNegative(strideB);
        ArgumentOutOfRangeException.ThrowIfNegative(strideC);
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (batch == 0)
        {
            return;
        }
        ValidatePointers(transA, transB, m, n, k, a, b, c);
        RunBatched(batch, MakeProblem(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate), strideA, strideB, strideC, Options.Default);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Internal surface: tests drive every kernel family and path on one machine through these.

    /// <summary>Register-blocked kernel family.</summary>
    internal enum KernelKind
    {
        /// <summary>Portable scalar code.</summary>
        Scalar,

        /// <summary>AVX2-class <see cref="Vector256{T}"/> with hardware FMA.</summary>
        Vector256,

        /// <summary>AVX-512 <see cref="Vector512{T}"/>.</summary>
        Vector512,
    }

    /// <summary>Which algorithm a product uses.</summary>
    internal enum PathChoice
    {
        /// <summary>Chosen by the cost model.</summary>
        Auto,

        /// <summary>Blocked, packing both operands.</summary>
        PackedB,

        /// <summary>Blocked, reading B in place where its rows are contiguous.</summary>
        DirectB,

        /// <summary>Blocked on the transposed problem Cᵀ = Bᵀ·Aᵀ, packing both operands.</summary>
        TransposedPackedB,

        /// <summary>Blocked on the transposed problem, reading its B in place where possible.</summary>
        TransposedDirectB,

        /// <summary>Dot products along k.</summary>
        Dot,
    }

    /// <summary>Overrides for tests and benchmarks.</summary>
    /// <param name="Kind">Kernel family; must be supported by the hardware for anything but speed to hold.</param>
    /// <param name="Threads">0 to decide from the problem size; otherwise exactly this many parts, run in parallel.</param>
    /// <param name="Path">Algorithm, or <see cref="PathChoice.Auto"/>.</param>
    internal readonly record struct Options(KernelKind Kind, int Threads, PathChoice Path)
    {
        /// <summary>The options public entry points use.</summary>
        public static Options Default => new(BestKind, 0, PathChoice.Auto);
    }

    /// <summary>The fastest kernel family this process can run.</summary>
    internal static KernelKind BestKind { get; } =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? KernelKind.Vector512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? KernelKind.Vector256
        : KernelKind.Scalar;

    /// <summary><see cref="Sgemm(bool, bool, int, int, int, float*, int, float*, int, float*, int, bool)"/> with overrides.</summary>
    internal static unsafe void SgemmWith(Options options, bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        Run(MakeProblem(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate), options);
    }

    /// <summary><see cref="SgemmBatched"/> with overrides.</summary>
    internal static unsafe void SgemmBatchedWith(Options options, int batch, bool transA, bool transB, int m, int n, int k, float* a, int lda, long strideA, float* b, int ldb, long strideB, float* c, int ldc, long strideC, bool accumulate)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        RunBatched(batch, MakeProblem(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate), strideA, strideB, strideC, options);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Validation.

    private static void Validate(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        RequireStride(lda, transA ? k : m, transA ? m : k, nameof(lda));
        RequireStride(ldb, transB ? n : k, transB ? k : n, nameof(ldb));
        RequireStride(ldc, m, n, nameof(ldc));
    }

    private static void RequireStride(int ld, int rows, int cols, string name)
    {
        // A single row never uses its stride, so a vector may pass any non-negative value.
        if (ld < 0 || (rows > 1 && ld < cols))
        {
            throw new ArgumentOutOfRangeException(name, ld, $"{name} is {ld} but the stored matrix has {rows} rows of {cols} elements; it must be at least {cols}.");
        }
    }

    private static unsafe void ValidatePointers(bool transA, bool transB, int m, int n, int k, float* a, float* b, float* c)
    {
        if (m > 0 && n > 0 && c == null)
        {
            throw new ArgumentNullException(nameof(c), "C is null but has m·n > 0 elements.");
        }
        if (m > 0 && n > 0 && k > 0)
        {
            if (a == null)
            {
                throw new ArgumentNullException(nameof(a), transA ? "A ([k,m]) is null but has elements." : "A ([m,k]) is null but has elements.");
            }
            if (b == null)
            {
                throw new ArgumentNullException(nameof(b), transB ? "B ([n,k]) is null but has elements." : "B ([k,n]) is null but has elements.");
            }
        }
    }

    private static void RequireLength(int length, int rows, int cols, int ld, string name, string what)
    {
        long need = rows == 0 || cols == 0 ? 0 : ((long)(rows - 1) * ld) + cols;
        if (length < need)
        {
            throw new ArgumentException($"{what} with row stride {ld} needs {need} elements but the span has {length}.", name);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Problem description. Strides are general (row stride, column stride) so that transposes, and the
    // transposed problem Cᵀ = Bᵀ·Aᵀ, are just different numbers rather than different code.

    private unsafe struct Problem
    {
        public float* A;
        public nint Rsa;
        public nint Csa;
        public float* B;
        public nint Rsb;
        public nint Csb;
        public float* C;
        public nint Rsc;
        public nint Csc;
        public int M;
        public int N;
        public int K;
        public bool Accumulate;

        public readonly Problem Transposed() => new()
        {
            A = B, Rsa = Csb, Csa = Rsb,
            B = A, Rsb = Csa, Csb = Rsa,
            C = C, Rsc = Csc, Csc = Rsc,
            M = N, N = M, K = K, Accumulate = Accumulate,
        };

        public readonly Problem Rows(int i0, int rows)
        {
            Problem p = this;
            p.A += i0 * Rsa;
            p.C += i0 * Rsc;
            p.M = rows;
            return p;
        }

        public readonly Problem Cols(int j0, int cols)
        {
            Problem p = this;
            p.B += j0 * Csb;
            p.C += j0 * Csc;
            p.N = cols;
            return p;
        }
    }

    private static unsafe Problem MakeProblem(bool transA, bool transB, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate) => new()
    {
        A = a, Rsa = transA ? 1 : lda, Csa = transA ? lda : 1,
        B = b, Rsb = transB ? 1 : ldb, Csb = transB ? ldb : 1,
        C = c, Rsc = ldc, Csc = 1,
        M = m, N = n, K = k, Accumulate = accumulate,
    };

    // ---------------------------------------------------------------------------------------------------------
    // Blocking parameters.

    private readonly struct Config
    {
        public Config(int mr, int nr, int vw, int kc, int nc, int mc)
        {
            MR = mr;
            NR = nr;
            VW = vw;
            KC = kc;
            NC = nc;
            MC = mc;
        }

        /// <summary>Rows of the microtile (broadcast A values per k step).</summary>
        public int MR { get; }

        /// <summary>Columns of the microtile (a multiple of <see cref="VW"/>).</summary>
        public int NR { get; }

        /// <summary>Vector width in floats; B panels narrower than NR are rounded up to it.</summary>
        public int VW { get; }

        /// <summary>k panel: an MR×KC A micropanel stays in L1 while B micropanels stream past it.</summary>
        public int KC { get; }

        /// <summary>Columns of B packed at once: KC×NC floats sized to sit in L2.</summary>
        public int NC { get; }

        /// <summary>Upper bound on rows of A packed at once (a multiple of MR), so the A block stays within L3.</summary>
        public int MC { get; }
    }

    // 256×480 floats of packed B is 480 KiB, half of a Zen 4 / Ice Lake L2; an 8×256 A micropanel is 8 KiB of L1.
    private static readonly Config Config512 = new(8, 48, 16, 256, 480, 1024);
    private static readonly Config Config256 = new(6, 16, 8, 256, 512, 1020);
    private static readonly Config ConfigScalar = new(4, 4, 1, 256, 256, 256);

    private static Config ConfigFor(KernelKind kind) => kind switch
    {
        KernelKind.Vector512 => Config512,
        KernelKind.Vector256 => Config256,
        _ => ConfigScalar,
    };

    // Below this many multiply-adds per thread, handing work to the thread pool costs more than it saves
    // (a Parallel.For round trip is several microseconds; 2^21 FMAs is ~40 µs of one core at peak).
    private const long FmaPerThread = 1L << 21;

    // ---------------------------------------------------------------------------------------------------------
    // Drivers.

    private static unsafe void Run(in Problem p, Options options)
    {
        if (p.M == 0 || p.N == 0)
        {
            return;
        }
        if (p.K == 0)
        {
            if (!p.Accumulate)
            {
                for (int i = 0; i < p.M; i++)
                {
                    float* row = p.C + (i * p.Rsc);
                    for (int j = 0; j < p.N; j++)
                    {
                        row[j * p.Csc] = 0f;
                    }
                }
            }
            return;
        }

        int threads = options.Threads;
        if (threads <= 0)
        {
            long fma = (long)p.M * p.N * p.K;
            threads = (int)Math.Clamp(fma / FmaPerThread, 1, Environment.ProcessorCount);
        }
        if (threads == 1)
        {
            RunSingle(p, options);
            return;
        }
        Config cfg = ConfigFor(options.Kind);

        // Split along whichever dimension duplicates less packing: every part packs its own rows of A and all of
        // its columns of B, so a split over m repacks all of B per part and a split over n repacks all of A.
        int mUnits = CeilDiv(p.M, cfg.MR);
        int nUnits = CeilDiv(p.N, cfg.VW);
        bool splitM = SplitCost(mUnits, threads, (double)p.N * p.K) <= SplitCost(nUnits, threads, (double)p.M * p.K);
        int units = splitM ? mUnits : nUnits;
        int parts = Math.Min(threads, units);
        if (parts <= 1)
        {
            RunSingle(p, options);
            return;
        }
        int unitsPerPart = CeilDiv(units, parts);
        int span = unitsPerPart * (splitM ? cfg.MR : cfg.VW);
        parts = CeilDiv(splitM ? p.M : p.N, span);
        Problem whole = p;
        Parallel.For(0, parts, part =>
        {
            int start = part * span;
            Problem sub = splitM ? whole.Rows(start, Math.Min(span, whole.M - start)) : whole.Cols(start, Math.Min(span, whole.N - start));
            RunSingle(sub, options);
        });
    }

    // Cost of the slowest part: its share of the multiply-adds plus repacking the other operand in full.
    private static double SplitCost(int units, int threads, double duplicatedPack)
    {
        int parts = Math.Min(threads, units);
        return (CeilDiv(units, Math.Max(parts, 1)) / (double)units) + (duplicatedPack * 0.3 * 16 / ((double)units * units));
    }

    private static unsafe void RunBatched(int batch, Problem p, long strideA, long strideB, long strideC, Options options)
    {
        if (batch == 0 || p.M == 0 || p.N == 0)
        {
            return;
        }

        // Products writing overlapping C must run in order; only disjoint ones may run side by side.
        long cExtent = ((long)(p.M - 1) * p.Rsc) + p.N;
        bool disjoint = strideC >= cExtent;
        long fma = (long)p.M * p.N * p.K;
        int threads = options.Threads > 0 ? options.Threads : (int)Math.Clamp(fma * batch / FmaPerThread, 1, Environment.ProcessorCount);
        bool perProductParallel = fma >= FmaPerThread * 2 || batch < threads;
        if (!disjoint || threads <= 1 || perProductParallel)
        {
            for (int i = 0; i < batch; i++)
            {
                Run(At(p, i, strideA, strideB, strideC), options);
            }
            return;
        }

        int chunk = CeilDiv(batch, threads);
        Problem first = p;
        Options single = options with { Threads = 1 };
        Parallel.For(0, CeilDiv(batch, chunk), part =>
        {
            int end = Math.Min(batch, (part + 1) * chunk);
            for (int i = part * chunk; i < end; i++)
            {
                Run(At(first, i, strideA, strideB, strideC), single);
            }
        });
    }

    private static unsafe Problem At(in Problem p, int i, long strideA, long strideB, long strideC)
    {
        Problem q = p;
        q.A += i * strideA;
        q.B += i * strideB;
        q.C += i * strideC;
        return q;
    }

    private static void RunSingle(in Problem p, Options options)
    {
        Workspace ws = Workspace.Rent();
        try
        {
            KernelKind kind = options.Kind;
            Config cfg = ConfigFor(kind);
            PathChoice path = options.Path;
            if (path == PathChoice.Auto)
            {
                path = ChoosePath(kind, cfg, p);
            }
            switch (path)
            {
                case PathChoice.Dot when kind != KernelKind.Scalar:
                    RunDot(kind, p, ws);
                    break;
                case PathChoice.TransposedPackedB:
                case PathChoice.TransposedDirectB:
                    RunBlocked(kind, cfg, p.Transposed(), path == PathChoice.TransposedDirectB, ws);
                    break;
                default:
                    RunBlocked(kind, cfg, p, path == PathChoice.DirectB, ws);
                    break;
            }
        }
        finally
        {
            Workspace.Return(ws);
        }
    }

    // Rough cycle estimates; they only have to rank the paths for skinny shapes, where the choice matters by
    // integer factors (padding a 2-wide n to a 16-wide vector, or packing an operand that is used once).
    private static PathChoice ChoosePath(KernelKind kind, in Config cfg, in Problem p)
    {
        double bestCost = BlockedCost(kind, cfg, p, out bool direct);
        PathChoice best = direct ? PathChoice.DirectB : PathChoice.PackedB;
        double transposedCost = BlockedCost(kind, cfg, p.Transposed(), out bool directT);
        if (transposedCost < bestCost)
        {
            bestCost = transposedCost;
            best = directT ? PathChoice.TransposedDirectB : PathChoice.TransposedPackedB;
        }
        if (kind != KernelKind.Scalar && Math.Min(p.M, p.N) <= 16 && DotCost(cfg, p) < bestCost)
        {
            best = PathChoice.Dot;
        }
        return best;
    }

    /// <summary>Whether the blocked path reads B in place: only when its rows are contiguous and few row tiles reuse it.</summary>
    private static bool PrefersDirectB(in Config cfg, in Problem p) => p.Csb == 1 && p.M <= 2 * cfg.MR;

    private static double BlockedCost(KernelKind kind, in Config cfg, in Problem p, out bool directB)
    {
        double m = p.M, n = p.N, k = p.K;
        directB = PrefersDirectB(cfg, p);
        double fma = k * m * CeilDiv(p.N, cfg.VW);
        double tiles = (double)CeilDiv(p.M, cfg.MR) * CeilDiv(p.N, cfg.NR) * CeilDiv(p.K, cfg.KC);
        double tileOverhead = tiles * ((2.0 * cfg.MR * cfg.NR / cfg.VW) + 20);
        double packA = m * k * (p.Rsa == 1 && kind != KernelKind.Scalar ? 0.15 : p.Csa == 1 && cfg.MR == 8 && kind != KernelKind.Scalar ? 0.3 : 1.0);
        double packB = directB ? 0 : k * n * (p.Csb == 1 && kind != KernelKind.Scalar ? 0.15 : p.Rsb == 1 && kind != KernelKind.Scalar ? 0.3 : 1.0) * CeilDiv(p.M, cfg.MC);
        double scatter = p.Csc == 1 ? 0 : m * n * 1.5;
        return fma + tileOverhead + packA + packB + scatter;
    }

    private static double DotCost(in Config cfg, in Problem p)
    {
        double m = p.M, n = p.N, k = p.K;
        // Each output needs its own horizontal reduction and a scalar tail; the loads-per-FMA ratio is worse than the
        // microkernel's, hence the 1.5.
        double cost = m * n * ((1.5 * CeilDiv(p.K, cfg.VW)) + 12 + (k % cfg.VW));
        if (p.Csa != 1)
        {
            cost += m * k;
        }
        if (p.Rsb != 1)
        {
            cost += k * n;
        }
        return cost;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RunBlocked(KernelKind kind, in Config cfg, in Problem p, bool directB, Workspace ws)
    {
        int m = p.M, n = p.N, k = p.K;
        directB &= p.Csb == 1;
        int mr = cfg.MR, nr = cfg.NR, vw = cfg.VW;

        // Even splits keep the last block from being a sliver (k = 300 packs 150 + 150, not 256 + 44).
        int mcStep = RoundUp(CeilDiv(m, CeilDiv(m, cfg.MC)), mr);
        int kcStep = CeilDiv(k, CeilDiv(k, cfg.KC));
        float* ap = ws.EnsureA((nint)mcStep * kcStep);
        float* bp = ws.EnsureB((nint)cfg.NC * kcStep);
        float* tile = stackalloc float[mr * nr];

        for (int ic = 0; ic < m; ic += mcStep)
        {
            int mc = Math.Min(mcStep, m - ic);
            for (int pc = 0; pc < k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, k - pc);
                bool add = p.Accumulate || pc > 0;
                PackA(kind, mr, ap, p.A + (ic * p.Rsa) + (pc * p.Csa), p.Rsa, p.Csa, mc, kc);
                for (int jc = 0; jc < n; jc += cfg.NC)
                {
                    int nc = Math.Min(cfg.NC, n - jc);
                    float* bsrc = p.B + (pc * p.Rsb) + (jc * p.Csb);

                    // Reading B in place needs every panel to be whole vectors; a ragged last panel is packed alone.
                    int ragged = nc % vw == 0 ? nc : nc - (nc % nr);
                    if (!directB)
                    {
                        PackB(kind, cfg, bp, bsrc, p.Rsb, p.Csb, kc, nc);
                    }
                    else if (ragged < nc)
                    {
                        PackB(kind, cfg, bp, bsrc + ragged, p.Rsb, p.Csb, kc, nc - ragged);
                    }

                    for (int ir = 0; ir < mc; ir += mr)
                    {
                        int rows = Math.Min(mr, mc - ir);
                        float* apan = ap + ((nint)(ir / mr) * kc * mr);
                        float* crow = p.C + ((ic + ir) * p.Rsc) + (jc * p.Csc);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int cols = Math.Min(nr, nc - jr);
                            int nv = CeilDiv(cols, vw);
                            int width = nv * vw;
                            float* bpan;
                            nint bs;
                            if (!directB)
                            {
                                bpan = bp + ((nint)jr * kc);
                                bs = width;
                            }
                            else if (jr < ragged)
                            {
                                bpan = bsrc + jr;
                                bs = p.Rsb;
                            }
                            else
                            {
                                bpan = bp;
                                bs = width;
                            }

                            float* ctile = crow + (jr * p.Csc);
                            if (p.Csc == 1 && cols == width)
                            {
                                Micro(kind, rows, nv, kc, apan, bpan, bs, ctile, p.Rsc, add);
                            }
                            else
                            {
                                // Ragged or transposed C: compute the whole tile aside, then merge the valid part.
                                Micro(kind, rows, nv, kc, apan, bpan, bs, tile, width, false);
                                MergeTile(tile, width, rows, cols, ctile, p.Rsc, p.Csc, add);
                            }
                        }
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void MergeTile(float* tile, int width, int rows, int cols, float* c, nint rsc, nint csc, bool add)
    {
        for (int r = 0; r < rows; r++)
        {
            float* src = tile + (r * width);
            float* dst = c + (r * rsc);
            if (add)
            {
                for (int j = 0; j < cols; j++)
                {
                    dst[j * csc] += src[j];
                }
            }
            else
            {
                for (int j = 0; j < cols; j++)
                {
                    dst[j * csc] = src[j];
                }
            }
        }
    }

    private static unsafe void Micro(KernelKind kind, int rows, int nv, int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        switch (kind)
        {
            case KernelKind.Vector512:
                if (rows == 8)
                {
                    switch (nv)
                    {
                        case 3: Full512x3(kc, a, b, bs, c, ldc, add); break;
                        case 2: Full512x2(kc, a, b, bs, c, ldc, add); break;
                        default: Full512x1(kc, a, b, bs, c, ldc, add); break;
                    }
                }
                else
                {
                    switch (nv)
                    {
                        case 3: Edge512x3(rows, kc, a, b, bs, c, ldc, add); break;
                        case 2: Edge512x2(rows, kc, a, b, bs, c, ldc, add); break;
                        default: Edge512x1(rows, kc, a, b, bs, c, ldc, add); break;
                    }
                }
                break;
            case KernelKind.Vector256:
                if (rows == 6)
                {
                    if (nv == 2)
                    {
                        Full256x2(kc, a, b, bs, c, ldc, add);
                    }
                    else
                    {
                        Full256x1(kc, a, b, bs, c, ldc, add);
                    }
                }
                else if (nv == 2)
                {
                    Edge256x2(rows, kc, a, b, bs, c, ldc, add);
                }
                else
                {
                    Edge256x1(rows, kc, a, b, bs, c, ldc, add);
                }
                break;
            default:
                ScalarKernel(rows, nv, kc, a, b, bs, c, ldc, add);
                break;
        }
    }

    // MR = 4, panel width = nv columns.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ScalarKernel(int rows, int cols, int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        float* acc = stackalloc float[16];
        new Span<float>(acc, 16).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int r = 0; r < rows; r++)
            {
                float ar = a[r];
                float* accRow = acc + (r * 4);
                for (int j = 0; j < cols; j++)
                {
                    accRow[j] += ar * b[j];
                }
            }
            a += 4;
            b += bs;
        }
        for (int r = 0; r < rows; r++)
        {
            float* cr = c + (r * ldc);
            for (int j = 0; j < cols; j++)
            {
                cr[j] = add ? cr[j] + acc[(r * 4) + j] : acc[(r * 4) + j];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Put512(float* c, Vector512<float> v, bool add)
    {
        if (add)
        {
            v += Vector512.Load(c);
        }
        Vector512.Store(v, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Put256(float* c, Vector256<float> v, bool add)
    {
        if (add)
        {
            v += Vector256.Load(c);
        }
        Vector256.Store(v, c);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Packing. A micropanels hold, for each k, MR consecutive rows; B micropanels hold, for each k, one panel's
    // columns, with columns past the edge zeroed so the kernels never need a ragged case inside their k loop.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackA(KernelKind kind, int mr, float* dst, float* a, nint rsa, nint csa, int mc, int kc)
    {
        bool vec = kind != KernelKind.Scalar;
        for (int i0 = 0; i0 < mc; i0 += mr)
        {
            int rows = Math.Min(mr, mc - i0);
            float* src = a + (i0 * rsa);
            float* d = dst + ((nint)(i0 / mr) * kc * mr);
            int p = 0;
            if (vec && rows == 8 && mr == 8 && csa == 1 && Avx.IsSupported)
            {
                // Row-major A: eight rows become eight k-steps of eight values via an in-register transpose.
                for (; p <= kc - 8; p += 8)
                {
                    Transpose8x8(src + p, rsa, d + (p * 8), 8);
                }
            }
            else if (vec && rows == 8 && mr == 8 && rsa == 1)
            {
                // Transposed A: each k-step is already eight contiguous values.
                for (; p < kc; p++)
                {
                    Vector256.Store(Vector256.Load(src + (p * csa)), d + (p * 8));
                }
            }
            // A ragged panel (rows < MR) only ever meets the edge kernels, which never read past `rows`, so its
            // padding is left unwritten.
            for (; p < kc; p++)
            {
                float* s = src + (p * csa);
                float* dp = d + (p * mr);
                for (int r = 0; r < rows; r++)
                {
                    dp[r] = s[r * rsa];
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackB(KernelKind kind, in Config cfg, float* dst, float* b, nint rsb, nint csb, int kc, int nc)
    {
        bool vec = kind != KernelKind.Scalar;
        for (int j0 = 0; j0 < nc; j0 += cfg.NR)
        {
            int cols = Math.Min(cfg.NR, nc - j0);
            int width = RoundUp(cols, cfg.VW);
            float* src = b + (j0 * csb);
            float* d = dst + ((nint)j0 * kc);
            int p = 0;
            if (vec && csb == 1 && cols == width)
            {
                for (; p < kc; p++)
                {
                    float* s = src + (p * rsb);
                    float* dp = d + (p * width);
                    for (int j = 0; j < width; j += 8)
                    {
                        Vector256.Store(Vector256.Load(s + j), dp + j);
                    }
                }
            }
            else if (vec && rsb == 1 && cols == width && width % 8 == 0 && Avx.IsSupported)
            {
                // Bᵀ stored row-major: eight of its rows (B's columns) at a time turn into k-steps by transposition.
                for (; p <= kc - 8; p += 8)
                {
                    for (int j = 0; j < width; j += 8)
                    {
                        Transpose8x8(src + (j * csb) + p, csb, d + (p * width) + j, width);
                    }
                }
            }
            for (; p < kc; p++)
            {
                float* s = src + (p * rsb);
                float* dp = d + (p * width);
                int j = 0;
                for (; j < cols; j++)
                {
                    dp[j] = s[j * csb];
                }
                for (; j < width; j++)
                {
                    dp[j] = 0f;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Transpose8x8(float* src, nint srcStride, float* dst, nint dstStride)
    {
        Vector256<float> r0 = Avx.LoadVector256(src);
        Vector256<float> r1 = Avx.LoadVector256(src + srcStride);
        Vector256<float> r2 = Avx.LoadVector256(src + (2 * srcStride));
        Vector256<float> r3 = Avx.LoadVector256(src + (3 * srcStride));
        Vector256<float> r4 = Avx.LoadVector256(src + (4 * srcStride));
        Vector256<float> r5 = Avx.LoadVector256(src + (5 * srcStride));
        Vector256<float> r6 = Avx.LoadVector256(src + (6 * srcStride));
        Vector256<float> r7 = Avx.LoadVector256(src + (7 * srcStride));

        Vector256<float> t0 = Avx.UnpackLow(r0, r1);
        Vector256<float> t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3);
        Vector256<float> t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5);
        Vector256<float> t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7);
        Vector256<float> t7 = Avx.UnpackHigh(r6, r7);

        Vector256<float> s0 = Avx.Shuffle(t0, t2, 0x44);
        Vector256<float> s1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> s2 = Avx.Shuffle(t1, t3, 0x44);
        Vector256<float> s3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t4, t6, 0x44);
        Vector256<float> s5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> s6 = Avx.Shuffle(t5, t7, 0x44);
        Vector256<float> s7 = Avx.Shuffle(t5, t7, 0xEE);

        Avx.Store(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(dst + (2 * dstStride), Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(dst + (3 * dstStride), Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(dst + (4 * dstStride), Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(dst + (5 * dstStride), Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(dst + (6 * dstStride), Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(dst + (7 * dstStride), Avx.Permute2x128(s3, s7, 0x31));
    }

    // ---------------------------------------------------------------------------------------------------------
    // Dot-product path: C[i,j] = A[i,:]·B[:,j] with both vectors contiguous along k. Wins when m or n is tiny,
    // where the blocked path would pad a 1..4-wide dimension to a whole vector or microtile.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RunDot(KernelKind kind, in Problem p, Workspace ws)
    {
        int m = p.M, n = p.N, k = p.K;
        float* a = p.A;
        nint lda = p.Rsa;
        if (p.Csa != 1)
        {
            a = ws.EnsureA((nint)m * k);
            CopyToRows(p.A, p.Rsa, p.Csa, m, k, a);
            lda = k;
        }
        float* b = p.B;
        nint ldb = p.Csb;
        if (p.Rsb != 1)
        {
            // Column j of B becomes row j of the copy.
            b = ws.EnsureB((nint)n * k);
            CopyToRows(p.B, p.Csb, p.Rsb, n, k, b);
            ldb = k;
        }
        for (int i = 0; i < m; i += 4)
        {
            int rows = Math.Min(4, m - i);
            for (int j = 0; j < n; j += 4)
            {
                int cols = Math.Min(4, n - j);
                float* ai = a + (i * lda);
                float* bj = b + (j * ldb);
                float* cij = p.C + (i * p.Rsc) + (j * p.Csc);
                if (kind == KernelKind.Vector512)
                {
                    Dot512(rows, cols, k, ai, lda, bj, ldb, cij, p.Rsc, p.Csc, p.Accumulate);
                }
                else
                {
                    Dot256(rows, cols, k, ai, lda, bj, ldb, cij, p.Rsc, p.Csc, p.Accumulate);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void CopyToRows(float* src, nint rs, nint cs, int rows, int cols, float* dst)
    {
        for (int i = 0; i < rows; i++)
        {
            float* s = src + (i * rs);
            float* d = dst + ((nint)i * cols);
            for (int j = 0; j < cols; j++)
            {
                d[j] = s[j * cs];
            }
        }
    }

    // Adds the k tail the vector loop left over, then writes the tile.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void DotFinish(int rows, int cols, int k, int p0, float* a, nint lda, float* b, nint ldb, float* sums, float* c, nint rsc, nint csc, bool add)
    {
        for (int r = 0; r < rows; r++)
        {
            float* ar = a + (r * lda);
            for (int s = 0; s < cols; s++)
            {
                float* bs = b + (s * ldb);
                float sum = sums[(r * 4) + s];
                for (int p = p0; p < k; p++)
                {
                    sum += ar[p] * bs[p];
                }
                float* cp = c + (r * rsc) + (s * csc);
                *cp = add ? *cp + sum : sum;
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Per-thread packing buffers. A thread takes its buffers out of the slot while it uses them, so a nested call
    // on the same thread (a callback, an inlined task) gets fresh ones instead of trampling live data. They are
    // pinned managed arrays so that a thread pool thread retiring does not leak them.

    private sealed unsafe class Workspace
    {
        [ThreadStatic]
        private static Workspace? t_cached;

        private float[]? _a;
        private float[]? _b;
        private float* _pa;
        private float* _pb;
        private nint _capA;
        private nint _capB;

        public static Workspace Rent()
        {
            Workspace ws = t_cached ?? new Workspace();
            t_cached = null;
            return ws;
        }

        public static void Return(Workspace ws) => t_cached = ws;

        public float* EnsureA(nint floats)
        {
            if (floats > _capA)
            {
                _pa = Allocate(floats, out _a);
                _capA = floats;
            }
            return _pa;
        }

        public float* EnsureB(nint floats)
        {
            if (floats > _capB)
            {
                _pb = Allocate(floats, out _b);
                _capB = floats;
            }
            return _pb;
        }

        private static float* Allocate(nint floats, out float[] array)
        {
            // 16 spare floats let the start move up to a 64-byte boundary.
            array = GC.AllocateUninitializedArray<float>(checked((int)(floats + 16)), pinned: true);
            nint p = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
            return (float*)((p + 63) & ~(nint)63);
        }
    }

    private static int CeilDiv(int x, int y) => (x + y - 1) / y;

    private static int RoundUp(int x, int y) => CeilDiv(x, y) * y;

    // ---- generated kernels begin ----
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Full512x1(int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector512<float> c00 = default, c10 = default, c20 = default, c30 = default, c40 = default, c50 = default;
        Vector512<float> c60 = default, c70 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> ar = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(ar, b0, c00);
            ar = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(ar, b0, c10);
            ar = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(ar, b0, c20);
            ar = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(ar, b0, c30);
            ar = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(ar, b0, c40);
            ar = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(ar, b0, c50);
            ar = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(ar, b0, c60);
            ar = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(ar, b0, c70);
            a += 8;
            b += bs;
        }
        Put512(c + 0, c00, add);
        c += ldc;
        Put512(c + 0, c10, add);
        c += ldc;
        Put512(c + 0, c20, add);
        c += ldc;
        Put512(c + 0, c30, add);
        c += ldc;
        Put512(c + 0, c40, add);
        c += ldc;
        Put512(c + 0, c50, add);
        c += ldc;
        Put512(c + 0, c60, add);
        c += ldc;
        Put512(c + 0, c70, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Full512x2(int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> ar = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(ar, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(ar, b1, c01);
            ar = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(ar, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(ar, b1, c11);
            ar = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(ar, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(ar, b1, c21);
            ar = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(ar, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(ar, b1, c31);
            ar = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(ar, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(ar, b1, c41);
            ar = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(ar, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(ar, b1, c51);
            ar = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(ar, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(ar, b1, c61);
            ar = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(ar, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(ar, b1, c71);
            a += 8;
            b += bs;
        }
        Put512(c + 0, c00, add);
        Put512(c + 16, c01, add);
        c += ldc;
        Put512(c + 0, c10, add);
        Put512(c + 16, c11, add);
        c += ldc;
        Put512(c + 0, c20, add);
        Put512(c + 16, c21, add);
        c += ldc;
        Put512(c + 0, c30, add);
        Put512(c + 16, c31, add);
        c += ldc;
        Put512(c + 0, c40, add);
        Put512(c + 16, c41, add);
        c += ldc;
        Put512(c + 0, c50, add);
        Put512(c + 16, c51, add);
        c += ldc;
        Put512(c + 0, c60, add);
        Put512(c + 16, c61, add);
        c += ldc;
        Put512(c + 0, c70, add);
        Put512(c + 16, c71, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Full512x3(int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c50 = default, c51 = default, c52 = default;
        Vector512<float> c60 = default, c61 = default, c62 = default, c70 = default, c71 = default, c72 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> b2 = Vector512.Load(b + 32);
            Vector512<float> ar = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(ar, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(ar, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(ar, b2, c02);
            ar = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(ar, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(ar, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(ar, b2, c12);
            ar = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(ar, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(ar, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(ar, b2, c22);
            ar = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(ar, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(ar, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(ar, b2, c32);
            ar = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(ar, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(ar, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(ar, b2, c42);
            ar = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(ar, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(ar, b1, c51);
            c52 = Vector512.FusedMultiplyAdd(ar, b2, c52);
            ar = Vector512.Create(a[6]);
            c60 = Vector512.FusedMultiplyAdd(ar, b0, c60);
            c61 = Vector512.FusedMultiplyAdd(ar, b1, c61);
            c62 = Vector512.FusedMultiplyAdd(ar, b2, c62);
            ar = Vector512.Create(a[7]);
            c70 = Vector512.FusedMultiplyAdd(ar, b0, c70);
            c71 = Vector512.FusedMultiplyAdd(ar, b1, c71);
            c72 = Vector512.FusedMultiplyAdd(ar, b2, c72);
            a += 8;
            b += bs;
        }
        Put512(c + 0, c00, add);
        Put512(c + 16, c01, add);
        Put512(c + 32, c02, add);
        c += ldc;
        Put512(c + 0, c10, add);
        Put512(c + 16, c11, add);
        Put512(c + 32, c12, add);
        c += ldc;
        Put512(c + 0, c20, add);
        Put512(c + 16, c21, add);
        Put512(c + 32, c22, add);
        c += ldc;
        Put512(c + 0, c30, add);
        Put512(c + 16, c31, add);
        Put512(c + 32, c32, add);
        c += ldc;
        Put512(c + 0, c40, add);
        Put512(c + 16, c41, add);
        Put512(c + 32, c42, add);
        c += ldc;
        Put512(c + 0, c50, add);
        Put512(c + 16, c51, add);
        Put512(c + 32, c52, add);
        c += ldc;
        Put512(c + 0, c60, add);
        Put512(c + 16, c61, add);
        Put512(c + 32, c62, add);
        c += ldc;
        Put512(c + 0, c70, add);
        Put512(c + 16, c71, add);
        Put512(c + 32, c72, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Edge512x1(int rows, int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector512<float> c00 = default, c10 = default, c20 = default, c30 = default, c40 = default, c50 = default;
        Vector512<float> c60 = default, c70 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> ar = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(ar, b0, c00);
            if (rows > 1)
            {
                ar = Vector512.Create(a[1]);
                c10 = Vector512.FusedMultiplyAdd(ar, b0, c10);
            }
            if (rows > 2)
            {
                ar = Vector512.Create(a[2]);
                c20 = Vector512.FusedMultiplyAdd(ar, b0, c20);
            }
            if (rows > 3)
            {
                ar = Vector512.Create(a[3]);
                c30 = Vector512.FusedMultiplyAdd(ar, b0, c30);
            }
            if (rows > 4)
            {
                ar = Vector512.Create(a[4]);
                c40 = Vector512.FusedMultiplyAdd(ar, b0, c40);
            }
            if (rows > 5)
            {
                ar = Vector512.Create(a[5]);
                c50 = Vector512.FusedMultiplyAdd(ar, b0, c50);
            }
            if (rows > 6)
            {
                ar = Vector512.Create(a[6]);
                c60 = Vector512.FusedMultiplyAdd(ar, b0, c60);
            }
            if (rows > 7)
            {
                ar = Vector512.Create(a[7]);
                c70 = Vector512.FusedMultiplyAdd(ar, b0, c70);
            }
            a += 8;
            b += bs;
        }
        Put512(c + 0, c00, add);
        c += ldc;
        if (rows <= 1)
        {
            return;
        }
        Put512(c + 0, c10, add);
        c += ldc;
        if (rows <= 2)
        {
            return;
        }
        Put512(c + 0, c20, add);
        c += ldc;
        if (rows <= 3)
        {
            return;
        }
        Put512(c + 0, c30, add);
        c += ldc;
        if (rows <= 4)
        {
            return;
        }
        Put512(c + 0, c40, add);
        c += ldc;
        if (rows <= 5)
        {
            return;
        }
        Put512(c + 0, c50, add);
        c += ldc;
        if (rows <= 6)
        {
            return;
        }
        Put512(c + 0, c60, add);
        c += ldc;
        if (rows <= 7)
        {
            return;
        }
        Put512(c + 0, c70, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Edge512x2(int rows, int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> ar = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(ar, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(ar, b1, c01);
            if (rows > 1)
            {
                ar = Vector512.Create(a[1]);
                c10 = Vector512.FusedMultiplyAdd(ar, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(ar, b1, c11);
            }
            if (rows > 2)
            {
                ar = Vector512.Create(a[2]);
                c20 = Vector512.FusedMultiplyAdd(ar, b0, c20);
                c21 = Vector512.FusedMultiplyAdd(ar, b1, c21);
            }
            if (rows > 3)
            {
                ar = Vector512.Create(a[3]);
                c30 = Vector512.FusedMultiplyAdd(ar, b0, c30);
                c31 = Vector512.FusedMultiplyAdd(ar, b1, c31);
            }
            if (rows > 4)
            {
                ar = Vector512.Create(a[4]);
                c40 = Vector512.FusedMultiplyAdd(ar, b0, c40);
                c41 = Vector512.FusedMultiplyAdd(ar, b1, c41);
            }
            if (rows > 5)
            {
                ar = Vector512.Create(a[5]);
                c50 = Vector512.FusedMultiplyAdd(ar, b0, c50);
                c51 = Vector512.FusedMultiplyAdd(ar, b1, c51);
            }
            if (rows > 6)
            {
                ar = Vector512.Create(a[6]);
                c60 = Vector512.FusedMultiplyAdd(ar, b0, c60);
                c61 = Vector512.FusedMultiplyAdd(ar, b1, c61);
            }
            if (rows > 7)
            {
                ar = Vector512.Create(a[7]);
                c70 = Vector512.FusedMultiplyAdd(ar, b0, c70);
                c71 = Vector512.FusedMultiplyAdd(ar, b1, c71);
            }
            a += 8;
            b += bs;
        }
        Put512(c + 0, c00, add);
        Put512(c + 16, c01, add);
        c += ldc;
        if (rows <= 1)
        {
            return;
        }
        Put512(c + 0, c10, add);
        Put512(c + 16, c11, add);
        c += ldc;
        if (rows <= 2)
        {
            return;
        }
        Put512(c + 0, c20, add);
        Put512(c + 16, c21, add);
        c += ldc;
        if (rows <= 3)
        {
            return;
        }
        Put512(c + 0, c30, add);
        Put512(c + 16, c31, add);
        c += ldc;
        if (rows <= 4)
        {
            return;
        }
        Put512(c + 0, c40, add);
        Put512(c + 16, c41, add);
        c += ldc;
        if (rows <= 5)
        {
            return;
        }
        Put512(c + 0, c50, add);
        Put512(c + 16, c51, add);
        c += ldc;
        if (rows <= 6)
        {
            return;
        }
        Put512(c + 0, c60, add);
        Put512(c + 16, c61, add);
        c += ldc;
        if (rows <= 7)
        {
            return;
        }
        Put512(c + 0, c70, add);
        Put512(c + 16, c71, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Edge512x3(int rows, int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c50 = default, c51 = default, c52 = default;
        Vector512<float> c60 = default, c61 = default, c62 = default, c70 = default, c71 = default, c72 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> b2 = Vector512.Load(b + 32);
            Vector512<float> ar = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(ar, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(ar, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(ar, b2, c02);
            if (rows > 1)
            {
                ar = Vector512.Create(a[1]);
                c10 = Vector512.FusedMultiplyAdd(ar, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(ar, b1, c11);
                c12 = Vector512.FusedMultiplyAdd(ar, b2, c12);
            }
            if (rows > 2)
            {
                ar = Vector512.Create(a[2]);
                c20 = Vector512.FusedMultiplyAdd(ar, b0, c20);
                c21 = Vector512.FusedMultiplyAdd(ar, b1, c21);
                c22 = Vector512.FusedMultiplyAdd(ar, b2, c22);
            }
            if (rows > 3)
            {
                ar = Vector512.Create(a[3]);
                c30 = Vector512.FusedMultiplyAdd(ar, b0, c30);
                c31 = Vector512.FusedMultiplyAdd(ar, b1, c31);
                c32 = Vector512.FusedMultiplyAdd(ar, b2, c32);
            }
            if (rows > 4)
            {
                ar = Vector512.Create(a[4]);
                c40 = Vector512.FusedMultiplyAdd(ar, b0, c40);
                c41 = Vector512.FusedMultiplyAdd(ar, b1, c41);
                c42 = Vector512.FusedMultiplyAdd(ar, b2, c42);
            }
            if (rows > 5)
            {
                ar = Vector512.Create(a[5]);
                c50 = Vector512.FusedMultiplyAdd(ar, b0, c50);
                c51 = Vector512.FusedMultiplyAdd(ar, b1, c51);
                c52 = Vector512.FusedMultiplyAdd(ar, b2, c52);
            }
            if (rows > 6)
            {
                ar = Vector512.Create(a[6]);
                c60 = Vector512.FusedMultiplyAdd(ar, b0, c60);
                c61 = Vector512.FusedMultiplyAdd(ar, b1, c61);
                c62 = Vector512.FusedMultiplyAdd(ar, b2, c62);
            }
            if (rows > 7)
            {
                ar = Vector512.Create(a[7]);
                c70 = Vector512.FusedMultiplyAdd(ar, b0, c70);
                c71 = Vector512.FusedMultiplyAdd(ar, b1, c71);
                c72 = Vector512.FusedMultiplyAdd(ar, b2, c72);
            }
            a += 8;
            b += bs;
        }
        Put512(c + 0, c00, add);
        Put512(c + 16, c01, add);
        Put512(c + 32, c02, add);
        c += ldc;
        if (rows <= 1)
        {
            return;
        }
        Put512(c + 0, c10, add);
        Put512(c + 16, c11, add);
        Put512(c + 32, c12, add);
        c += ldc;
        if (rows <= 2)
        {
            return;
        }
        Put512(c + 0, c20, add);
        Put512(c + 16, c21, add);
        Put512(c + 32, c22, add);
        c += ldc;
        if (rows <= 3)
        {
            return;
        }
        Put512(c + 0, c30, add);
        Put512(c + 16, c31, add);
        Put512(c + 32, c32, add);
        c += ldc;
        if (rows <= 4)
        {
            return;
        }
        Put512(c + 0, c40, add);
        Put512(c + 16, c41, add);
        Put512(c + 32, c42, add);
        c += ldc;
        if (rows <= 5)
        {
            return;
        }
        Put512(c + 0, c50, add);
        Put512(c + 16, c51, add);
        Put512(c + 32, c52, add);
        c += ldc;
        if (rows <= 6)
        {
            return;
        }
        Put512(c + 0, c60, add);
        Put512(c + 16, c61, add);
        Put512(c + 32, c62, add);
        c += ldc;
        if (rows <= 7)
        {
            return;
        }
        Put512(c + 0, c70, add);
        Put512(c + 16, c71, add);
        Put512(c + 32, c72, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Full256x1(int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector256<float> c00 = default, c10 = default, c20 = default, c30 = default, c40 = default, c50 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> ar = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(ar, b0, c00);
            ar = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(ar, b0, c10);
            ar = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(ar, b0, c20);
            ar = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(ar, b0, c30);
            ar = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(ar, b0, c40);
            ar = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(ar, b0, c50);
            a += 6;
            b += bs;
        }
        Put256(c + 0, c00, add);
        c += ldc;
        Put256(c + 0, c10, add);
        c += ldc;
        Put256(c + 0, c20, add);
        c += ldc;
        Put256(c + 0, c30, add);
        c += ldc;
        Put256(c + 0, c40, add);
        c += ldc;
        Put256(c + 0, c50, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Full256x2(int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> ar = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(ar, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(ar, b1, c01);
            ar = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(ar, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(ar, b1, c11);
            ar = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(ar, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(ar, b1, c21);
            ar = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(ar, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(ar, b1, c31);
            ar = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(ar, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(ar, b1, c41);
            ar = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(ar, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(ar, b1, c51);
            a += 6;
            b += bs;
        }
        Put256(c + 0, c00, add);
        Put256(c + 8, c01, add);
        c += ldc;
        Put256(c + 0, c10, add);
        Put256(c + 8, c11, add);
        c += ldc;
        Put256(c + 0, c20, add);
        Put256(c + 8, c21, add);
        c += ldc;
        Put256(c + 0, c30, add);
        Put256(c + 8, c31, add);
        c += ldc;
        Put256(c + 0, c40, add);
        Put256(c + 8, c41, add);
        c += ldc;
        Put256(c + 0, c50, add);
        Put256(c + 8, c51, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Edge256x1(int rows, int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector256<float> c00 = default, c10 = default, c20 = default, c30 = default, c40 = default, c50 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> ar = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(ar, b0, c00);
            if (rows > 1)
            {
                ar = Vector256.Create(a[1]);
                c10 = Vector256.FusedMultiplyAdd(ar, b0, c10);
            }
            if (rows > 2)
            {
                ar = Vector256.Create(a[2]);
                c20 = Vector256.FusedMultiplyAdd(ar, b0, c20);
            }
            if (rows > 3)
            {
                ar = Vector256.Create(a[3]);
                c30 = Vector256.FusedMultiplyAdd(ar, b0, c30);
            }
            if (rows > 4)
            {
                ar = Vector256.Create(a[4]);
                c40 = Vector256.FusedMultiplyAdd(ar, b0, c40);
            }
            if (rows > 5)
            {
                ar = Vector256.Create(a[5]);
                c50 = Vector256.FusedMultiplyAdd(ar, b0, c50);
            }
            a += 6;
            b += bs;
        }
        Put256(c + 0, c00, add);
        c += ldc;
        if (rows <= 1)
        {
            return;
        }
        Put256(c + 0, c10, add);
        c += ldc;
        if (rows <= 2)
        {
            return;
        }
        Put256(c + 0, c20, add);
        c += ldc;
        if (rows <= 3)
        {
            return;
        }
        Put256(c + 0, c30, add);
        c += ldc;
        if (rows <= 4)
        {
            return;
        }
        Put256(c + 0, c40, add);
        c += ldc;
        if (rows <= 5)
        {
            return;
        }
        Put256(c + 0, c50, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Edge256x2(int rows, int kc, float* a, float* b, nint bs, float* c, nint ldc, bool add)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> ar = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(ar, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(ar, b1, c01);
            if (rows > 1)
            {
                ar = Vector256.Create(a[1]);
                c10 = Vector256.FusedMultiplyAdd(ar, b0, c10);
                c11 = Vector256.FusedMultiplyAdd(ar, b1, c11);
            }
            if (rows > 2)
            {
                ar = Vector256.Create(a[2]);
                c20 = Vector256.FusedMultiplyAdd(ar, b0, c20);
                c21 = Vector256.FusedMultiplyAdd(ar, b1, c21);
            }
            if (rows > 3)
            {
                ar = Vector256.Create(a[3]);
                c30 = Vector256.FusedMultiplyAdd(ar, b0, c30);
                c31 = Vector256.FusedMultiplyAdd(ar, b1, c31);
            }
            if (rows > 4)
            {
                ar = Vector256.Create(a[4]);
                c40 = Vector256.FusedMultiplyAdd(ar, b0, c40);
                c41 = Vector256.FusedMultiplyAdd(ar, b1, c41);
            }
            if (rows > 5)
            {
                ar = Vector256.Create(a[5]);
                c50 = Vector256.FusedMultiplyAdd(ar, b0, c50);
                c51 = Vector256.FusedMultiplyAdd(ar, b1, c51);
            }
            a += 6;
            b += bs;
        }
        Put256(c + 0, c00, add);
        Put256(c + 8, c01, add);
        c += ldc;
        if (rows <= 1)
        {
            return;
        }
        Put256(c + 0, c10, add);
        Put256(c + 8, c11, add);
        c += ldc;
        if (rows <= 2)
        {
            return;
        }
        Put256(c + 0, c20, add);
        Put256(c + 8, c21, add);
        c += ldc;
        if (rows <= 3)
        {
            return;
        }
        Put256(c + 0, c30, add);
        Put256(c + 8, c31, add);
        c += ldc;
        if (rows <= 4)
        {
            return;
        }
        Put256(c + 0, c40, add);
        Put256(c + 8, c41, add);
        c += ldc;
        if (rows <= 5)
        {
            return;
        }
        Put256(c + 0, c50, add);
        Put256(c + 8, c51, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Dot512(int rows, int cols, int k, float* a, nint lda, float* b, nint ldb, float* c, nint rsc, nint csc, bool add)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> a1 = default, a2 = default, a3 = default;
        float* a1p = a + lda, a2p = a1p + lda, a3p = a2p + lda;
        float* b1p = b + ldb, b2p = b1p + ldb, b3p = b2p + ldb;
        int p = 0;
        for (; p <= k - 16; p += 16)
        {
            Vector512<float> a0 = Vector512.Load(a + p);
            if (rows > 1)
            {
                a1 = Vector512.Load(a1p + p);
            }
            if (rows > 2)
            {
                a2 = Vector512.Load(a2p + p);
            }
            if (rows > 3)
            {
                a3 = Vector512.Load(a3p + p);
            }
            Vector512<float> bv0 = Vector512.Load(b + p);
            c00 = Vector512.FusedMultiplyAdd(a0, bv0, c00);
            if (rows > 1)
            {
                c10 = Vector512.FusedMultiplyAdd(a1, bv0, c10);
            }
            if (rows > 2)
            {
                c20 = Vector512.FusedMultiplyAdd(a2, bv0, c20);
            }
            if (rows > 3)
            {
                c30 = Vector512.FusedMultiplyAdd(a3, bv0, c30);
            }
            if (cols > 1)
            {
                Vector512<float> bv1 = Vector512.Load(b1p + p);
                c01 = Vector512.FusedMultiplyAdd(a0, bv1, c01);
                if (rows > 1)
                {
                    c11 = Vector512.FusedMultiplyAdd(a1, bv1, c11);
                }
                if (rows > 2)
                {
                    c21 = Vector512.FusedMultiplyAdd(a2, bv1, c21);
                }
                if (rows > 3)
                {
                    c31 = Vector512.FusedMultiplyAdd(a3, bv1, c31);
                }
            }
            if (cols > 2)
            {
                Vector512<float> bv2 = Vector512.Load(b2p + p);
                c02 = Vector512.FusedMultiplyAdd(a0, bv2, c02);
                if (rows > 1)
                {
                    c12 = Vector512.FusedMultiplyAdd(a1, bv2, c12);
                }
                if (rows > 2)
                {
                    c22 = Vector512.FusedMultiplyAdd(a2, bv2, c22);
                }
                if (rows > 3)
                {
                    c32 = Vector512.FusedMultiplyAdd(a3, bv2, c32);
                }
            }
            if (cols > 3)
            {
                Vector512<float> bv3 = Vector512.Load(b3p + p);
                c03 = Vector512.FusedMultiplyAdd(a0, bv3, c03);
                if (rows > 1)
                {
                    c13 = Vector512.FusedMultiplyAdd(a1, bv3, c13);
                }
                if (rows > 2)
                {
                    c23 = Vector512.FusedMultiplyAdd(a2, bv3, c23);
                }
                if (rows > 3)
                {
                    c33 = Vector512.FusedMultiplyAdd(a3, bv3, c33);
                }
            }
        }
        float* sums = stackalloc float[16];
        sums[0] = Vector512.Sum(c00);
        sums[1] = Vector512.Sum(c01);
        sums[2] = Vector512.Sum(c02);
        sums[3] = Vector512.Sum(c03);
        sums[4] = Vector512.Sum(c10);
        sums[5] = Vector512.Sum(c11);
        sums[6] = Vector512.Sum(c12);
        sums[7] = Vector512.Sum(c13);
        sums[8] = Vector512.Sum(c20);
        sums[9] = Vector512.Sum(c21);
        sums[10] = Vector512.Sum(c22);
        sums[11] = Vector512.Sum(c23);
        sums[12] = Vector512.Sum(c30);
        sums[13] = Vector512.Sum(c31);
        sums[14] = Vector512.Sum(c32);
        sums[15] = Vector512.Sum(c33);
        DotFinish(rows, cols, k, p, a, lda, b, ldb, sums, c, rsc, csc, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Dot256(int rows, int cols, int k, float* a, nint lda, float* b, nint ldb, float* c, nint rsc, nint csc, bool add)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector256<float> a1 = default, a2 = default, a3 = default;
        float* a1p = a + lda, a2p = a1p + lda, a3p = a2p + lda;
        float* b1p = b + ldb, b2p = b1p + ldb, b3p = b2p + ldb;
        int p = 0;
        for (; p <= k - 8; p += 8)
        {
            Vector256<float> a0 = Vector256.Load(a + p);
            if (rows > 1)
            {
                a1 = Vector256.Load(a1p + p);
            }
            if (rows > 2)
            {
                a2 = Vector256.Load(a2p + p);
            }
            if (rows > 3)
            {
                a3 = Vector256.Load(a3p + p);
            }
            Vector256<float> bv0 = Vector256.Load(b + p);
            c00 = Vector256.FusedMultiplyAdd(a0, bv0, c00);
            if (rows > 1)
            {
                c10 = Vector256.FusedMultiplyAdd(a1, bv0, c10);
            }
            if (rows > 2)
            {
                c20 = Vector256.FusedMultiplyAdd(a2, bv0, c20);
            }
            if (rows > 3)
            {
                c30 = Vector256.FusedMultiplyAdd(a3, bv0, c30);
            }
            if (cols > 1)
            {
                Vector256<float> bv1 = Vector256.Load(b1p + p);
                c01 = Vector256.FusedMultiplyAdd(a0, bv1, c01);
                if (rows > 1)
                {
                    c11 = Vector256.FusedMultiplyAdd(a1, bv1, c11);
                }
                if (rows > 2)
                {
                    c21 = Vector256.FusedMultiplyAdd(a2, bv1, c21);
                }
                if (rows > 3)
                {
                    c31 = Vector256.FusedMultiplyAdd(a3, bv1, c31);
                }
            }
            if (cols > 2)
            {
                Vector256<float> bv2 = Vector256.Load(b2p + p);
                c02 = Vector256.FusedMultiplyAdd(a0, bv2, c02);
                if (rows > 1)
                {
                    c12 = Vector256.FusedMultiplyAdd(a1, bv2, c12);
                }
                if (rows > 2)
                {
                    c22 = Vector256.FusedMultiplyAdd(a2, bv2, c22);
                }
                if (rows > 3)
                {
                    c32 = Vector256.FusedMultiplyAdd(a3, bv2, c32);
                }
            }
            if (cols > 3)
            {
                Vector256<float> bv3 = Vector256.Load(b3p + p);
                c03 = Vector256.FusedMultiplyAdd(a0, bv3, c03);
                if (rows > 1)
                {
                    c13 = Vector256.FusedMultiplyAdd(a1, bv3, c13);
                }
                if (rows > 2)
                {
                    c23 = Vector256.FusedMultiplyAdd(a2, bv3, c23);
                }
                if (rows > 3)
                {
                    c33 = Vector256.FusedMultiplyAdd(a3, bv3, c33);
                }
            }
        }
        float* sums = stackalloc float[16];
        sums[0] = Vector256.Sum(c00);
        sums[1] = Vector256.Sum(c01);
        sums[2] = Vector256.Sum(c02);
        sums[3] = Vector256.Sum(c03);
        sums[4] = Vector256.Sum(c10);
        sums[5] = Vector256.Sum(c11);
        sums[6] = Vector256.Sum(c12);
        sums[7] = Vector256.Sum(c13);
        sums[8] = Vector256.Sum(c20);
        sums[9] = Vector256.Sum(c21);
        sums[10] = Vector256.Sum(c22);
        sums[11] = Vector256.Sum(c23);
        sums[12] = Vector256.Sum(c30);
        sums[13] = Vector256.Sum(c31);
        sums[14] = Vector256.Sum(c32);
        sums[15] = Vector256.Sum(c33);
        DotFinish(rows, cols, k, p, a, lda, b, ldb, sums, c, rsc, csc, add);
    }

    // ---- generated kernels end ----
}

using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Runtime.Cpu;

/// <summary>
/// Single-precision matrix multiplication for the CPU runtime. All matrices are row-major; leading dimensions
/// (<c>lda</c>, <c>ldb</c>, <c>ldc</c>) are the row strides, in elements, of the matrices as they are stored.
/// </summary>
/// <remarks>
/// Large products use a GotoBLAS/BLIS-style blocked algorithm: the k dimension is cut into panels, A and B are
/// packed into aligned per-thread buffers laid out for a register-blocked microkernel (8×48 with
/// <see cref="Vector512{T}"/> FMA, 6×16 with <see cref="Vector256{T}"/> FMA, 4×4 scalar otherwise), and the work
/// is split along m or n across up to <see cref="KilnParallel.Threads"/> cores. Skinny products choose, with a small
/// cost model, between that path (in either orientation, reading an operand in place when packing it would not
/// pay) and a dot-product path along k.
/// </remarks>
[SkipLocalsInit]
public static partial class Gemm
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

        /// <summary>For k ≤ 4 (AVX-512): each row of C is a sum of k scaled rows of B, written in one pass.</summary>
        SmallK,
    }

    /// <summary>Overrides for tests and benchmarks.</summary>
    /// <param name="Kind">Kernel family; must be supported by the hardware for anything but speed to hold.</param>
    /// <param name="Threads">0 to decide from the problem size; otherwise this many threads, even for a small product.</param>
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

    // 384×336 floats of packed B is 504 KiB, half of a Zen 4 L2; an 8×384 A micropanel is 12 KiB of L1. (Measured
    // against 256×480, 512×240 and 192×624 on the benchmark shapes: best on all of them, by 2-5%.)
    private static readonly Config Config512 = new(8, 48, 16, 384, 336, 1024);
    private static readonly Config Config256 = new(6, 16, 8, 256, 512, 1020);
    private static readonly Config ConfigScalar = new(4, 4, 1, 256, 256, 256);

    private static Config ConfigFor(KernelKind kind) => kind switch
    {
        KernelKind.Vector512 => Config512,
        KernelKind.Vector256 => Config256,
        _ => ConfigScalar,
    };

    // The runtime's degree of parallelism (KILN_NUM_THREADS), shared with the other CPU kernels.
    private static int MaxThreads => Math.Max(1, KilnParallel.Threads);

    // Below this many multiply-adds per thread, handing work to the thread pool costs more than it saves: a
    // Parallel.For round trip is ~3-4 µs and 2^18 FMAs is ~5 µs of one core (measured on a 2-core Zen 4: two threads
    // win from ~96³ up, lose at 64³).
    private const long FmaPerThread = 1L << 18;

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
            threads = (int)Math.Clamp(fma / FmaPerThread, 1, MaxThreads);
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
        // Costs in cycles, roughly: packing moves ~3 elements per cycle, the microkernel retires VW FMAs per cycle.
        double packB = 0.3 * p.N * p.K, packA = 0.3 * p.M * p.K;
        double arithmetic = (double)p.M * p.N * p.K / cfg.VW;
        bool splitM = SplitCost(mUnits, threads, packB, arithmetic) <= SplitCost(nUnits, threads, packA, arithmetic);
        int units = splitM ? mUnits : nUnits;

        // More parts than threads let the thread pool rebalance when a core is slowed (another process, an
        // interrupt storm) instead of the whole product waiting on the slow half; allow it while the extra
        // repacking stays within ~2% of the arithmetic.
        double repack = splitM ? packB : packA;
        int parts = Math.Min(threads, units);
        while (parts * 2 <= units && parts * 2 * repack <= 0.02 * arithmetic && parts < 4 * threads)
        {
            parts *= 2;
        }
        if (parts <= 1)
        {
            RunSingle(p, options);
            return;
        }
        int span = CeilDiv(units, parts) * (splitM ? cfg.MR : cfg.VW);
        parts = CeilDiv(splitM ? p.M : p.N, span);
        Problem whole = p;
        KilnParallel.Run(parts, part =>
        {
            int start = part * span;
            Problem sub = splitM ? whole.Rows(start, Math.Min(span, whole.M - start)) : whole.Cols(start, Math.Min(span, whole.N - start));
            RunSingle(sub, options);
        });
    }

    // Cost of the slowest of `threads` parts relative to the whole product: its share of the arithmetic
    // (counting the rounding of units to parts) plus repacking the other operand in full.
    private static double SplitCost(int units, int threads, double duplicatedPack, double arithmetic)
    {
        int parts = Math.Max(1, Math.Min(threads, units));
        return (CeilDiv(units, parts) / (double)units) + (duplicatedPack / arithmetic);
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
        int threads = options.Threads > 0 ? options.Threads : (int)Math.Clamp(fma * batch / FmaPerThread, 1, MaxThreads);
        bool perProductParallel = fma >= FmaPerThread * 2 || batch < threads;
        if (!disjoint || threads <= 1 || perProductParallel)
        {
            for (int i = 0; i < batch; i++)
            {
                Run(At(p, i, strideA, strideB, strideC), options);
            }
            return;
        }

        // Small independent products: one thread each, handed out dynamically.
        Problem first = p;
        Options single = options with { Threads = 1 };
        KilnParallel.Run(batch, i => Run(At(first, i, strideA, strideB, strideC), single));
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
                case PathChoice.SmallK when kind == KernelKind.Vector512 && p.K <= 4 && p.Csc == 1:
                    RunSmallK(p, ws);
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
        if (kind != KernelKind.Scalar && Math.Min(p.M, p.N) <= 16)
        {
            double dotCost = DotCost(cfg, p);
            if (dotCost < bestCost)
            {
                bestCost = dotCost;
                best = PathChoice.Dot;
            }
        }
        if (kind == KernelKind.Vector512 && p.K <= 4 && p.Csc == 1 && SmallKCost(p) < bestCost)
        {
            best = PathChoice.SmallK;
        }
        return best;
    }

    /// <summary>Whether the blocked path reads B in place: only when its rows are contiguous and few row tiles reuse it.</summary>
    private static bool PrefersDirectB(in Config cfg, in Problem p) => p.Csb == 1 && p.M <= 2 * cfg.MR;

    /// <summary>
    /// Whether the blocked path reads A in place: when each k step's MR rows are already contiguous (as packing would
    /// lay them out) and every micropanel meets at most two B panels, so the strided reads are not repeated much.
    /// </summary>
    private static bool ReadsAInPlace(in Config cfg, in Problem p) => p.Rsa == 1 && p.N <= 2 * cfg.NR;

    private static double BlockedCost(KernelKind kind, in Config cfg, in Problem p, out bool directB)
    {
        double m = p.M, n = p.N, k = p.K;
        directB = PrefersDirectB(cfg, p);
        double fma = k * m * CeilDiv(p.N, cfg.VW);
        double tiles = (double)CeilDiv(p.M, cfg.MR) * CeilDiv(p.N, cfg.NR) * CeilDiv(p.K, cfg.KC);
        double tileOverhead = tiles * ((2.0 * cfg.MR * cfg.NR / cfg.VW) + 20);
        double packA = ReadsAInPlace(cfg, p) ? 0 : m * k * (p.Rsa == 1 && kind != KernelKind.Scalar ? 0.15 : p.Csa == 1 && cfg.MR == 8 && kind != KernelKind.Scalar ? 0.3 : 1.0);
        double packB = directB ? 0 : k * n * (p.Csb == 1 && kind != KernelKind.Scalar ? 0.15 : p.Rsb == 1 && kind != KernelKind.Scalar ? 0.3 : 1.0) * CeilDiv(p.M, cfg.MC);
        double scatter = p.Csc == 1 ? 0 : m * n * 1.5;
        return fma + tileOverhead + packA + packB + scatter;
    }

    private static double DotCost(in Config cfg, in Problem p)
    {
        double m = p.M, n = p.N, k = p.K;
        // Each output needs a share of a horizontal reduction (and, without AVX-512 masked loads, a scalar k tail),
        // and a tile loads one vector per row and per column for its sixteen FMAs, where the microkernel loads fewer.
        double cost = m * n * ((1.25 * CeilDiv(p.K, cfg.VW)) + (cfg.VW == 16 ? 5 : 12 + (k % cfg.VW)));
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

    // One pass over C: per 16 outputs, k FMAs, a store, and a load when accumulating; plus copying B if its rows
    // are not contiguous.
    private static double SmallKCost(in Problem p) =>
        ((double)p.M * CeilDiv(p.N, 16) * (p.K + (p.Accumulate ? 2 : 1))) + (p.Csb == 1 ? 0 : (double)p.K * p.N);

    // Outer-product shapes (k ≤ 4, as in a layer with two inputs) have almost no arithmetic per output, so the
    // blocked path's per-tile setup dominates; here every row of C is produced in one streaming pass with the k
    // values of A's row broadcast and B's k rows read directly (copied first only if B is stored transposed).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RunSmallK(in Problem p, Workspace ws)
    {
        float* b = p.B;
        nint ldb = p.Rsb;
        if (p.Csb != 1)
        {
            b = ws.EnsureB((nint)p.K * p.N);
            CopyToRows(p.B, p.Rsb, p.Csb, p.K, p.N, b);
            ldb = p.N;
        }
        if (p.Accumulate)
        {
            SmallK512<N1>(p.K, p.M, p.N, p.A, p.Rsa, p.Csa, b, ldb, p.C, p.Rsc);
        }
        else
        {
            SmallK512<N0>(p.K, p.M, p.N, p.A, p.Rsa, p.Csa, b, ldb, p.C, p.Rsc);
        }
    }

    // TAdd (0 or 1) says whether to accumulate; k is 1..4.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SmallK512<TAdd>(int k, int m, int n, float* a, nint rsa, nint csa, float* b, nint ldb, float* c, nint ldc)
        where TAdd : struct, IConstant
    {
        switch (k)
        {
            case 1: SmallK512<N1, TAdd>(m, n, a, rsa, csa, b, ldb, c, ldc); break;
            case 2: SmallK512<N2, TAdd>(m, n, a, rsa, csa, b, ldb, c, ldc); break;
            case 3: SmallK512<N3, TAdd>(m, n, a, rsa, csa, b, ldb, c, ldc); break;
            default: SmallK512<N4, TAdd>(m, n, a, rsa, csa, b, ldb, c, ldc); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void SmallK512<TK, TAdd>(int m, int n, float* a, nint rsa, nint csa, float* b, nint ldb, float* c, nint ldc)
        where TK : struct, IConstant
        where TAdd : struct, IConstant
    {
        int full = n & ~15;
        // Masked loads and stores neither touch nor fault on the lanes past n.
        Vector512<float> tail = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n - full)).AsSingle();
        float* b1 = b + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
        for (int i = 0; i < m; i++)
        {
            float* ai = a + (i * rsa);
            float* ci = c + (i * ldc);
            Vector512<float> a0 = Vector512.Create(ai[0]);
            Vector512<float> a1 = TK.Value > 1 ? Vector512.Create(ai[csa]) : default;
            Vector512<float> a2 = TK.Value > 2 ? Vector512.Create(ai[2 * csa]) : default;
            Vector512<float> a3 = TK.Value > 3 ? Vector512.Create(ai[3 * csa]) : default;
            int j = 0;
            for (; j < full - 16; j += 32)
            {
                Vector512<float> v = SmallKColumn<TK>(a0, a1, a2, a3, b + j, b1 + j, b2 + j, b3 + j);
                Vector512<float> w = SmallKColumn<TK>(a0, a1, a2, a3, b + j + 16, b1 + j + 16, b2 + j + 16, b3 + j + 16);
                if (TAdd.Value != 0)
                {
                    v += Vector512.Load(ci + j);
                    w += Vector512.Load(ci + j + 16);
                }
                Vector512.Store(v, ci + j);
                Vector512.Store(w, ci + j + 16);
            }
            if (j < full)
            {
                Vector512<float> v = SmallKColumn<TK>(a0, a1, a2, a3, b + j, b1 + j, b2 + j, b3 + j);
                if (TAdd.Value != 0)
                {
                    v += Vector512.Load(ci + j);
                }
                Vector512.Store(v, ci + j);
                j += 16;
            }
            if (j < n)
            {
                Vector512<float> v = a0 * Avx512F.MaskLoad(b + j, tail, default);
                if (TK.Value > 1)
                {
                    v = Vector512.FusedMultiplyAdd(a1, Avx512F.MaskLoad(b1 + j, tail, default), v);
                }
                if (TK.Value > 2)
                {
                    v = Vector512.FusedMultiplyAdd(a2, Avx512F.MaskLoad(b2 + j, tail, default), v);
                }
                if (TK.Value > 3)
                {
                    v = Vector512.FusedMultiplyAdd(a3, Avx512F.MaskLoad(b3 + j, tail, default), v);
                }
                if (TAdd.Value != 0)
                {
                    v += Avx512F.MaskLoad(ci + j, tail, default);
                }
                Avx512F.MaskStore(ci + j, tail, v);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector512<float> SmallKColumn<TK>(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3, float* b0, float* b1, float* b2, float* b3)
        where TK : struct, IConstant
    {
        Vector512<float> v = a0 * Vector512.Load(b0);
        if (TK.Value > 1)
        {
            v = Vector512.FusedMultiplyAdd(a1, Vector512.Load(b1), v);
        }
        if (TK.Value > 2)
        {
            v = Vector512.FusedMultiplyAdd(a2, Vector512.Load(b2), v);
        }
        if (TK.Value > 3)
        {
            v = Vector512.FusedMultiplyAdd(a3, Vector512.Load(b3), v);
        }
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RunBlocked(KernelKind kind, in Config cfg, in Problem p, bool directB, Workspace ws)
    {
        int m = p.M, n = p.N, k = p.K;
        directB &= p.Csb == 1;
        int mr = cfg.MR, nr = cfg.NR, vw = cfg.VW;

        // A tile of at most four rows has too few accumulators to cover FMA latency at the usual width; when B is
        // read in place the panel width is free, so widen it to four vectors (16 independent chains).
        if (directB && kind == KernelKind.Vector512 && m <= 4)
        {
            nr = 4 * vw;
        }
        int ncStep = cfg.NC / nr * nr;

        bool directA = ReadsAInPlace(cfg, p);

        // Even splits keep the last block from being a sliver (k = 300 packs 150 + 150, not 256 + 44).
        int mcStep = RoundUp(CeilDiv(m, CeilDiv(m, cfg.MC)), mr);
        int kcStep = CeilDiv(k, CeilDiv(k, cfg.KC));
        float* ap = ws.EnsureA((nint)mcStep * kcStep);
        float* bp = ws.EnsureB((nint)ncStep * kcStep);
        float* tile = stackalloc float[mr * nr];

        for (int ic = 0; ic < m; ic += mcStep)
        {
            int mc = Math.Min(mcStep, m - ic);
            for (int pc = 0; pc < k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, k - pc);
                bool add = p.Accumulate || pc > 0;
                if (!directA)
                {
                    PackA(kind, mr, ap, p.A + (ic * p.Rsa) + (pc * p.Csa), p.Rsa, p.Csa, mc, kc);
                }
                for (int jc = 0; jc < n; jc += ncStep)
                {
                    int nc = Math.Min(ncStep, n - jc);
                    float* bsrc = p.B + (pc * p.Rsb) + (jc * p.Csb);

                    // Reading B in place needs every panel to be whole vectors; a ragged last panel is packed alone.
                    int ragged = nc % vw == 0 ? nc : nc - (nc % nr);
                    if (!directB)
                    {
                        PackB(kind, nr, vw, bp, bsrc, p.Rsb, p.Csb, kc, nc);
                    }
                    else if (ragged < nc)
                    {
                        PackB(kind, nr, vw, bp, bsrc + ragged, p.Rsb, p.Csb, kc, nc - ragged);
                    }

                    for (int ir = 0; ir < mc; ir += mr)
                    {
                        int rows = Math.Min(mr, mc - ir);
                        float* apan = directA ? p.A + (ic + ir) + (pc * p.Csa) : ap + ((nint)(ir / mr) * kc * mr);
                        nint sa = directA ? p.Csa : mr;
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
                                Micro(kind, rows, nv, kc, apan, sa, bpan, bs, ctile, p.Rsc, add);
                            }
                            else
                            {
                                // Ragged or transposed C: compute the whole tile aside, then merge the valid part.
                                Micro(kind, rows, nv, kc, apan, sa, bpan, bs, tile, width, false);
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Micro(KernelKind kind, int rows, int nv, int kc, float* a, nint sa, float* b, nint sb, float* c, nint ldc, bool add)
    {
        switch (kind)
        {
            case KernelKind.Vector512:
                switch (rows)
                {
                    case 8: Rows512<N8>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 7: Rows512<N7>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 6: Rows512<N6>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 5: Rows512<N5>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 4: Rows512<N4>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 3: Rows512<N3>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 2: Rows512<N2>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    default: Rows512<N1>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                }
                break;
            case KernelKind.Vector256:
                switch (rows)
                {
                    case 6: Rows256<N6>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 5: Rows256<N5>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 4: Rows256<N4>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 3: Rows256<N3>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    case 2: Rows256<N2>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                    default: Rows256<N1>(nv, kc, a, sa, b, sb, c, ldc, add); break;
                }
                break;
            default:
                ScalarKernel(rows, nv, kc, a, sa, b, sb, c, ldc, add);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Rows512<TRows>(int nv, int kc, float* a, nint sa, float* b, nint sb, float* c, nint ldc, bool add)
        where TRows : struct, IConstant
    {
        switch (nv)
        {
            case 4: Tile512<TRows, N4>(kc, a, sa, b, sb, c, ldc, add); break;
            case 3: Tile512<TRows, N3>(kc, a, sa, b, sb, c, ldc, add); break;
            case 2: Tile512<TRows, N2>(kc, a, sa, b, sb, c, ldc, add); break;
            default: Tile512<TRows, N1>(kc, a, sa, b, sb, c, ldc, add); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Rows256<TRows>(int nv, int kc, float* a, nint sa, float* b, nint sb, float* c, nint ldc, bool add)
        where TRows : struct, IConstant
    {
        if (nv == 2)
        {
            Tile256<TRows, N2>(kc, a, sa, b, sb, c, ldc, add);
        }
        else
        {
            Tile256<TRows, N1>(kc, a, sa, b, sb, c, ldc, add);
        }
    }

    // Compile-time integers: the tile kernels are generic over them so that the JIT emits one specialised body per
    // (rows, vectors) pair, with the unused accumulators and row guards folded away.
    private interface IConstant
    {
        static abstract int Value { get; }
    }

    private readonly struct N0 : IConstant
    {
        public static int Value => 0;
    }

    private readonly struct N1 : IConstant
    {
        public static int Value => 1;
    }

    private readonly struct N2 : IConstant
    {
        public static int Value => 2;
    }

    private readonly struct N3 : IConstant
    {
        public static int Value => 3;
    }

    private readonly struct N4 : IConstant
    {
        public static int Value => 4;
    }

    private readonly struct N5 : IConstant
    {
        public static int Value => 5;
    }

    private readonly struct N6 : IConstant
    {
        public static int Value => 6;
    }

    private readonly struct N7 : IConstant
    {
        public static int Value => 7;
    }

    private readonly struct N8 : IConstant
    {
        public static int Value => 8;
    }

    // Up to 4 rows; for the scalar family the panel width is the column count itself.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ScalarKernel(int rows, int cols, int kc, float* a, nint sa, float* b, nint bs, float* c, nint ldc, bool add)
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
            a += sa;
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
    private static unsafe void PackB(KernelKind kind, int nr, int vw, float* dst, float* b, nint rsb, nint csb, int kc, int nc)
    {
        bool vec = kind != KernelKind.Scalar;
        int whole = nc - (nc % nr);
        if (vec && csb == 1 && nr % 8 == 0 && whole > 0)
        {
            // Row-major B: copy each k row across every whole panel in one sequential sweep (the hardware prefetcher
            // follows one stream per row far better than 48-float snippets from hundreds of rows 4 KiB apart).
            for (int p = 0; p < kc; p++)
            {
                float* s = b + (p * rsb);
                float* d = dst + (p * nr);
                for (int j0 = 0; j0 < whole; j0 += nr)
                {
                    float* dp = d + ((nint)j0 * kc);
                    for (int j = 0; j < nr; j += 8)
                    {
                        Vector256.Store(Vector256.Load(s + j0 + j), dp + j);
                    }
                }
            }
            if (whole == nc)
            {
                return;
            }
            dst += (nint)whole * kc;
            b += whole;
            nc -= whole;
        }
        for (int j0 = 0; j0 < nc; j0 += nr)
        {
            int cols = Math.Min(nr, nc - j0);
            int width = RoundUp(cols, vw);
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
                // Each strip of eight rows is finished before the next: with a power-of-two row stride, walking all
                // of the panel's rows at once would map them to one L1 set and refetch every line.
                int p8 = kc & ~7;
                for (int j = 0; j < width; j += 8)
                {
                    for (int q = 0; q < p8; q += 8)
                    {
                        Transpose8x8(src + (j * csb) + q, csb, d + (q * width) + j, width);
                    }
                }
                p = p8;
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
        // Sixteen accumulators per tile, shaped so that a one- or two-wide dimension does not leave most idle.
        int tr = 4, ts = 4;
        if (kind == KernelKind.Vector512)
        {
            (tr, ts) = n <= 1 ? (16, 1) : n <= 2 ? (8, 2) : m <= 1 ? (1, 16) : m <= 2 ? (2, 8) : (4, 4);
        }
        for (int i = 0; i < m; i += tr)
        {
            int rows = Math.Min(tr, m - i);
            for (int j = 0; j < n; j += ts)
            {
                int cols = Math.Min(ts, n - j);
                float* ai = a + (i * lda);
                float* bj = b + (j * ldb);
                float* cij = p.C + (i * p.Rsc) + (j * p.Csc);
                switch (kind == KernelKind.Vector512 ? tr : 0)
                {
                    case 16: Dot512x16x1(rows, cols, k, ai, lda, bj, ldb, cij, p.Rsc, p.Csc, p.Accumulate); break;
                    case 8: Dot512x8x2(rows, cols, k, ai, lda, bj, ldb, cij, p.Rsc, p.Csc, p.Accumulate); break;
                    case 4: Dot512x4x4(rows, cols, k, ai, lda, bj, ldb, cij, p.Rsc, p.Csc, p.Accumulate); break;
                    case 2: Dot512x2x8(rows, cols, k, ai, lda, bj, ldb, cij, p.Rsc, p.Csc, p.Accumulate); break;
                    case 1: Dot512x1x16(rows, cols, k, ai, lda, bj, ldb, cij, p.Rsc, p.Csc, p.Accumulate); break;
                    default: Dot256x4x4(rows, cols, k, ai, lda, bj, ldb, cij, p.Rsc, p.Csc, p.Accumulate); break;
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

    // Adds the k tail the vector loop left over, then writes the tile (Dot256; accumulator q = r·tileCols + s is sums[q]).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void DotFinish(int rows, int cols, int tileCols, int k, int p0, float* a, nint lda, float* b, nint ldb, float* sums, float* c, nint rsc, nint csc, bool add)
    {
        for (int r = 0; r < rows; r++)
        {
            float* ar = a + (r * lda);
            for (int s = 0; s < cols; s++)
            {
                float* bs = b + (s * ldb);
                float sum = sums[(r * tileCols) + s];
                for (int p = p0; p < k; p++)
                {
                    sum += ar[p] * bs[p];
                }
                Emit(c + (r * rsc) + (s * csc), sum, add);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Emit(float* c, float value, bool add) => *c = add ? *c + value : value;

    // Reduction tree for Dot512. Fold1: 128-bit blocks [x0+x2, x1+x3, y0+y2, y1+y3].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fold1(Vector512<float> x, Vector512<float> y) =>
        Avx512F.Shuffle4x128(x, y, 0x44) + Avx512F.Shuffle4x128(x, y, 0xEE);

    // From Fold1 results [X X Y Y] and [U U V V] to blocks [X, Y, U, V], each a 4-lane partial sum.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fold2(Vector512<float> x, Vector512<float> y) =>
        Avx512F.Shuffle4x128(x, y, 0x88) + Avx512F.Shuffle4x128(x, y, 0xDD);

    // Within every block: two lanes from x, then two from y.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fold3(Vector512<float> x, Vector512<float> y) =>
        Avx512F.UnpackLow(x.AsDouble(), y.AsDouble()).AsSingle() + Avx512F.UnpackHigh(x.AsDouble(), y.AsDouble()).AsSingle();

    // Within every block: the totals of x's two pairs, then of y's.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fold4(Vector512<float> x, Vector512<float> y) =>
        Avx512F.Shuffle(x, y, 0x88) + Avx512F.Shuffle(x, y, 0xDD);

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

}

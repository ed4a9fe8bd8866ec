using System;
using System.Collections.Generic;
using Kiln.Runtime.Cpu;
using static Kiln.Runtime.Cpu.Gemm;

namespace Kiln.Runtime.Tests;

/// <summary>
/// Checks <see cref="Gemm"/> against a float64 reference. Every test draws a fresh seed (or takes KILN_TEST_SEED to
/// replay one) and prints it in any failure message.
/// </summary>
/// <remarks>
/// Tolerance: float32 summation of k products, in any order and with or without FMA, is within
/// γ·Σ_p|a_ip·b_pj| of the exact sum, where γ ≈ k·u and u = 2⁻²⁴ (the standard bound for recursive summation,
/// which also covers blocked and pairwise orders). Accumulating into C adds one more rounding on |C₀|. We allow
/// twice that, (k + 2)·2⁻²³·(|C₀| + Σ|a||b|), per element. The bound is deterministic, so tests cannot flake, and a
/// wrong index, a dropped k panel or a missing edge row gives an error of order |a||b| ≫ the bound at these sizes.
/// </remarks>
public sealed class GemmTests
{
    private static readonly int[] EdgeSizes = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 47, 48, 49, 63, 65 };

    public static IEnumerable<object[]> KindsAndPaths()
    {
        foreach (KernelKind kind in new[] { KernelKind.Scalar, KernelKind.Vector256, KernelKind.Vector512 })
        {
            foreach (PathChoice path in Enum.GetValues<PathChoice>())
            {
                yield return new object[] { (int)kind, (int)path };
            }
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Sgemm_matches_float64_reference_for_random_shapes_in_each_transpose_combination(bool transA, bool transB)
    {
        var (seed, rng) = NewRng();
        for (int trial = 0; trial < 60; trial++)
        {
            int m = PickSize(rng, 90), n = PickSize(rng, 90), k = PickSize(rng, 300);
            var cs = Case.Random(rng, m, n, k, transA, transB, accumulate: rng.Next(2) == 0, pad: rng.Next(2) == 0);
            cs.RunPublicPointer();
            cs.Check(seed, $"trial {trial}");
        }
    }

    [Fact]
    public void Sgemm_matches_float64_reference_for_transposed_B()
    {
        var (seed, rng) = NewRng();
        foreach (int m in new[] { 1, 7, 64, 131 })
        {
            foreach (int n in new[] { 1, 3, 48, 100 })
            {
                var cs = Case.Random(rng, m, n, PickSize(rng, 200), transA: false, transB: true, accumulate: false, pad: true);
                cs.RunPublicPointer();
                cs.Check(seed, "x·Wᵀ layout");
            }
        }
    }

    [Theory]
    [MemberData(nameof(KindsAndPaths))]
    public void Every_kernel_family_and_path_matches_float64_reference_including_edge_tiles(int kindValue, int pathValue)
    {
        var kind = (KernelKind)kindValue;
        var path = (PathChoice)pathValue;
        if (!Supported(kind))
        {
            return;
        }
        var (seed, rng) = NewRng();
        var options = new Options(kind, 1, path);
        for (int trial = 0; trial < 24; trial++)
        {
            int m = PickSize(rng, 70), n = PickSize(rng, 110), k = PickSize(rng, 70);
            var cs = Case.Random(rng, m, n, k, rng.Next(2) == 0, rng.Next(2) == 0, rng.Next(2) == 0, rng.Next(2) == 0);
            cs.RunWith(options);
            cs.Check(seed, $"{kind}/{path} trial {trial}");
        }
    }

    [Theory]
    [InlineData((int)KernelKind.Scalar)]
    [InlineData((int)KernelKind.Vector256)]
    [InlineData((int)KernelKind.Vector512)]
    public void Products_spanning_several_k_m_and_n_blocks_match_reference(int kindValue)
    {
        var kind = (KernelKind)kindValue;
        if (!Supported(kind))
        {
            return;
        }
        var (seed, rng) = NewRng();
        // k > KC (≤ 384) forces several k panels with accumulation between them; n > NC (≤ 512) several B blocks;
        // m > MC (256 scalar, ~1024 vector) several A blocks.
        foreach (var (m, n, k) in new[] { (263, 530, 541), (1100, 21, 13) })
        {
            var cs = Case.Random(rng, m, n, k, rng.Next(2) == 0, rng.Next(2) == 0, accumulate: true, pad: true);
            cs.RunWith(new Options(kind, 1, PathChoice.PackedB));
            cs.Check(seed, $"{kind} multi-block");
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Parallel_split_over_m_or_n_matches_reference(bool transA, bool transB)
    {
        var (seed, rng) = NewRng();
        // Tall and wide shapes steer the split to m and to n respectively; 3 parts leave a ragged last part; the
        // long thin shapes with small k are cut into more parts than threads.
        foreach (var (m, n, k) in new[] { (301, 37, 0), (29, 347, 0), (150, 150, 0), (1100, 40, 30), (37, 1100, 30) })
        {
            foreach (int threads in new[] { 2, 3 })
            {
                var cs = Case.Random(rng, m, n, k > 0 ? k : PickSize(rng, 120), transA, transB, rng.Next(2) == 0, pad: true);
                cs.RunWith(new Options(BestKind, threads, PathChoice.Auto));
                cs.Check(seed, $"threads {threads}");
            }
        }
    }

    [Fact]
    public void Large_product_uses_all_cores_and_matches_reference()
    {
        var (seed, rng) = NewRng();
        var cs = Case.Random(rng, 384, 320, 512, false, true, accumulate: false, pad: false);
        cs.RunPublicPointer();
        cs.Check(seed, "large");
    }

    [Theory]
    [InlineData((int)PathChoice.SmallK)]
    [InlineData((int)PathChoice.Auto)]
    public void Small_k_outer_products_match_reference_in_every_layout(int pathValue)
    {
        var (seed, rng) = NewRng();
        var options = new Options(BestKind, 1, (PathChoice)pathValue);
        for (int k = 1; k <= 5; k++)
        {
            for (int layout = 0; layout < 4; layout++)
            {
                foreach (bool accumulate in new[] { false, true })
                {
                    int m = PickSize(rng, 300), n = PickSize(rng, 200);
                    var cs = Case.Random(rng, m, n, k, (layout & 1) != 0, (layout & 2) != 0, accumulate, pad: rng.Next(2) == 0);
                    cs.RunWith(options);
                    cs.Check(seed, $"small k, {(PathChoice)pathValue}");
                }
            }
        }
    }

    [Theory]
    [InlineData(256, 64, 2)]
    [InlineData(64, 2, 256)]
    [InlineData(2, 64, 256)]
    [InlineData(256, 2, 64)]
    [InlineData(1, 300, 200)]
    [InlineData(300, 1, 200)]
    [InlineData(4, 4, 1000)]
    [InlineData(200, 200, 1)]
    public void Skinny_training_step_shapes_match_reference_in_every_layout(int m, int n, int k)
    {
        var (seed, rng) = NewRng();
        foreach (bool transA in new[] { false, true })
        {
            foreach (bool transB in new[] { false, true })
            {
                foreach (bool accumulate in new[] { false, true })
                {
                    var cs = Case.Random(rng, m, n, k, transA, transB, accumulate, pad: rng.Next(2) == 0);
                    cs.RunPublicPointer();
                    cs.Check(seed, "skinny");
                }
            }
        }
    }

    [Fact]
    public void Sgemm_handles_empty_and_unit_dimensions()
    {
        var (seed, rng) = NewRng();
        int[] sizes = { 0, 1, 2 };
        foreach (int m in sizes)
        {
            foreach (int n in sizes)
            {
                foreach (int k in sizes)
                {
                    for (int layout = 0; layout < 4; layout++)
                    {
                        var cs = Case.Random(rng, m, n, k, (layout & 1) != 0, (layout & 2) != 0, rng.Next(2) == 0, pad: true);
                        cs.RunPublicSpan();
                        cs.Check(seed, "tiny");
                    }
                }
            }
        }
    }

    [Fact]
    public void K_of_zero_zeroes_C_unless_accumulating()
    {
        float[] c = { 1, 2, 3, 4, 5, 6 };
        Gemm.Sgemm(false, false, 2, 3, 0, ReadOnlySpan<float>.Empty, 0, ReadOnlySpan<float>.Empty, 3, c, 3, accumulate: true);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, c);
        Gemm.Sgemm(false, false, 2, 3, 0, ReadOnlySpan<float>.Empty, 0, ReadOnlySpan<float>.Empty, 3, c, 3, accumulate: false);
        Assert.Equal(new float[6], c);
    }

    [Fact]
    public void Overwriting_C_ignores_NaN_already_in_it()
    {
        foreach (var (m, n, k) in new[] { (3, 5, 4), (40, 70, 30), (2, 2, 100) })
        {
            float[] a = Fill(new Random(1), m * k), b = Fill(new Random(2), k * n);
            float[] c = new float[m * n];
            Array.Fill(c, float.NaN);
            Gemm.Sgemm(false, false, m, n, k, a, k, b, n, c, n, accumulate: false);
            Assert.All(c, v => Assert.False(float.IsNaN(v), $"NaN leaked from C for {m}x{n}x{k}"));
        }
    }

    [Fact]
    public void Padded_leading_dimensions_leave_the_padding_of_C_untouched()
    {
        var (seed, rng) = NewRng();
        foreach (var (m, n, k) in new[] { (5, 9, 7), (33, 50, 20), (70, 100, 300), (2, 40, 64) })
        {
            var cs = Case.Random(rng, m, n, k, rng.Next(2) == 0, rng.Next(2) == 0, rng.Next(2) == 0, pad: true);
            Assert.True(cs.Ldc > n);
            cs.RunPublicPointer();
            cs.Check(seed, "padding");
            for (int i = 0; i < m; i++)
            {
                for (int j = n; j < cs.Ldc && (i * cs.Ldc) + j < cs.C.Length; j++)
                {
                    Assert.True(cs.C[(i * cs.Ldc) + j] == cs.C0[(i * cs.Ldc) + j], $"seed {seed}: padding of C at row {i}, column {j} was written");
                }
            }
        }
    }

    [Fact]
    public void Span_overload_rejects_short_spans_naming_the_operand()
    {
        float[] ok = new float[100];
        var ea = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 4, 5, 6, new float[23], 6, ok, 5, ok, 5, false));
        Assert.Equal("a", ea.ParamName);
        Assert.Contains("24", ea.Message);
        var eb = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, true, 4, 5, 6, ok, 6, new float[6 * 4 + 5], 6, ok, 5, false));
        Assert.Equal("b", eb.ParamName);
        var ec = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 4, 5, 6, ok, 6, ok, 5, new float[3 * 8 + 4], 8, false));
        Assert.Equal("c", ec.ParamName);
    }

    [Fact]
    public void Leading_dimension_shorter_than_a_row_is_rejected()
    {
        float[] x = new float[100];
        Assert.Equal("lda", Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, 3, 3, 4, x, 3, x, 3, x, 3, false)).ParamName);
        Assert.Equal("lda", Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(true, false, 3, 3, 4, x, 2, x, 3, x, 3, false)).ParamName);
        Assert.Equal("ldb", Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, true, 3, 3, 4, x, 4, x, 3, x, 3, false)).ParamName);
        Assert.Equal("ldc", Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, 3, 3, 4, x, 4, x, 3, x, 2, false)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Sgemm(false, false, -1, 3, 4, x, 4, x, 3, x, 3, false));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public unsafe void SgemmBatched_matches_reference_with_strided_and_broadcast_operands(bool broadcastA, bool broadcastB)
    {
        var (seed, rng) = NewRng();
        foreach (var (m, n, k, batch) in new[] { (3, 5, 7, 6), (17, 33, 20, 5), (64, 80, 96, 3), (1, 2, 300, 9) })
        {
            bool transA = rng.Next(2) == 0, transB = rng.Next(2) == 0, accumulate = rng.Next(2) == 0;
            var template = Case.Random(rng, m, n, k, transA, transB, accumulate, pad: true);
            long strideA = broadcastA ? 0 : template.A.Length + rng.Next(4);
            long strideB = broadcastB ? 0 : template.B.Length + rng.Next(4);
            long strideC = template.C.Length + rng.Next(4);
            float[] a = Fill(rng, (int)Math.Max(strideA * batch, template.A.Length));
            float[] b = Fill(rng, (int)Math.Max(strideB * batch, template.B.Length));
            float[] c = Fill(rng, (int)(strideC * batch));
            float[] c0 = (float[])c.Clone();
            fixed (float* pa = a, pb = b, pc = c)
            {
                Gemm.SgemmBatched(batch, transA, transB, m, n, k, pa, template.Lda, strideA, pb, template.Ldb, strideB, pc, template.Ldc, strideC, accumulate);
            }
            for (int i = 0; i < batch; i++)
            {
                var item = template.Slice(a, (int)(i * strideA), b, (int)(i * strideB), c0, c, (int)(i * strideC));
                item.Check(seed, $"batch item {i} of {batch}, broadcastA {broadcastA}, broadcastB {broadcastB}");
            }
        }
    }

    [Fact]
    public unsafe void SgemmBatched_into_one_shared_C_with_accumulate_sums_every_product()
    {
        var (seed, rng) = NewRng();
        const int m = 9, n = 21, k = 13, batch = 7;
        float[] a = Fill(rng, m * k * batch), b = Fill(rng, k * n * batch), c = Fill(rng, m * n);
        double[] expect = new double[m * n];
        double[] bound = new double[m * n];
        for (int idx = 0; idx < m * n; idx++)
        {
            expect[idx] = c[idx];
            bound[idx] = Math.Abs(c[idx]);
        }
        for (int t = 0; t < batch; t++)
        {
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                {
                    for (int p = 0; p < k; p++)
                    {
                        double prod = (double)a[(t * m * k) + (i * k) + p] * b[(t * k * n) + (p * n) + j];
                        expect[(i * n) + j] += prod;
                        bound[(i * n) + j] += Math.Abs(prod);
                    }
                }
            }
        }
        fixed (float* pa = a, pb = b, pc = c)
        {
            Gemm.SgemmBatched(batch, false, false, m, n, k, pa, k, m * k, pb, n, k * n, pc, n, 0, accumulate: true);
        }
        for (int idx = 0; idx < m * n; idx++)
        {
            double tol = (batch * (k + 2)) * Math.Pow(2, -23) * bound[idx];
            Assert.True(Math.Abs(c[idx] - expect[idx]) <= tol, $"seed {seed}: element {idx} is {c[idx]}, expected {expect[idx]} ± {tol}");
        }
    }

    [Fact]
    public unsafe void SgemmBatched_of_many_small_products_runs_them_in_parallel_correctly()
    {
        var (seed, rng) = NewRng();
        const int m = 16, n = 24, k = 32, batch = 200;
        var template = Case.Random(rng, m, n, k, false, true, accumulate: false, pad: false);
        float[] a = Fill(rng, m * k * batch), b = Fill(rng, n * k * batch), c = new float[m * n * batch];
        float[] c0 = (float[])c.Clone();
        fixed (float* pa = a, pb = b, pc = c)
        {
            Gemm.SgemmBatchedWith(new Options(BestKind, 2, PathChoice.Auto), batch, false, true, m, n, k, pa, k, m * k, pb, k, n * k, pc, n, m * n, false);
        }
        for (int i = 0; i < batch; i++)
        {
            template.Slice(a, i * m * k, b, i * n * k, c0, c, i * m * n).Check(seed, $"batch item {i}");
        }
    }

    public static IEnumerable<object[]> KindsPathsAndPlacements()
    {
        foreach (object[] kp in KindsAndPaths())
        {
            yield return new[] { kp[0], kp[1], true };
            yield return new[] { kp[0], kp[1], false };
        }
    }

    /// <summary>
    /// A, B and C sit flush against an inaccessible page (after their last element, or before their first), so any
    /// read or write outside the matrices as the API defines them (the last row holds only its elements, not a whole
    /// leading dimension) stops the test host with a segmentation fault instead of passing silently.
    /// </summary>
    [Theory]
    [MemberData(nameof(KindsPathsAndPlacements))]
    public unsafe void Operands_are_never_accessed_outside_their_extent(int kindValue, int pathValue, bool guardAfter)
    {
        var kind = (KernelKind)kindValue;
        if (!Supported(kind) || !OperatingSystem.IsLinux())
        {
            return;
        }
        var (seed, rng) = NewRng();
        var options = new Options(kind, 1, (PathChoice)pathValue);
        foreach (var (m, n, k) in new[] { (1, 1, 1), (3, 17, 5), (9, 50, 23), (2, 70, 33), (70, 2, 33), (13, 100, 300), (33, 3, 70), (5, 37, 3), (40, 19, 2), (17, 16, 4) })
        {
            for (int layout = 0; layout < 4; layout++)
            {
                var cs = Case.Random(rng, m, n, k, (layout & 1) != 0, (layout & 2) != 0, rng.Next(2) == 0, pad: rng.Next(2) == 0);
                int aRows = cs.TransA ? k : m, aCols = cs.TransA ? m : k, bRows = cs.TransB ? n : k, bCols = cs.TransB ? k : n;
                using var ga = new GuardedFloats(cs.A, ((aRows - 1) * cs.Lda) + aCols, guardAfter);
                using var gb = new GuardedFloats(cs.B, ((bRows - 1) * cs.Ldb) + bCols, guardAfter);
                using var gc = new GuardedFloats(cs.C, ((m - 1) * cs.Ldc) + n, guardAfter);
                Gemm.SgemmWith(options, cs.TransA, cs.TransB, m, n, k, ga.Pointer, cs.Lda, gb.Pointer, cs.Ldb, gc.Pointer, cs.Ldc, cs.Accumulate);
                gc.CopyTo(cs.C);
                cs.Check(seed, $"{kind}/{(PathChoice)pathValue}, guard {(guardAfter ? "after" : "before")}");
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------

    private static bool Supported(KernelKind kind) => kind switch
    {
        KernelKind.Vector512 => BestKind == KernelKind.Vector512,
        KernelKind.Vector256 => BestKind != KernelKind.Scalar,
        _ => true,
    };

    private static (int Seed, Random Rng) NewRng()
    {
        string? fixedSeed = Environment.GetEnvironmentVariable("KILN_TEST_SEED");
        int seed = fixedSeed is not null ? int.Parse(fixedSeed, System.Globalization.CultureInfo.InvariantCulture) : Random.Shared.Next();
        return (seed, new Random(seed));
    }

    // Half the draws come from sizes that sit on or next to microtile and vector boundaries.
    private static int PickSize(Random rng, int max) =>
        rng.Next(2) == 0 ? EdgeSizes[rng.Next(EdgeSizes.Length)] : rng.Next(1, max + 1);

    private static float[] Fill(Random rng, int length)
    {
        float[] x = new float[length];
        for (int i = 0; i < length; i++)
        {
            x[i] = (float)((rng.NextDouble() * 2) - 1);
        }
        return x;
    }

    /// <summary>Floats in an anonymous mapping with PROT_NONE pages on both sides, flush against one of them.</summary>
    private sealed unsafe class GuardedFloats : IDisposable
    {
        private const int ProtNone = 0, ProtReadWrite = 3, MapPrivateAnonymous = 0x22;
        private readonly nint _base;
        private readonly nuint _bytes;
        private readonly int _length;

        public GuardedFloats(float[] source, int length, bool flushAfter)
        {
            int page = Environment.SystemPageSize;
            _length = length;
            int dataPages = Math.Max(1, ((length * sizeof(float)) + page - 1) / page);
            _bytes = (nuint)((dataPages + 2) * page);
            _base = Mmap(0, _bytes, ProtReadWrite, MapPrivateAnonymous, -1, 0);
            Assert.True(_base != -1, "mmap failed");
            Assert.Equal(0, Mprotect(_base, (nuint)page, ProtNone));
            Assert.Equal(0, Mprotect(_base + ((dataPages + 1) * page), (nuint)page, ProtNone));
            byte* first = (byte*)_base + page;
            Pointer = flushAfter ? (float*)(first + (dataPages * page) - (length * sizeof(float))) : (float*)first;
            new ReadOnlySpan<float>(source, 0, length).CopyTo(new Span<float>(Pointer, length));
        }

        public float* Pointer { get; }

        public void CopyTo(float[] destination) => new ReadOnlySpan<float>(Pointer, _length).CopyTo(destination);

        public void Dispose() => Munmap(_base, _bytes);

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mmap")]
        private static extern nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mprotect")]
        private static extern int Mprotect(nint addr, nuint length, int prot);

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "munmap")]
        private static extern int Munmap(nint addr, nuint length);
    }

    private sealed class Case
    {
        public int M, N, K, Lda, Ldb, Ldc, OffA, OffB, OffC;
        public bool TransA, TransB, Accumulate;
        public float[] A = Array.Empty<float>(), B = Array.Empty<float>(), C = Array.Empty<float>(), C0 = Array.Empty<float>();

        public static Case Random(Random rng, int m, int n, int k, bool transA, bool transB, bool accumulate, bool pad)
        {
            int extra = pad ? rng.Next(1, 9) : 0;
            var cs = new Case
            {
                M = m, N = n, K = k, TransA = transA, TransB = transB, Accumulate = accumulate,
                Lda = (transA ? m : k) + extra,
                Ldb = (transB ? k : n) + (pad ? rng.Next(1, 9) : 0),
                Ldc = n + (pad ? rng.Next(1, 9) : 0),
            };
            cs.A = Fill(rng, Math.Max(1, (transA ? k : m) * cs.Lda));
            cs.B = Fill(rng, Math.Max(1, (transB ? n : k) * cs.Ldb));
            cs.C = Fill(rng, Math.Max(1, m * cs.Ldc));
            cs.C0 = (float[])cs.C.Clone();
            return cs;
        }

        public Case Slice(float[] a, int offA, float[] b, int offB, float[] c0, float[] c, int offC) => new()
        {
            M = M, N = N, K = K, Lda = Lda, Ldb = Ldb, Ldc = Ldc, TransA = TransA, TransB = TransB, Accumulate = Accumulate,
            A = a, B = b, C = c, C0 = c0, OffA = offA, OffB = offB, OffC = offC,
        };

        public unsafe void RunPublicPointer()
        {
            fixed (float* pa = A, pb = B, pc = C)
            {
                Gemm.Sgemm(TransA, TransB, M, N, K, pa, Lda, pb, Ldb, pc, Ldc, Accumulate);
            }
        }

        public void RunPublicSpan() => Gemm.Sgemm(TransA, TransB, M, N, K, A, Lda, B, Ldb, C, Ldc, Accumulate);

        public unsafe void RunWith(Options options)
        {
            fixed (float* pa = A, pb = B, pc = C)
            {
                Gemm.SgemmWith(options, TransA, TransB, M, N, K, pa, Lda, pb, Ldb, pc, Ldc, Accumulate);
            }
        }

        public void Check(int seed, string context)
        {
            // op(A) by rows and op(B) by columns, in float64, so the reference loop runs over contiguous memory.
            double[] opA = new double[M * K], opBt = new double[N * K];
            for (int i = 0; i < M; i++)
            {
                for (int p = 0; p < K; p++)
                {
                    opA[(i * K) + p] = A[OffA + (TransA ? (p * Lda) + i : (i * Lda) + p)];
                }
            }
            for (int j = 0; j < N; j++)
            {
                for (int p = 0; p < K; p++)
                {
                    opBt[(j * K) + p] = B[OffB + (TransB ? (j * Ldb) + p : (p * Ldb) + j)];
                }
            }
            double u2 = Math.Pow(2, -23);
            for (int i = 0; i < M; i++)
            {
                ReadOnlySpan<double> ai = opA.AsSpan(i * K, K);
                for (int j = 0; j < N; j++)
                {
                    ReadOnlySpan<double> bj = opBt.AsSpan(j * K, K);
                    int at = OffC + (i * Ldc) + j;
                    double c0 = Accumulate ? C0[at] : 0;
                    double sum = c0, bound = Math.Abs(c0);
                    for (int p = 0; p < ai.Length; p++)
                    {
                        double prod = ai[p] * bj[p];
                        sum += prod;
                        bound += Math.Abs(prod);
                    }
                    double tol = (K + 2) * u2 * bound;
                    double got = C[at];
                    if (!(Math.Abs(got - sum) <= tol))
                    {
                        Assert.Fail($"seed {seed} ({context}): m={M} n={N} k={K} transA={TransA} transB={TransB} accumulate={Accumulate} " +
                            $"lda={Lda} ldb={Ldb} ldc={Ldc}: C[{i},{j}] = {got}, expected {sum} ± {tol}");
                    }
                }
            }
        }
    }
}

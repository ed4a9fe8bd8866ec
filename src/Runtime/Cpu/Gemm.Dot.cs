using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Runtime.Cpu;

// Dot-product GEMM kernels for skinny products (reduction along k), split out of Gemm.cs by size.
public static partial class Gemm
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Dot512x4x4(int rows, int cols, int k, float* a, nint lda, float* b, nint ldb, float* c, nint rsc, nint csc, bool add)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<float> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> a1 = default, a2 = default, a3 = default;
        Vector512<float> b1 = default, b2 = default, b3 = default;
        int p = 0;
        if (rows == 4 && cols == 4)
        {
            // Whole tile: no per-accumulator guards.
            for (; p <= k - 16; p += 16)
            {
                Vector512<float> a0 = Vector512.Load(a + p);
                a1 = Vector512.Load(a + (1 * lda) + p);
                a2 = Vector512.Load(a + (2 * lda) + p);
                a3 = Vector512.Load(a + (3 * lda) + p);
                Vector512<float> b0 = Vector512.Load(b + p);
                b1 = Vector512.Load(b + (1 * ldb) + p);
                b2 = Vector512.Load(b + (2 * ldb) + p);
                b3 = Vector512.Load(b + (3 * ldb) + p);
                c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
                c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
                c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
                c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
                c4 = Vector512.FusedMultiplyAdd(a1, b0, c4);
                c5 = Vector512.FusedMultiplyAdd(a1, b1, c5);
                c6 = Vector512.FusedMultiplyAdd(a1, b2, c6);
                c7 = Vector512.FusedMultiplyAdd(a1, b3, c7);
                c8 = Vector512.FusedMultiplyAdd(a2, b0, c8);
                c9 = Vector512.FusedMultiplyAdd(a2, b1, c9);
                c10 = Vector512.FusedMultiplyAdd(a2, b2, c10);
                c11 = Vector512.FusedMultiplyAdd(a2, b3, c11);
                c12 = Vector512.FusedMultiplyAdd(a3, b0, c12);
                c13 = Vector512.FusedMultiplyAdd(a3, b1, c13);
                c14 = Vector512.FusedMultiplyAdd(a3, b2, c14);
                c15 = Vector512.FusedMultiplyAdd(a3, b3, c15);
            }
        }
        for (; p <= k - 16; p += 16)
        {
            Vector512<float> a0 = Vector512.Load(a + p);
            if (rows > 1)
            {
                a1 = Vector512.Load(a + (1 * lda) + p);
            }
            if (rows > 2)
            {
                a2 = Vector512.Load(a + (2 * lda) + p);
            }
            if (rows > 3)
            {
                a3 = Vector512.Load(a + (3 * lda) + p);
            }
            Vector512<float> b0 = Vector512.Load(b + p);
            if (cols > 1)
            {
                b1 = Vector512.Load(b + (1 * ldb) + p);
            }
            if (cols > 2)
            {
                b2 = Vector512.Load(b + (2 * ldb) + p);
            }
            if (cols > 3)
            {
                b3 = Vector512.Load(b + (3 * ldb) + p);
            }
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            if (cols > 1)
            {
                c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
            }
            if (cols > 2)
            {
                c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
            }
            if (cols > 3)
            {
                c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
            }
            if (rows > 1)
            {
                c4 = Vector512.FusedMultiplyAdd(a1, b0, c4);
            }
            if (rows > 1 && cols > 1)
            {
                c5 = Vector512.FusedMultiplyAdd(a1, b1, c5);
            }
            if (rows > 1 && cols > 2)
            {
                c6 = Vector512.FusedMultiplyAdd(a1, b2, c6);
            }
            if (rows > 1 && cols > 3)
            {
                c7 = Vector512.FusedMultiplyAdd(a1, b3, c7);
            }
            if (rows > 2)
            {
                c8 = Vector512.FusedMultiplyAdd(a2, b0, c8);
            }
            if (rows > 2 && cols > 1)
            {
                c9 = Vector512.FusedMultiplyAdd(a2, b1, c9);
            }
            if (rows > 2 && cols > 2)
            {
                c10 = Vector512.FusedMultiplyAdd(a2, b2, c10);
            }
            if (rows > 2 && cols > 3)
            {
                c11 = Vector512.FusedMultiplyAdd(a2, b3, c11);
            }
            if (rows > 3)
            {
                c12 = Vector512.FusedMultiplyAdd(a3, b0, c12);
            }
            if (rows > 3 && cols > 1)
            {
                c13 = Vector512.FusedMultiplyAdd(a3, b1, c13);
            }
            if (rows > 3 && cols > 2)
            {
                c14 = Vector512.FusedMultiplyAdd(a3, b2, c14);
            }
            if (rows > 3 && cols > 3)
            {
                c15 = Vector512.FusedMultiplyAdd(a3, b3, c15);
            }
        }
        if (p < k)
        {
            Vector512<float> mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(k - p)).AsSingle();
            Vector512<float> a0 = Avx512F.MaskLoad(a + p, mask, default);
            if (rows > 1)
            {
                a1 = Avx512F.MaskLoad(a + (1 * lda) + p, mask, default);
            }
            if (rows > 2)
            {
                a2 = Avx512F.MaskLoad(a + (2 * lda) + p, mask, default);
            }
            if (rows > 3)
            {
                a3 = Avx512F.MaskLoad(a + (3 * lda) + p, mask, default);
            }
            Vector512<float> b0 = Avx512F.MaskLoad(b + p, mask, default);
            if (cols > 1)
            {
                b1 = Avx512F.MaskLoad(b + (1 * ldb) + p, mask, default);
            }
            if (cols > 2)
            {
                b2 = Avx512F.MaskLoad(b + (2 * ldb) + p, mask, default);
            }
            if (cols > 3)
            {
                b3 = Avx512F.MaskLoad(b + (3 * ldb) + p, mask, default);
            }
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
            c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
            c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
            c4 = Vector512.FusedMultiplyAdd(a1, b0, c4);
            c5 = Vector512.FusedMultiplyAdd(a1, b1, c5);
            c6 = Vector512.FusedMultiplyAdd(a1, b2, c6);
            c7 = Vector512.FusedMultiplyAdd(a1, b3, c7);
            c8 = Vector512.FusedMultiplyAdd(a2, b0, c8);
            c9 = Vector512.FusedMultiplyAdd(a2, b1, c9);
            c10 = Vector512.FusedMultiplyAdd(a2, b2, c10);
            c11 = Vector512.FusedMultiplyAdd(a2, b3, c11);
            c12 = Vector512.FusedMultiplyAdd(a3, b0, c12);
            c13 = Vector512.FusedMultiplyAdd(a3, b1, c13);
            c14 = Vector512.FusedMultiplyAdd(a3, b2, c14);
            c15 = Vector512.FusedMultiplyAdd(a3, b3, c15);
        }
        float* sums = stackalloc float[16];
        Vector512<float> w0 = Fold2(Fold1(c0, c1), Fold1(c2, c3));
        Vector512<float> w1 = Fold2(Fold1(c4, c5), Fold1(c6, c7));
        Vector512<float> w2 = Fold2(Fold1(c8, c9), Fold1(c10, c11));
        Vector512<float> w3 = Fold2(Fold1(c12, c13), Fold1(c14, c15));
        Vector512.Store(Fold4(Fold3(w0, w1), Fold3(w2, w3)), sums);
        // Lane 4·(q mod 4) + q/4 holds accumulator q.
        Emit(c, sums[0], add);
        if (cols > 1)
        {
            Emit(c + (1 * csc), sums[4], add);
        }
        if (cols > 2)
        {
            Emit(c + (2 * csc), sums[8], add);
        }
        if (cols > 3)
        {
            Emit(c + (3 * csc), sums[12], add);
        }
        if (rows > 1)
        {
            Emit(c + (1 * rsc), sums[1], add);
        }
        if (rows > 1 && cols > 1)
        {
            Emit(c + (1 * rsc) + (1 * csc), sums[5], add);
        }
        if (rows > 1 && cols > 2)
        {
            Emit(c + (1 * rsc) + (2 * csc), sums[9], add);
        }
        if (rows > 1 && cols > 3)
        {
            Emit(c + (1 * rsc) + (3 * csc), sums[13], add);
        }
        if (rows > 2)
        {
            Emit(c + (2 * rsc), sums[2], add);
        }
        if (rows > 2 && cols > 1)
        {
            Emit(c + (2 * rsc) + (1 * csc), sums[6], add);
        }
        if (rows > 2 && cols > 2)
        {
            Emit(c + (2 * rsc) + (2 * csc), sums[10], add);
        }
        if (rows > 2 && cols > 3)
        {
            Emit(c + (2 * rsc) + (3 * csc), sums[14], add);
        }
        if (rows > 3)
        {
            Emit(c + (3 * rsc), sums[3], add);
        }
        if (rows > 3 && cols > 1)
        {
            Emit(c + (3 * rsc) + (1 * csc), sums[7], add);
        }
        if (rows > 3 && cols > 2)
        {
            Emit(c + (3 * rsc) + (2 * csc), sums[11], add);
        }
        if (rows > 3 && cols > 3)
        {
            Emit(c + (3 * rsc) + (3 * csc), sums[15], add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Dot512x8x2(int rows, int cols, int k, float* a, nint lda, float* b, nint ldb, float* c, nint rsc, nint csc, bool add)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<float> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> b1 = default;
        int p = 0;
        if (rows == 8 && cols == 2)
        {
            // Whole tile: no per-accumulator guards.
            for (; p <= k - 16; p += 16)
            {
                Vector512<float> a0 = Vector512.Load(a + p);
                a1 = Vector512.Load(a + (1 * lda) + p);
                a2 = Vector512.Load(a + (2 * lda) + p);
                a3 = Vector512.Load(a + (3 * lda) + p);
                a4 = Vector512.Load(a + (4 * lda) + p);
                a5 = Vector512.Load(a + (5 * lda) + p);
                a6 = Vector512.Load(a + (6 * lda) + p);
                a7 = Vector512.Load(a + (7 * lda) + p);
                Vector512<float> b0 = Vector512.Load(b + p);
                b1 = Vector512.Load(b + (1 * ldb) + p);
                c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
                c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
                c2 = Vector512.FusedMultiplyAdd(a1, b0, c2);
                c3 = Vector512.FusedMultiplyAdd(a1, b1, c3);
                c4 = Vector512.FusedMultiplyAdd(a2, b0, c4);
                c5 = Vector512.FusedMultiplyAdd(a2, b1, c5);
                c6 = Vector512.FusedMultiplyAdd(a3, b0, c6);
                c7 = Vector512.FusedMultiplyAdd(a3, b1, c7);
                c8 = Vector512.FusedMultiplyAdd(a4, b0, c8);
                c9 = Vector512.FusedMultiplyAdd(a4, b1, c9);
                c10 = Vector512.FusedMultiplyAdd(a5, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(a5, b1, c11);
                c12 = Vector512.FusedMultiplyAdd(a6, b0, c12);
                c13 = Vector512.FusedMultiplyAdd(a6, b1, c13);
                c14 = Vector512.FusedMultiplyAdd(a7, b0, c14);
                c15 = Vector512.FusedMultiplyAdd(a7, b1, c15);
            }
        }
        for (; p <= k - 16; p += 16)
        {
            Vector512<float> a0 = Vector512.Load(a + p);
            if (rows > 1)
            {
                a1 = Vector512.Load(a + (1 * lda) + p);
            }
            if (rows > 2)
            {
                a2 = Vector512.Load(a + (2 * lda) + p);
            }
            if (rows > 3)
            {
                a3 = Vector512.Load(a + (3 * lda) + p);
            }
            if (rows > 4)
            {
                a4 = Vector512.Load(a + (4 * lda) + p);
            }
            if (rows > 5)
            {
                a5 = Vector512.Load(a + (5 * lda) + p);
            }
            if (rows > 6)
            {
                a6 = Vector512.Load(a + (6 * lda) + p);
            }
            if (rows > 7)
            {
                a7 = Vector512.Load(a + (7 * lda) + p);
            }
            Vector512<float> b0 = Vector512.Load(b + p);
            if (cols > 1)
            {
                b1 = Vector512.Load(b + (1 * ldb) + p);
            }
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            if (cols > 1)
            {
                c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
            }
            if (rows > 1)
            {
                c2 = Vector512.FusedMultiplyAdd(a1, b0, c2);
            }
            if (rows > 1 && cols > 1)
            {
                c3 = Vector512.FusedMultiplyAdd(a1, b1, c3);
            }
            if (rows > 2)
            {
                c4 = Vector512.FusedMultiplyAdd(a2, b0, c4);
            }
            if (rows > 2 && cols > 1)
            {
                c5 = Vector512.FusedMultiplyAdd(a2, b1, c5);
            }
            if (rows > 3)
            {
                c6 = Vector512.FusedMultiplyAdd(a3, b0, c6);
            }
            if (rows > 3 && cols > 1)
            {
                c7 = Vector512.FusedMultiplyAdd(a3, b1, c7);
            }
            if (rows > 4)
            {
                c8 = Vector512.FusedMultiplyAdd(a4, b0, c8);
            }
            if (rows > 4 && cols > 1)
            {
                c9 = Vector512.FusedMultiplyAdd(a4, b1, c9);
            }
            if (rows > 5)
            {
                c10 = Vector512.FusedMultiplyAdd(a5, b0, c10);
            }
            if (rows > 5 && cols > 1)
            {
                c11 = Vector512.FusedMultiplyAdd(a5, b1, c11);
            }
            if (rows > 6)
            {
                c12 = Vector512.FusedMultiplyAdd(a6, b0, c12);
            }
            if (rows > 6 && cols > 1)
            {
                c13 = Vector512.FusedMultiplyAdd(a6, b1, c13);
            }
            if (rows > 7)
            {
                c14 = Vector512.FusedMultiplyAdd(a7, b0, c14);
            }
            if (rows > 7 && cols > 1)
            {
                c15 = Vector512.FusedMultiplyAdd(a7, b1, c15);
            }
        }
        if (p < k)
        {
            Vector512<float> mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(k - p)).AsSingle();
            Vector512<float> a0 = Avx512F.MaskLoad(a + p, mask, default);
            if (rows > 1)
            {
                a1 = Avx512F.MaskLoad(a + (1 * lda) + p, mask, default);
            }
            if (rows > 2)
            {
                a2 = Avx512F.MaskLoad(a + (2 * lda) + p, mask, default);
            }
            if (rows > 3)
            {
                a3 = Avx512F.MaskLoad(a + (3 * lda) + p, mask, default);
            }
            if (rows > 4)
            {
                a4 = Avx512F.MaskLoad(a + (4 * lda) + p, mask, default);
            }
            if (rows > 5)
            {
                a5 = Avx512F.MaskLoad(a + (5 * lda) + p, mask, default);
            }
            if (rows > 6)
            {
                a6 = Avx512F.MaskLoad(a + (6 * lda) + p, mask, default);
            }
            if (rows > 7)
            {
                a7 = Avx512F.MaskLoad(a + (7 * lda) + p, mask, default);
            }
            Vector512<float> b0 = Avx512F.MaskLoad(b + p, mask, default);
            if (cols > 1)
            {
                b1 = Avx512F.MaskLoad(b + (1 * ldb) + p, mask, default);
            }
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
            c2 = Vector512.FusedMultiplyAdd(a1, b0, c2);
            c3 = Vector512.FusedMultiplyAdd(a1, b1, c3);
            c4 = Vector512.FusedMultiplyAdd(a2, b0, c4);
            c5 = Vector512.FusedMultiplyAdd(a2, b1, c5);
            c6 = Vector512.FusedMultiplyAdd(a3, b0, c6);
            c7 = Vector512.FusedMultiplyAdd(a3, b1, c7);
            c8 = Vector512.FusedMultiplyAdd(a4, b0, c8);
            c9 = Vector512.FusedMultiplyAdd(a4, b1, c9);
            c10 = Vector512.FusedMultiplyAdd(a5, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a5, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(a6, b0, c12);
            c13 = Vector512.FusedMultiplyAdd(a6, b1, c13);
            c14 = Vector512.FusedMultiplyAdd(a7, b0, c14);
            c15 = Vector512.FusedMultiplyAdd(a7, b1, c15);
        }
        float* sums = stackalloc float[16];
        Vector512<float> w0 = Fold2(Fold1(c0, c1), Fold1(c2, c3));
        Vector512<float> w1 = Fold2(Fold1(c4, c5), Fold1(c6, c7));
        Vector512<float> w2 = Fold2(Fold1(c8, c9), Fold1(c10, c11));
        Vector512<float> w3 = Fold2(Fold1(c12, c13), Fold1(c14, c15));
        Vector512.Store(Fold4(Fold3(w0, w1), Fold3(w2, w3)), sums);
        // Lane 4·(q mod 4) + q/4 holds accumulator q.
        Emit(c, sums[0], add);
        if (cols > 1)
        {
            Emit(c + (1 * csc), sums[4], add);
        }
        if (rows > 1)
        {
            Emit(c + (1 * rsc), sums[8], add);
        }
        if (rows > 1 && cols > 1)
        {
            Emit(c + (1 * rsc) + (1 * csc), sums[12], add);
        }
        if (rows > 2)
        {
            Emit(c + (2 * rsc), sums[1], add);
        }
        if (rows > 2 && cols > 1)
        {
            Emit(c + (2 * rsc) + (1 * csc), sums[5], add);
        }
        if (rows > 3)
        {
            Emit(c + (3 * rsc), sums[9], add);
        }
        if (rows > 3 && cols > 1)
        {
            Emit(c + (3 * rsc) + (1 * csc), sums[13], add);
        }
        if (rows > 4)
        {
            Emit(c + (4 * rsc), sums[2], add);
        }
        if (rows > 4 && cols > 1)
        {
            Emit(c + (4 * rsc) + (1 * csc), sums[6], add);
        }
        if (rows > 5)
        {
            Emit(c + (5 * rsc), sums[10], add);
        }
        if (rows > 5 && cols > 1)
        {
            Emit(c + (5 * rsc) + (1 * csc), sums[14], add);
        }
        if (rows > 6)
        {
            Emit(c + (6 * rsc), sums[3], add);
        }
        if (rows > 6 && cols > 1)
        {
            Emit(c + (6 * rsc) + (1 * csc), sums[7], add);
        }
        if (rows > 7)
        {
            Emit(c + (7 * rsc), sums[11], add);
        }
        if (rows > 7 && cols > 1)
        {
            Emit(c + (7 * rsc) + (1 * csc), sums[15], add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Dot512x16x1(int rows, int cols, int k, float* a, nint lda, float* b, nint ldb, float* c, nint rsc, nint csc, bool add)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<float> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default, a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        int p = 0;
        if (rows == 16 && cols == 1)
        {
            // Whole tile: no per-accumulator guards.
            for (; p <= k - 16; p += 16)
            {
                Vector512<float> a0 = Vector512.Load(a + p);
                a1 = Vector512.Load(a + (1 * lda) + p);
                a2 = Vector512.Load(a + (2 * lda) + p);
                a3 = Vector512.Load(a + (3 * lda) + p);
                a4 = Vector512.Load(a + (4 * lda) + p);
                a5 = Vector512.Load(a + (5 * lda) + p);
                a6 = Vector512.Load(a + (6 * lda) + p);
                a7 = Vector512.Load(a + (7 * lda) + p);
                a8 = Vector512.Load(a + (8 * lda) + p);
                a9 = Vector512.Load(a + (9 * lda) + p);
                a10 = Vector512.Load(a + (10 * lda) + p);
                a11 = Vector512.Load(a + (11 * lda) + p);
                a12 = Vector512.Load(a + (12 * lda) + p);
                a13 = Vector512.Load(a + (13 * lda) + p);
                a14 = Vector512.Load(a + (14 * lda) + p);
                a15 = Vector512.Load(a + (15 * lda) + p);
                Vector512<float> b0 = Vector512.Load(b + p);
                c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
                c1 = Vector512.FusedMultiplyAdd(a1, b0, c1);
                c2 = Vector512.FusedMultiplyAdd(a2, b0, c2);
                c3 = Vector512.FusedMultiplyAdd(a3, b0, c3);
                c4 = Vector512.FusedMultiplyAdd(a4, b0, c4);
                c5 = Vector512.FusedMultiplyAdd(a5, b0, c5);
                c6 = Vector512.FusedMultiplyAdd(a6, b0, c6);
                c7 = Vector512.FusedMultiplyAdd(a7, b0, c7);
                c8 = Vector512.FusedMultiplyAdd(a8, b0, c8);
                c9 = Vector512.FusedMultiplyAdd(a9, b0, c9);
                c10 = Vector512.FusedMultiplyAdd(a10, b0, c10);
                c11 = Vector512.FusedMultiplyAdd(a11, b0, c11);
                c12 = Vector512.FusedMultiplyAdd(a12, b0, c12);
                c13 = Vector512.FusedMultiplyAdd(a13, b0, c13);
                c14 = Vector512.FusedMultiplyAdd(a14, b0, c14);
                c15 = Vector512.FusedMultiplyAdd(a15, b0, c15);
            }
        }
        for (; p <= k - 16; p += 16)
        {
            Vector512<float> a0 = Vector512.Load(a + p);
            if (rows > 1)
            {
                a1 = Vector512.Load(a + (1 * lda) + p);
            }
            if (rows > 2)
            {
                a2 = Vector512.Load(a + (2 * lda) + p);
            }
            if (rows > 3)
            {
                a3 = Vector512.Load(a + (3 * lda) + p);
            }
            if (rows > 4)
            {
                a4 = Vector512.Load(a + (4 * lda) + p);
            }
            if (rows > 5)
            {
                a5 = Vector512.Load(a + (5 * lda) + p);
            }
            if (rows > 6)
            {
                a6 = Vector512.Load(a + (6 * lda) + p);
            }
            if (rows > 7)
            {
                a7 = Vector512.Load(a + (7 * lda) + p);
            }
            if (rows > 8)
            {
                a8 = Vector512.Load(a + (8 * lda) + p);
            }
            if (rows > 9)
            {
                a9 = Vector512.Load(a + (9 * lda) + p);
            }
            if (rows > 10)
            {
                a10 = Vector512.Load(a + (10 * lda) + p);
            }
            if (rows > 11)
            {
                a11 = Vector512.Load(a + (11 * lda) + p);
            }
            if (rows > 12)
            {
                a12 = Vector512.Load(a + (12 * lda) + p);
            }
            if (rows > 13)
            {
                a13 = Vector512.Load(a + (13 * lda) + p);
            }
            if (rows > 14)
            {
                a14 = Vector512.Load(a + (14 * lda) + p);
            }
            if (rows > 15)
            {
                a15 = Vector512.Load(a + (15 * lda) + p);
            }
            Vector512<float> b0 = Vector512.Load(b + p);
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            if (rows > 1)
            {
                c1 = Vector512.FusedMultiplyAdd(a1, b0, c1);
            }
            if (rows > 2)
            {
                c2 = Vector512.FusedMultiplyAdd(a2, b0, c2);
            }
            if (rows > 3)
            {
                c3 = Vector512.FusedMultiplyAdd(a3, b0, c3);
            }
            if (rows > 4)
            {
                c4 = Vector512.FusedMultiplyAdd(a4, b0, c4);
            }
            if (rows > 5)
            {
                c5 = Vector512.FusedMultiplyAdd(a5, b0, c5);
            }
            if (rows > 6)
            {
                c6 = Vector512.FusedMultiplyAdd(a6, b0, c6);
            }
            if (rows > 7)
            {
                c7 = Vector512.FusedMultiplyAdd(a7, b0, c7);
            }
            if (rows > 8)
            {
                c8 = Vector512.FusedMultiplyAdd(a8, b0, c8);
            }
            if (rows > 9)
            {
                c9 = Vector512.FusedMultiplyAdd(a9, b0, c9);
            }
            if (rows > 10)
            {
                c10 = Vector512.FusedMultiplyAdd(a10, b0, c10);
            }
            if (rows > 11)
            {
                c11 = Vector512.FusedMultiplyAdd(a11, b0, c11);
            }
            if (rows > 12)
            {
                c12 = Vector512.FusedMultiplyAdd(a12, b0, c12);
            }
            if (rows > 13)
            {
                c13 = Vector512.FusedMultiplyAdd(a13, b0, c13);
            }
            if (rows > 14)
            {
                c14 = Vector512.FusedMultiplyAdd(a14, b0, c14);
            }
            if (rows > 15)
            {
                c15 = Vector512.FusedMultiplyAdd(a15, b0, c15);
            }
        }
        if (p < k)
        {
            Vector512<float> mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(k - p)).AsSingle();
            Vector512<float> a0 = Avx512F.MaskLoad(a + p, mask, default);
            if (rows > 1)
            {
                a1 = Avx512F.MaskLoad(a + (1 * lda) + p, mask, default);
            }
            if (rows > 2)
            {
                a2 = Avx512F.MaskLoad(a + (2 * lda) + p, mask, default);
            }
            if (rows > 3)
            {
                a3 = Avx512F.MaskLoad(a + (3 * lda) + p, mask, default);
            }
            if (rows > 4)
            {
                a4 = Avx512F.MaskLoad(a + (4 * lda) + p, mask, default);
            }
            if (rows > 5)
            {
                a5 = Avx512F.MaskLoad(a + (5 * lda) + p, mask, default);
            }
            if (rows > 6)
            {
                a6 = Avx512F.MaskLoad(a + (6 * lda) + p, mask, default);
            }
            if (rows > 7)
            {
                a7 = Avx512F.MaskLoad(a + (7 * lda) + p, mask, default);
            }
            if (rows > 8)
            {
                a8 = Avx512F.MaskLoad(a + (8 * lda) + p, mask, default);
            }
            if (rows > 9)
            {
                a9 = Avx512F.MaskLoad(a + (9 * lda) + p, mask, default);
            }
            if (rows > 10)
            {
                a10 = Avx512F.MaskLoad(a + (10 * lda) + p, mask, default);
            }
            if (rows > 11)
            {
                a11 = Avx512F.MaskLoad(a + (11 * lda) + p, mask, default);
            }
            if (rows > 12)
            {
                a12 = Avx512F.MaskLoad(a + (12 * lda) + p, mask, default);
            }
            if (rows > 13)
            {
                a13 = Avx512F.MaskLoad(a + (13 * lda) + p, mask, default);
            }
            if (rows > 14)
            {
                a14 = Avx512F.MaskLoad(a + (14 * lda) + p, mask, default);
            }
            if (rows > 15)
            {
                a15 = Avx512F.MaskLoad(a + (15 * lda) + p, mask, default);
            }
            Vector512<float> b0 = Avx512F.MaskLoad(b + p, mask, default);
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            c1 = Vector512.FusedMultiplyAdd(a1, b0, c1);
            c2 = Vector512.FusedMultiplyAdd(a2, b0, c2);
            c3 = Vector512.FusedMultiplyAdd(a3, b0, c3);
            c4 = Vector512.FusedMultiplyAdd(a4, b0, c4);
            c5 = Vector512.FusedMultiplyAdd(a5, b0, c5);
            c6 = Vector512.FusedMultiplyAdd(a6, b0, c6);
            c7 = Vector512.FusedMultiplyAdd(a7, b0, c7);
            c8 = Vector512.FusedMultiplyAdd(a8, b0, c8);
            c9 = Vector512.FusedMultiplyAdd(a9, b0, c9);
            c10 = Vector512.FusedMultiplyAdd(a10, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(a11, b0, c11);
            c12 = Vector512.FusedMultiplyAdd(a12, b0, c12);
            c13 = Vector512.FusedMultiplyAdd(a13, b0, c13);
            c14 = Vector512.FusedMultiplyAdd(a14, b0, c14);
            c15 = Vector512.FusedMultiplyAdd(a15, b0, c15);
        }
        float* sums = stackalloc float[16];
        Vector512<float> w0 = Fold2(Fold1(c0, c1), Fold1(c2, c3));
        Vector512<float> w1 = Fold2(Fold1(c4, c5), Fold1(c6, c7));
        Vector512<float> w2 = Fold2(Fold1(c8, c9), Fold1(c10, c11));
        Vector512<float> w3 = Fold2(Fold1(c12, c13), Fold1(c14, c15));
        Vector512.Store(Fold4(Fold3(w0, w1), Fold3(w2, w3)), sums);
        // Lane 4·(q mod 4) + q/4 holds accumulator q.
        Emit(c, sums[0], add);
        if (rows > 1)
        {
            Emit(c + (1 * rsc), sums[4], add);
        }
        if (rows > 2)
        {
            Emit(c + (2 * rsc), sums[8], add);
        }
        if (rows > 3)
        {
            Emit(c + (3 * rsc), sums[12], add);
        }
        if (rows > 4)
        {
            Emit(c + (4 * rsc), sums[1], add);
        }
        if (rows > 5)
        {
            Emit(c + (5 * rsc), sums[5], add);
        }
        if (rows > 6)
        {
            Emit(c + (6 * rsc), sums[9], add);
        }
        if (rows > 7)
        {
            Emit(c + (7 * rsc), sums[13], add);
        }
        if (rows > 8)
        {
            Emit(c + (8 * rsc), sums[2], add);
        }
        if (rows > 9)
        {
            Emit(c + (9 * rsc), sums[6], add);
        }
        if (rows > 10)
        {
            Emit(c + (10 * rsc), sums[10], add);
        }
        if (rows > 11)
        {
            Emit(c + (11 * rsc), sums[14], add);
        }
        if (rows > 12)
        {
            Emit(c + (12 * rsc), sums[3], add);
        }
        if (rows > 13)
        {
            Emit(c + (13 * rsc), sums[7], add);
        }
        if (rows > 14)
        {
            Emit(c + (14 * rsc), sums[11], add);
        }
        if (rows > 15)
        {
            Emit(c + (15 * rsc), sums[15], add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Dot512x2x8(int rows, int cols, int k, float* a, nint lda, float* b, nint ldb, float* c, nint rsc, nint csc, bool add)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<float> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> a1 = default;
        Vector512<float> b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        int p = 0;
        if (rows == 2 && cols == 8)
        {
            // Whole tile: no per-accumulator guards.
            for (; p <= k - 16; p += 16)
            {
                Vector512<float> a0 = Vector512.Load(a + p);
                a1 = Vector512.Load(a + (1 * lda) + p);
                Vector512<float> b0 = Vector512.Load(b + p);
                b1 = Vector512.Load(b + (1 * ldb) + p);
                b2 = Vector512.Load(b + (2 * ldb) + p);
                b3 = Vector512.Load(b + (3 * ldb) + p);
                b4 = Vector512.Load(b + (4 * ldb) + p);
                b5 = Vector512.Load(b + (5 * ldb) + p);
                b6 = Vector512.Load(b + (6 * ldb) + p);
                b7 = Vector512.Load(b + (7 * ldb) + p);
                c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
                c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
                c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
                c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
                c4 = Vector512.FusedMultiplyAdd(a0, b4, c4);
                c5 = Vector512.FusedMultiplyAdd(a0, b5, c5);
                c6 = Vector512.FusedMultiplyAdd(a0, b6, c6);
                c7 = Vector512.FusedMultiplyAdd(a0, b7, c7);
                c8 = Vector512.FusedMultiplyAdd(a1, b0, c8);
                c9 = Vector512.FusedMultiplyAdd(a1, b1, c9);
                c10 = Vector512.FusedMultiplyAdd(a1, b2, c10);
                c11 = Vector512.FusedMultiplyAdd(a1, b3, c11);
                c12 = Vector512.FusedMultiplyAdd(a1, b4, c12);
                c13 = Vector512.FusedMultiplyAdd(a1, b5, c13);
                c14 = Vector512.FusedMultiplyAdd(a1, b6, c14);
                c15 = Vector512.FusedMultiplyAdd(a1, b7, c15);
            }
        }
        for (; p <= k - 16; p += 16)
        {
            Vector512<float> a0 = Vector512.Load(a + p);
            if (rows > 1)
            {
                a1 = Vector512.Load(a + (1 * lda) + p);
            }
            Vector512<float> b0 = Vector512.Load(b + p);
            if (cols > 1)
            {
                b1 = Vector512.Load(b + (1 * ldb) + p);
            }
            if (cols > 2)
            {
                b2 = Vector512.Load(b + (2 * ldb) + p);
            }
            if (cols > 3)
            {
                b3 = Vector512.Load(b + (3 * ldb) + p);
            }
            if (cols > 4)
            {
                b4 = Vector512.Load(b + (4 * ldb) + p);
            }
            if (cols > 5)
            {
                b5 = Vector512.Load(b + (5 * ldb) + p);
            }
            if (cols > 6)
            {
                b6 = Vector512.Load(b + (6 * ldb) + p);
            }
            if (cols > 7)
            {
                b7 = Vector512.Load(b + (7 * ldb) + p);
            }
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            if (cols > 1)
            {
                c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
            }
            if (cols > 2)
            {
                c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
            }
            if (cols > 3)
            {
                c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
            }
            if (cols > 4)
            {
                c4 = Vector512.FusedMultiplyAdd(a0, b4, c4);
            }
            if (cols > 5)
            {
                c5 = Vector512.FusedMultiplyAdd(a0, b5, c5);
            }
            if (cols > 6)
            {
                c6 = Vector512.FusedMultiplyAdd(a0, b6, c6);
            }
            if (cols > 7)
            {
                c7 = Vector512.FusedMultiplyAdd(a0, b7, c7);
            }
            if (rows > 1)
            {
                c8 = Vector512.FusedMultiplyAdd(a1, b0, c8);
            }
            if (rows > 1 && cols > 1)
            {
                c9 = Vector512.FusedMultiplyAdd(a1, b1, c9);
            }
            if (rows > 1 && cols > 2)
            {
                c10 = Vector512.FusedMultiplyAdd(a1, b2, c10);
            }
            if (rows > 1 && cols > 3)
            {
                c11 = Vector512.FusedMultiplyAdd(a1, b3, c11);
            }
            if (rows > 1 && cols > 4)
            {
                c12 = Vector512.FusedMultiplyAdd(a1, b4, c12);
            }
            if (rows > 1 && cols > 5)
            {
                c13 = Vector512.FusedMultiplyAdd(a1, b5, c13);
            }
            if (rows > 1 && cols > 6)
            {
                c14 = Vector512.FusedMultiplyAdd(a1, b6, c14);
            }
            if (rows > 1 && cols > 7)
            {
                c15 = Vector512.FusedMultiplyAdd(a1, b7, c15);
            }
        }
        if (p < k)
        {
            Vector512<float> mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(k - p)).AsSingle();
            Vector512<float> a0 = Avx512F.MaskLoad(a + p, mask, default);
            if (rows > 1)
            {
                a1 = Avx512F.MaskLoad(a + (1 * lda) + p, mask, default);
            }
            Vector512<float> b0 = Avx512F.MaskLoad(b + p, mask, default);
            if (cols > 1)
            {
                b1 = Avx512F.MaskLoad(b + (1 * ldb) + p, mask, default);
            }
            if (cols > 2)
            {
                b2 = Avx512F.MaskLoad(b + (2 * ldb) + p, mask, default);
            }
            if (cols > 3)
            {
                b3 = Avx512F.MaskLoad(b + (3 * ldb) + p, mask, default);
            }
            if (cols > 4)
            {
                b4 = Avx512F.MaskLoad(b + (4 * ldb) + p, mask, default);
            }
            if (cols > 5)
            {
                b5 = Avx512F.MaskLoad(b + (5 * ldb) + p, mask, default);
            }
            if (cols > 6)
            {
                b6 = Avx512F.MaskLoad(b + (6 * ldb) + p, mask, default);
            }
            if (cols > 7)
            {
                b7 = Avx512F.MaskLoad(b + (7 * ldb) + p, mask, default);
            }
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
            c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
            c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
            c4 = Vector512.FusedMultiplyAdd(a0, b4, c4);
            c5 = Vector512.FusedMultiplyAdd(a0, b5, c5);
            c6 = Vector512.FusedMultiplyAdd(a0, b6, c6);
            c7 = Vector512.FusedMultiplyAdd(a0, b7, c7);
            c8 = Vector512.FusedMultiplyAdd(a1, b0, c8);
            c9 = Vector512.FusedMultiplyAdd(a1, b1, c9);
            c10 = Vector512.FusedMultiplyAdd(a1, b2, c10);
            c11 = Vector512.FusedMultiplyAdd(a1, b3, c11);
            c12 = Vector512.FusedMultiplyAdd(a1, b4, c12);
            c13 = Vector512.FusedMultiplyAdd(a1, b5, c13);
            c14 = Vector512.FusedMultiplyAdd(a1, b6, c14);
            c15 = Vector512.FusedMultiplyAdd(a1, b7, c15);
        }
        float* sums = stackalloc float[16];
        Vector512<float> w0 = Fold2(Fold1(c0, c1), Fold1(c2, c3));
        Vector512<float> w1 = Fold2(Fold1(c4, c5), Fold1(c6, c7));
        Vector512<float> w2 = Fold2(Fold1(c8, c9), Fold1(c10, c11));
        Vector512<float> w3 = Fold2(Fold1(c12, c13), Fold1(c14, c15));
        Vector512.Store(Fold4(Fold3(w0, w1), Fold3(w2, w3)), sums);
        // Lane 4·(q mod 4) + q/4 holds accumulator q.
        Emit(c, sums[0], add);
        if (cols > 1)
        {
            Emit(c + (1 * csc), sums[4], add);
        }
        if (cols > 2)
        {
            Emit(c + (2 * csc), sums[8], add);
        }
        if (cols > 3)
        {
            Emit(c + (3 * csc), sums[12], add);
        }
        if (cols > 4)
        {
            Emit(c + (4 * csc), sums[1], add);
        }
        if (cols > 5)
        {
            Emit(c + (5 * csc), sums[5], add);
        }
        if (cols > 6)
        {
            Emit(c + (6 * csc), sums[9], add);
        }
        if (cols > 7)
        {
            Emit(c + (7 * csc), sums[13], add);
        }
        if (rows > 1)
        {
            Emit(c + (1 * rsc), sums[2], add);
        }
        if (rows > 1 && cols > 1)
        {
            Emit(c + (1 * rsc) + (1 * csc), sums[6], add);
        }
        if (rows > 1 && cols > 2)
        {
            Emit(c + (1 * rsc) + (2 * csc), sums[10], add);
        }
        if (rows > 1 && cols > 3)
        {
            Emit(c + (1 * rsc) + (3 * csc), sums[14], add);
        }
        if (rows > 1 && cols > 4)
        {
            Emit(c + (1 * rsc) + (4 * csc), sums[3], add);
        }
        if (rows > 1 && cols > 5)
        {
            Emit(c + (1 * rsc) + (5 * csc), sums[7], add);
        }
        if (rows > 1 && cols > 6)
        {
            Emit(c + (1 * rsc) + (6 * csc), sums[11], add);
        }
        if (rows > 1 && cols > 7)
        {
            Emit(c + (1 * rsc) + (7 * csc), sums[15], add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Dot512x1x16(int rows, int cols, int k, float* a, nint lda, float* b, nint ldb, float* c, nint rsc, nint csc, bool add)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector512<float> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default, b8 = default, b9 = default, b10 = default, b11 = default, b12 = default, b13 = default, b14 = default, b15 = default;
        int p = 0;
        if (rows == 1 && cols == 16)
        {
            // Whole tile: no per-accumulator guards.
            for (; p <= k - 16; p += 16)
            {
                Vector512<float> a0 = Vector512.Load(a + p);
                Vector512<float> b0 = Vector512.Load(b + p);
                b1 = Vector512.Load(b + (1 * ldb) + p);
                b2 = Vector512.Load(b + (2 * ldb) + p);
                b3 = Vector512.Load(b + (3 * ldb) + p);
                b4 = Vector512.Load(b + (4 * ldb) + p);
                b5 = Vector512.Load(b + (5 * ldb) + p);
                b6 = Vector512.Load(b + (6 * ldb) + p);
                b7 = Vector512.Load(b + (7 * ldb) + p);
                b8 = Vector512.Load(b + (8 * ldb) + p);
                b9 = Vector512.Load(b + (9 * ldb) + p);
                b10 = Vector512.Load(b + (10 * ldb) + p);
                b11 = Vector512.Load(b + (11 * ldb) + p);
                b12 = Vector512.Load(b + (12 * ldb) + p);
                b13 = Vector512.Load(b + (13 * ldb) + p);
                b14 = Vector512.Load(b + (14 * ldb) + p);
                b15 = Vector512.Load(b + (15 * ldb) + p);
                c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
                c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
                c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
                c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
                c4 = Vector512.FusedMultiplyAdd(a0, b4, c4);
                c5 = Vector512.FusedMultiplyAdd(a0, b5, c5);
                c6 = Vector512.FusedMultiplyAdd(a0, b6, c6);
                c7 = Vector512.FusedMultiplyAdd(a0, b7, c7);
                c8 = Vector512.FusedMultiplyAdd(a0, b8, c8);
                c9 = Vector512.FusedMultiplyAdd(a0, b9, c9);
                c10 = Vector512.FusedMultiplyAdd(a0, b10, c10);
                c11 = Vector512.FusedMultiplyAdd(a0, b11, c11);
                c12 = Vector512.FusedMultiplyAdd(a0, b12, c12);
                c13 = Vector512.FusedMultiplyAdd(a0, b13, c13);
                c14 = Vector512.FusedMultiplyAdd(a0, b14, c14);
                c15 = Vector512.FusedMultiplyAdd(a0, b15, c15);
            }
        }
        for (; p <= k - 16; p += 16)
        {
            Vector512<float> a0 = Vector512.Load(a + p);
            Vector512<float> b0 = Vector512.Load(b + p);
            if (cols > 1)
            {
                b1 = Vector512.Load(b + (1 * ldb) + p);
            }
            if (cols > 2)
            {
                b2 = Vector512.Load(b + (2 * ldb) + p);
            }
            if (cols > 3)
            {
                b3 = Vector512.Load(b + (3 * ldb) + p);
            }
            if (cols > 4)
            {
                b4 = Vector512.Load(b + (4 * ldb) + p);
            }
            if (cols > 5)
            {
                b5 = Vector512.Load(b + (5 * ldb) + p);
            }
            if (cols > 6)
            {
                b6 = Vector512.Load(b + (6 * ldb) + p);
            }
            if (cols > 7)
            {
                b7 = Vector512.Load(b + (7 * ldb) + p);
            }
            if (cols > 8)
            {
                b8 = Vector512.Load(b + (8 * ldb) + p);
            }
            if (cols > 9)
            {
                b9 = Vector512.Load(b + (9 * ldb) + p);
            }
            if (cols > 10)
            {
                b10 = Vector512.Load(b + (10 * ldb) + p);
            }
            if (cols > 11)
            {
                b11 = Vector512.Load(b + (11 * ldb) + p);
            }
            if (cols > 12)
            {
                b12 = Vector512.Load(b + (12 * ldb) + p);
            }
            if (cols > 13)
            {
                b13 = Vector512.Load(b + (13 * ldb) + p);
            }
            if (cols > 14)
            {
                b14 = Vector512.Load(b + (14 * ldb) + p);
            }
            if (cols > 15)
            {
                b15 = Vector512.Load(b + (15 * ldb) + p);
            }
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            if (cols > 1)
            {
                c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
            }
            if (cols > 2)
            {
                c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
            }
            if (cols > 3)
            {
                c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
            }
            if (cols > 4)
            {
                c4 = Vector512.FusedMultiplyAdd(a0, b4, c4);
            }
            if (cols > 5)
            {
                c5 = Vector512.FusedMultiplyAdd(a0, b5, c5);
            }
            if (cols > 6)
            {
                c6 = Vector512.FusedMultiplyAdd(a0, b6, c6);
            }
            if (cols > 7)
            {
                c7 = Vector512.FusedMultiplyAdd(a0, b7, c7);
            }
            if (cols > 8)
            {
                c8 = Vector512.FusedMultiplyAdd(a0, b8, c8);
            }
            if (cols > 9)
            {
                c9 = Vector512.FusedMultiplyAdd(a0, b9, c9);
            }
            if (cols > 10)
            {
                c10 = Vector512.FusedMultiplyAdd(a0, b10, c10);
            }
            if (cols > 11)
            {
                c11 = Vector512.FusedMultiplyAdd(a0, b11, c11);
            }
            if (cols > 12)
            {
                c12 = Vector512.FusedMultiplyAdd(a0, b12, c12);
            }
            if (cols > 13)
            {
                c13 = Vector512.FusedMultiplyAdd(a0, b13, c13);
            }
            if (cols > 14)
            {
                c14 = Vector512.FusedMultiplyAdd(a0, b14, c14);
            }
            if (cols > 15)
            {
                c15 = Vector512.FusedMultiplyAdd(a0, b15, c15);
            }
        }
        if (p < k)
        {
            Vector512<float> mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(k - p)).AsSingle();
            Vector512<float> a0 = Avx512F.MaskLoad(a + p, mask, default);
            Vector512<float> b0 = Avx512F.MaskLoad(b + p, mask, default);
            if (cols > 1)
            {
                b1 = Avx512F.MaskLoad(b + (1 * ldb) + p, mask, default);
            }
            if (cols > 2)
            {
                b2 = Avx512F.MaskLoad(b + (2 * ldb) + p, mask, default);
            }
            if (cols > 3)
            {
                b3 = Avx512F.MaskLoad(b + (3 * ldb) + p, mask, default);
            }
            if (cols > 4)
            {
                b4 = Avx512F.MaskLoad(b + (4 * ldb) + p, mask, default);
            }
            if (cols > 5)
            {
                b5 = Avx512F.MaskLoad(b + (5 * ldb) + p, mask, default);
            }
            if (cols > 6)
            {
                b6 = Avx512F.MaskLoad(b + (6 * ldb) + p, mask, default);
            }
            if (cols > 7)
            {
                b7 = Avx512F.MaskLoad(b + (7 * ldb) + p, mask, default);
            }
            if (cols > 8)
            {
                b8 = Avx512F.MaskLoad(b + (8 * ldb) + p, mask, default);
            }
            if (cols > 9)
            {
                b9 = Avx512F.MaskLoad(b + (9 * ldb) + p, mask, default);
            }
            if (cols > 10)
            {
                b10 = Avx512F.MaskLoad(b + (10 * ldb) + p, mask, default);
            }
            if (cols > 11)
            {
                b11 = Avx512F.MaskLoad(b + (11 * ldb) + p, mask, default);
            }
            if (cols > 12)
            {
                b12 = Avx512F.MaskLoad(b + (12 * ldb) + p, mask, default);
            }
            if (cols > 13)
            {
                b13 = Avx512F.MaskLoad(b + (13 * ldb) + p, mask, default);
            }
            if (cols > 14)
            {
                b14 = Avx512F.MaskLoad(b + (14 * ldb) + p, mask, default);
            }
            if (cols > 15)
            {
                b15 = Avx512F.MaskLoad(b + (15 * ldb) + p, mask, default);
            }
            c0 = Vector512.FusedMultiplyAdd(a0, b0, c0);
            c1 = Vector512.FusedMultiplyAdd(a0, b1, c1);
            c2 = Vector512.FusedMultiplyAdd(a0, b2, c2);
            c3 = Vector512.FusedMultiplyAdd(a0, b3, c3);
            c4 = Vector512.FusedMultiplyAdd(a0, b4, c4);
            c5 = Vector512.FusedMultiplyAdd(a0, b5, c5);
            c6 = Vector512.FusedMultiplyAdd(a0, b6, c6);
            c7 = Vector512.FusedMultiplyAdd(a0, b7, c7);
            c8 = Vector512.FusedMultiplyAdd(a0, b8, c8);
            c9 = Vector512.FusedMultiplyAdd(a0, b9, c9);
            c10 = Vector512.FusedMultiplyAdd(a0, b10, c10);
            c11 = Vector512.FusedMultiplyAdd(a0, b11, c11);
            c12 = Vector512.FusedMultiplyAdd(a0, b12, c12);
            c13 = Vector512.FusedMultiplyAdd(a0, b13, c13);
            c14 = Vector512.FusedMultiplyAdd(a0, b14, c14);
            c15 = Vector512.FusedMultiplyAdd(a0, b15, c15);
        }
        float* sums = stackalloc float[16];
        Vector512<float> w0 = Fold2(Fold1(c0, c1), Fold1(c2, c3));
        Vector512<float> w1 = Fold2(Fold1(c4, c5), Fold1(c6, c7));
        Vector512<float> w2 = Fold2(Fold1(c8, c9), Fold1(c10, c11));
        Vector512<float> w3 = Fold2(Fold1(c12, c13), Fold1(c14, c15));
        Vector512.Store(Fold4(Fold3(w0, w1), Fold3(w2, w3)), sums);
        // Lane 4·(q mod 4) + q/4 holds accumulator q.
        Emit(c, sums[0], add);
        if (cols > 1)
        {
            Emit(c + (1 * csc), sums[4], add);
        }
        if (cols > 2)
        {
            Emit(c + (2 * csc), sums[8], add);
        }
        if (cols > 3)
        {
            Emit(c + (3 * csc), sums[12], add);
        }
        if (cols > 4)
        {
            Emit(c + (4 * csc), sums[1], add);
        }
        if (cols > 5)
        {
            Emit(c + (5 * csc), sums[5], add);
        }
        if (cols > 6)
        {
            Emit(c + (6 * csc), sums[9], add);
        }
        if (cols > 7)
        {
            Emit(c + (7 * csc), sums[13], add);
        }
        if (cols > 8)
        {
            Emit(c + (8 * csc), sums[2], add);
        }
        if (cols > 9)
        {
            Emit(c + (9 * csc), sums[6], add);
        }
        if (cols > 10)
        {
            Emit(c + (10 * csc), sums[10], add);
        }
        if (cols > 11)
        {
            Emit(c + (11 * csc), sums[14], add);
        }
        if (cols > 12)
        {
            Emit(c + (12 * csc), sums[3], add);
        }
        if (cols > 13)
        {
            Emit(c + (13 * csc), sums[7], add);
        }
        if (cols > 14)
        {
            Emit(c + (14 * csc), sums[11], add);
        }
        if (cols > 15)
        {
            Emit(c + (15 * csc), sums[15], add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Dot256x4x4(int rows, int cols, int k, float* a, nint lda, float* b, nint ldb, float* c, nint rsc, nint csc, bool add)
    {
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        Vector256<float> c8 = default, c9 = default, c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector256<float> a1 = default, a2 = default, a3 = default;
        Vector256<float> b1 = default, b2 = default, b3 = default;
        int p = 0;
        if (rows == 4 && cols == 4)
        {
            // Whole tile: no per-accumulator guards.
            for (; p <= k - 8; p += 8)
            {
                Vector256<float> a0 = Vector256.Load(a + p);
                a1 = Vector256.Load(a + (1 * lda) + p);
                a2 = Vector256.Load(a + (2 * lda) + p);
                a3 = Vector256.Load(a + (3 * lda) + p);
                Vector256<float> b0 = Vector256.Load(b + p);
                b1 = Vector256.Load(b + (1 * ldb) + p);
                b2 = Vector256.Load(b + (2 * ldb) + p);
                b3 = Vector256.Load(b + (3 * ldb) + p);
                c0 = Vector256.FusedMultiplyAdd(a0, b0, c0);
                c1 = Vector256.FusedMultiplyAdd(a0, b1, c1);
                c2 = Vector256.FusedMultiplyAdd(a0, b2, c2);
                c3 = Vector256.FusedMultiplyAdd(a0, b3, c3);
                c4 = Vector256.FusedMultiplyAdd(a1, b0, c4);
                c5 = Vector256.FusedMultiplyAdd(a1, b1, c5);
                c6 = Vector256.FusedMultiplyAdd(a1, b2, c6);
                c7 = Vector256.FusedMultiplyAdd(a1, b3, c7);
                c8 = Vector256.FusedMultiplyAdd(a2, b0, c8);
                c9 = Vector256.FusedMultiplyAdd(a2, b1, c9);
                c10 = Vector256.FusedMultiplyAdd(a2, b2, c10);
                c11 = Vector256.FusedMultiplyAdd(a2, b3, c11);
                c12 = Vector256.FusedMultiplyAdd(a3, b0, c12);
                c13 = Vector256.FusedMultiplyAdd(a3, b1, c13);
                c14 = Vector256.FusedMultiplyAdd(a3, b2, c14);
                c15 = Vector256.FusedMultiplyAdd(a3, b3, c15);
            }
        }
        for (; p <= k - 8; p += 8)
        {
            Vector256<float> a0 = Vector256.Load(a + p);
            if (rows > 1)
            {
                a1 = Vector256.Load(a + (1 * lda) + p);
            }
            if (rows > 2)
            {
                a2 = Vector256.Load(a + (2 * lda) + p);
            }
            if (rows > 3)
            {
                a3 = Vector256.Load(a + (3 * lda) + p);
            }
            Vector256<float> b0 = Vector256.Load(b + p);
            if (cols > 1)
            {
                b1 = Vector256.Load(b + (1 * ldb) + p);
            }
            if (cols > 2)
            {
                b2 = Vector256.Load(b + (2 * ldb) + p);
            }
            if (cols > 3)
            {
                b3 = Vector256.Load(b + (3 * ldb) + p);
            }
            c0 = Vector256.FusedMultiplyAdd(a0, b0, c0);
            if (cols > 1)
            {
                c1 = Vector256.FusedMultiplyAdd(a0, b1, c1);
            }
            if (cols > 2)
            {
                c2 = Vector256.FusedMultiplyAdd(a0, b2, c2);
            }
            if (cols > 3)
            {
                c3 = Vector256.FusedMultiplyAdd(a0, b3, c3);
            }
            if (rows > 1)
            {
                c4 = Vector256.FusedMultiplyAdd(a1, b0, c4);
            }
            if (rows > 1 && cols > 1)
            {
                c5 = Vector256.FusedMultiplyAdd(a1, b1, c5);
            }
            if (rows > 1 && cols > 2)
            {
                c6 = Vector256.FusedMultiplyAdd(a1, b2, c6);
            }
            if (rows > 1 && cols > 3)
            {
                c7 = Vector256.FusedMultiplyAdd(a1, b3, c7);
            }
            if (rows > 2)
            {
                c8 = Vector256.FusedMultiplyAdd(a2, b0, c8);
            }
            if (rows > 2 && cols > 1)
            {
                c9 = Vector256.FusedMultiplyAdd(a2, b1, c9);
            }
            if (rows > 2 && cols > 2)
            {
                c10 = Vector256.FusedMultiplyAdd(a2, b2, c10);
            }
            if (rows > 2 && cols > 3)
            {
                c11 = Vector256.FusedMultiplyAdd(a2, b3, c11);
            }
            if (rows > 3)
            {
                c12 = Vector256.FusedMultiplyAdd(a3, b0, c12);
            }
            if (rows > 3 && cols > 1)
            {
                c13 = Vector256.FusedMultiplyAdd(a3, b1, c13);
            }
            if (rows > 3 && cols > 2)
            {
                c14 = Vector256.FusedMultiplyAdd(a3, b2, c14);
            }
            if (rows > 3 && cols > 3)
            {
                c15 = Vector256.FusedMultiplyAdd(a3, b3, c15);
            }
        }
        float* sums = stackalloc float[16];
        sums[0] = Vector256.Sum(c0);
        sums[1] = Vector256.Sum(c1);
        sums[2] = Vector256.Sum(c2);
        sums[3] = Vector256.Sum(c3);
        sums[4] = Vector256.Sum(c4);
        sums[5] = Vector256.Sum(c5);
        sums[6] = Vector256.Sum(c6);
        sums[7] = Vector256.Sum(c7);
        sums[8] = Vector256.Sum(c8);
        sums[9] = Vector256.Sum(c9);
        sums[10] = Vector256.Sum(c10);
        sums[11] = Vector256.Sum(c11);
        sums[12] = Vector256.Sum(c12);
        sums[13] = Vector256.Sum(c13);
        sums[14] = Vector256.Sum(c14);
        sums[15] = Vector256.Sum(c15);
        DotFinish(rows, cols, 4, k, p, a, lda, b, ldb, sums, c, rsc, csc, add);
    }

    // ---- generated kernels end ----
}

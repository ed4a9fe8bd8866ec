using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Kiln.Runtime.Cpu;

// Register-blocked GEMM microkernels (8×48 Vector512, 6×16 Vector256), split out of Gemm.cs by size.
public static partial class Gemm
{
    // ---- generated kernels begin (register blocks are spelled out so every accumulator gets its own register) ----
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile512<TRows, TVecs>(int kc, float* a, nint sa, float* b, nint sb, float* c, nint ldc, bool add)
        where TRows : struct, IConstant
        where TVecs : struct, IConstant
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default, c50 = default, c51 = default, c52 = default, c53 = default;
        Vector512<float> c60 = default, c61 = default, c62 = default, c63 = default, c70 = default, c71 = default, c72 = default, c73 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = TVecs.Value > 1 ? Vector512.Load(b + 16) : default;
            Vector512<float> b2 = TVecs.Value > 2 ? Vector512.Load(b + 32) : default;
            Vector512<float> b3 = TVecs.Value > 3 ? Vector512.Load(b + 48) : default;
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(a0, b0, c00);
            if (TVecs.Value > 1)
            {
                c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            }
            if (TVecs.Value > 2)
            {
                c02 = Vector512.FusedMultiplyAdd(a0, b2, c02);
            }
            if (TVecs.Value > 3)
            {
                c03 = Vector512.FusedMultiplyAdd(a0, b3, c03);
            }
            if (TRows.Value > 1)
            {
                Vector512<float> a1 = Vector512.Create(a[1]);
                c10 = Vector512.FusedMultiplyAdd(a1, b0, c10);
                if (TVecs.Value > 1)
                {
                    c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
                }
                if (TVecs.Value > 2)
                {
                    c12 = Vector512.FusedMultiplyAdd(a1, b2, c12);
                }
                if (TVecs.Value > 3)
                {
                    c13 = Vector512.FusedMultiplyAdd(a1, b3, c13);
                }
            }
            if (TRows.Value > 2)
            {
                Vector512<float> a2 = Vector512.Create(a[2]);
                c20 = Vector512.FusedMultiplyAdd(a2, b0, c20);
                if (TVecs.Value > 1)
                {
                    c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
                }
                if (TVecs.Value > 2)
                {
                    c22 = Vector512.FusedMultiplyAdd(a2, b2, c22);
                }
                if (TVecs.Value > 3)
                {
                    c23 = Vector512.FusedMultiplyAdd(a2, b3, c23);
                }
            }
            if (TRows.Value > 3)
            {
                Vector512<float> a3 = Vector512.Create(a[3]);
                c30 = Vector512.FusedMultiplyAdd(a3, b0, c30);
                if (TVecs.Value > 1)
                {
                    c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
                }
                if (TVecs.Value > 2)
                {
                    c32 = Vector512.FusedMultiplyAdd(a3, b2, c32);
                }
                if (TVecs.Value > 3)
                {
                    c33 = Vector512.FusedMultiplyAdd(a3, b3, c33);
                }
            }
            if (TRows.Value > 4)
            {
                Vector512<float> a4 = Vector512.Create(a[4]);
                c40 = Vector512.FusedMultiplyAdd(a4, b0, c40);
                if (TVecs.Value > 1)
                {
                    c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
                }
                if (TVecs.Value > 2)
                {
                    c42 = Vector512.FusedMultiplyAdd(a4, b2, c42);
                }
                if (TVecs.Value > 3)
                {
                    c43 = Vector512.FusedMultiplyAdd(a4, b3, c43);
                }
            }
            if (TRows.Value > 5)
            {
                Vector512<float> a5 = Vector512.Create(a[5]);
                c50 = Vector512.FusedMultiplyAdd(a5, b0, c50);
                if (TVecs.Value > 1)
                {
                    c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
                }
                if (TVecs.Value > 2)
                {
                    c52 = Vector512.FusedMultiplyAdd(a5, b2, c52);
                }
                if (TVecs.Value > 3)
                {
                    c53 = Vector512.FusedMultiplyAdd(a5, b3, c53);
                }
            }
            if (TRows.Value > 6)
            {
                Vector512<float> a6 = Vector512.Create(a[6]);
                c60 = Vector512.FusedMultiplyAdd(a6, b0, c60);
                if (TVecs.Value > 1)
                {
                    c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
                }
                if (TVecs.Value > 2)
                {
                    c62 = Vector512.FusedMultiplyAdd(a6, b2, c62);
                }
                if (TVecs.Value > 3)
                {
                    c63 = Vector512.FusedMultiplyAdd(a6, b3, c63);
                }
            }
            if (TRows.Value > 7)
            {
                Vector512<float> a7 = Vector512.Create(a[7]);
                c70 = Vector512.FusedMultiplyAdd(a7, b0, c70);
                if (TVecs.Value > 1)
                {
                    c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
                }
                if (TVecs.Value > 2)
                {
                    c72 = Vector512.FusedMultiplyAdd(a7, b2, c72);
                }
                if (TVecs.Value > 3)
                {
                    c73 = Vector512.FusedMultiplyAdd(a7, b3, c73);
                }
            }
            a += sa;
            b += sb;
        }
        Put512(c + (0 * ldc), c00, add);
        if (TVecs.Value > 1)
        {
            Put512(c + (0 * ldc) + 16, c01, add);
        }
        if (TVecs.Value > 2)
        {
            Put512(c + (0 * ldc) + 32, c02, add);
        }
        if (TVecs.Value > 3)
        {
            Put512(c + (0 * ldc) + 48, c03, add);
        }
        if (TRows.Value > 1)
        {
            Put512(c + (1 * ldc), c10, add);
            if (TVecs.Value > 1)
            {
                Put512(c + (1 * ldc) + 16, c11, add);
            }
            if (TVecs.Value > 2)
            {
                Put512(c + (1 * ldc) + 32, c12, add);
            }
            if (TVecs.Value > 3)
            {
                Put512(c + (1 * ldc) + 48, c13, add);
            }
        }
        if (TRows.Value > 2)
        {
            Put512(c + (2 * ldc), c20, add);
            if (TVecs.Value > 1)
            {
                Put512(c + (2 * ldc) + 16, c21, add);
            }
            if (TVecs.Value > 2)
            {
                Put512(c + (2 * ldc) + 32, c22, add);
            }
            if (TVecs.Value > 3)
            {
                Put512(c + (2 * ldc) + 48, c23, add);
            }
        }
        if (TRows.Value > 3)
        {
            Put512(c + (3 * ldc), c30, add);
            if (TVecs.Value > 1)
            {
                Put512(c + (3 * ldc) + 16, c31, add);
            }
            if (TVecs.Value > 2)
            {
                Put512(c + (3 * ldc) + 32, c32, add);
            }
            if (TVecs.Value > 3)
            {
                Put512(c + (3 * ldc) + 48, c33, add);
            }
        }
        if (TRows.Value > 4)
        {
            Put512(c + (4 * ldc), c40, add);
            if (TVecs.Value > 1)
            {
                Put512(c + (4 * ldc) + 16, c41, add);
            }
            if (TVecs.Value > 2)
            {
                Put512(c + (4 * ldc) + 32, c42, add);
            }
            if (TVecs.Value > 3)
            {
                Put512(c + (4 * ldc) + 48, c43, add);
            }
        }
        if (TRows.Value > 5)
        {
            Put512(c + (5 * ldc), c50, add);
            if (TVecs.Value > 1)
            {
                Put512(c + (5 * ldc) + 16, c51, add);
            }
            if (TVecs.Value > 2)
            {
                Put512(c + (5 * ldc) + 32, c52, add);
            }
            if (TVecs.Value > 3)
            {
                Put512(c + (5 * ldc) + 48, c53, add);
            }
        }
        if (TRows.Value > 6)
        {
            Put512(c + (6 * ldc), c60, add);
            if (TVecs.Value > 1)
            {
                Put512(c + (6 * ldc) + 16, c61, add);
            }
            if (TVecs.Value > 2)
            {
                Put512(c + (6 * ldc) + 32, c62, add);
            }
            if (TVecs.Value > 3)
            {
                Put512(c + (6 * ldc) + 48, c63, add);
            }
        }
        if (TRows.Value > 7)
        {
            Put512(c + (7 * ldc), c70, add);
            if (TVecs.Value > 1)
            {
                Put512(c + (7 * ldc) + 16, c71, add);
            }
            if (TVecs.Value > 2)
            {
                Put512(c + (7 * ldc) + 32, c72, add);
            }
            if (TVecs.Value > 3)
            {
                Put512(c + (7 * ldc) + 48, c73, add);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile256<TRows, TVecs>(int kc, float* a, nint sa, float* b, nint sb, float* c, nint ldc, bool add)
        where TRows : struct, IConstant
        where TVecs : struct, IConstant
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = TVecs.Value > 1 ? Vector256.Load(b + 8) : default;
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(a0, b0, c00);
            if (TVecs.Value > 1)
            {
                c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
            }
            if (TRows.Value > 1)
            {
                Vector256<float> a1 = Vector256.Create(a[1]);
                c10 = Vector256.FusedMultiplyAdd(a1, b0, c10);
                if (TVecs.Value > 1)
                {
                    c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
                }
            }
            if (TRows.Value > 2)
            {
                Vector256<float> a2 = Vector256.Create(a[2]);
                c20 = Vector256.FusedMultiplyAdd(a2, b0, c20);
                if (TVecs.Value > 1)
                {
                    c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
                }
            }
            if (TRows.Value > 3)
            {
                Vector256<float> a3 = Vector256.Create(a[3]);
                c30 = Vector256.FusedMultiplyAdd(a3, b0, c30);
                if (TVecs.Value > 1)
                {
                    c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
                }
            }
            if (TRows.Value > 4)
            {
                Vector256<float> a4 = Vector256.Create(a[4]);
                c40 = Vector256.FusedMultiplyAdd(a4, b0, c40);
                if (TVecs.Value > 1)
                {
                    c41 = Vector256.FusedMultiplyAdd(a4, b1, c41);
                }
            }
            if (TRows.Value > 5)
            {
                Vector256<float> a5 = Vector256.Create(a[5]);
                c50 = Vector256.FusedMultiplyAdd(a5, b0, c50);
                if (TVecs.Value > 1)
                {
                    c51 = Vector256.FusedMultiplyAdd(a5, b1, c51);
                }
            }
            a += sa;
            b += sb;
        }
        Put256(c + (0 * ldc), c00, add);
        if (TVecs.Value > 1)
        {
            Put256(c + (0 * ldc) + 8, c01, add);
        }
        if (TRows.Value > 1)
        {
            Put256(c + (1 * ldc), c10, add);
            if (TVecs.Value > 1)
            {
                Put256(c + (1 * ldc) + 8, c11, add);
            }
        }
        if (TRows.Value > 2)
        {
            Put256(c + (2 * ldc), c20, add);
            if (TVecs.Value > 1)
            {
                Put256(c + (2 * ldc) + 8, c21, add);
            }
        }
        if (TRows.Value > 3)
        {
            Put256(c + (3 * ldc), c30, add);
            if (TVecs.Value > 1)
            {
                Put256(c + (3 * ldc) + 8, c31, add);
            }
        }
        if (TRows.Value > 4)
        {
            Put256(c + (4 * ldc), c40, add);
            if (TVecs.Value > 1)
            {
                Put256(c + (4 * ldc) + 8, c41, add);
            }
        }
        if (TRows.Value > 5)
        {
            Put256(c + (5 * ldc), c50, add);
            if (TVecs.Value > 1)
            {
                Put256(c + (5 * ldc) + 8, c51, add);
            }
        }
    }

    // ---- generated kernels continue in Gemm.Dot.cs ----
}

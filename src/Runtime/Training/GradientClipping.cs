using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Runtime;

/// <summary>Global-norm gradient clipping over the gradient slab (PyTorch's <c>clip_grad_norm_</c> over all parameters).</summary>
public static class GradientClipping
{
    /// <summary>
    /// The L2 norm of <paramref name="grads"/>, summed in double so a slab of millions of values keeps its
    /// digits. NaN when any element is NaN, +∞ when any is infinite or the sum overflows.
    /// </summary>
    public static double GlobalNorm(ReadOnlySpan<float> grads)
    {
        ref float g0 = ref MemoryMarshal.GetReference(grads);
        int n = grads.Length, i = 0;
        double sum = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<float>.Count)
        {
            // Two accumulators hide the add latency.
            Vector<double> a0 = Vector<double>.Zero, a1 = Vector<double>.Zero;
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                Vector.Widen(Vector.LoadUnsafe(ref g0, (nuint)i), out Vector<double> lo, out Vector<double> hi);
                a0 += lo * lo;
                a1 += hi * hi;
            }
            sum = Vector.Sum(a0 + a1);
        }
        for (; i < n; i++)
        {
            double g = Unsafe.Add(ref g0, i);
            sum += g * g;
        }
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Scales <paramref name="grads"/> in place so their global L2 norm is at most <paramref name="maxNorm"/>
    /// and returns the norm before clipping. A non-finite norm is returned as is with the gradients
    /// untouched, so the caller can skip the step.
    /// </summary>
    /// <remarks>Like PyTorch, the factor is <c>maxNorm / (norm + 1e-6)</c>, applied only when it is below 1.</remarks>
    public static double ClipByGlobalNorm(Span<float> grads, double maxNorm)
    {
        if (!(maxNorm > 0) || !double.IsFinite(maxNorm))
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "The maximum gradient norm must be positive and finite (turn clipping off instead of passing 0).");
        double norm = GlobalNorm(grads);
        if (!double.IsFinite(norm)) return norm;
        double factor = maxNorm / (norm + 1e-6);
        if (factor < 1.0) Scale(grads, (float)factor);
        return norm;
    }

    /// <summary>Multiplies every element of <paramref name="values"/> by <paramref name="factor"/> (averaging an accumulation group, clipping).</summary>
    public static void Scale(Span<float> values, float factor)
    {
        ref float v0 = ref MemoryMarshal.GetReference(values);
        int n = values.Length, i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var f = new Vector<float>(factor);
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
                (Vector.LoadUnsafe(ref v0, (nuint)i) * f).StoreUnsafe(ref v0, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref v0, i) *= factor;
    }
}

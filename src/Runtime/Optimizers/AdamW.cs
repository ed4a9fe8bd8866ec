using System;
using System.Collections.Generic;
using Kiln.Runtime.Cpu;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Runtime;

/// <summary>
/// Adam with decoupled weight decay (Loshchilov &amp; Hutter), in PyTorch's <c>torch.optim.AdamW</c> form:
/// <code>
/// p ← p·(1 − lr·wd)                       (only where ParameterInfo.WeightDecay)
/// m ← β₁·m + (1 − β₁)·g
/// v ← β₂·v + (1 − β₂)·g²
/// p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// </code>
/// State: slabs <c>m</c> and <c>v</c>.
/// </summary>
public sealed class AdamW : Optimizer
{
    /// <summary>Creates the optimizer; the defaults are PyTorch's.</summary>
    public AdamW(float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0.01f) : base("m", "v")
    {
        if (!(beta1 >= 0f && beta1 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "AdamW beta1 must be in [0, 1).");
        if (!(beta2 >= 0f && beta2 < 1f)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "AdamW beta2 must be in [0, 1).");
        if (!(eps > 0f) || !float.IsFinite(eps)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "AdamW eps must be positive and finite.");
        if (!(weightDecay >= 0f) || !float.IsFinite(weightDecay)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "AdamW weight decay must be finite and non-negative.");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        WeightDecay = weightDecay;
    }

    /// <summary>Decay rate of the first moment.</summary>
    public float Beta1 { get; }

    /// <summary>Decay rate of the second moment.</summary>
    public float Beta2 { get; }

    /// <summary>Added to the bias-corrected root second moment.</summary>
    public float Eps { get; }

    /// <summary>Decoupled weight decay coefficient (multiplied by the learning rate).</summary>
    public float WeightDecay { get; }

    /// <inheritdoc/>
    protected override void Update(ModelProgram program, ReadOnlySpan<ParameterRange> ranges, float learningRate)
    {
        // Bias corrections in double: β₂ᵗ for large t underflows nothing but loses digits in float.
        double t = StepCount;
        double bc1 = 1.0 - Math.Pow(Beta1, t);
        double bc2 = 1.0 - Math.Pow(Beta2, t);
        var k = new Constants(
            Beta1, 1f - Beta1, Beta2, 1f - Beta2, Eps,
            StepSize: (float)(learningRate / bc1),
            InvBc2Sqrt: (float)(1.0 / Math.Sqrt(bc2)),
            DecayFactor: 1f - learningRate * WeightDecay);
        var m = Slab("m");
        var v = Slab("v");
        // Elementwise, so chunks run on every core with results independent of the split (bit-exact resume holds).
        var chunks = new List<(int Offset, int Length, bool Decay)>();
        foreach (var r in ranges)
            for (int at = 0; at < r.Length; at += Chunk)
                chunks.Add((r.Offset + at, Math.Min(Chunk, r.Length - at), r.Decay && WeightDecay != 0f));
        float[] ps = program.Params, gs = program.Grads;
        int stateBase = StateBase;
        KilnParallel.For(chunks.Count, Chunk, (lo, hi) =>
        {
            for (long c = lo; c < hi; c++)
            {
                var (offset, length, decay) = chunks[(int)c];
                Kernel(ps.AsSpan(offset, length), gs.AsSpan(offset, length), m.AsSpan(offset - stateBase, length), v.AsSpan(offset - stateBase, length), k, decay);
            }
        });
    }

    private const int Chunk = 1 << 15;

    /// <summary>The per-step constants of the update for <see cref="Optimizer.StepCount"/> (device kernels use the same numbers).</summary>
    internal (float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float Eps, float StepSize, float InvBc2Sqrt, float DecayFactor) StepConstants(float learningRate)
    {
        double t = StepCount;
        double bc1 = 1.0 - Math.Pow(Beta1, t);
        double bc2 = 1.0 - Math.Pow(Beta2, t);
        return (Beta1, 1f - Beta1, Beta2, 1f - Beta2, Eps, (float)(learningRate / bc1), (float)(1.0 / Math.Sqrt(bc2)), 1f - learningRate * WeightDecay);
    }

    private readonly record struct Constants(float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2, float Eps, float StepSize, float InvBc2Sqrt, float DecayFactor);

    private static void Kernel(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v, in Constants k, bool decay)
    {
        int n = param.Length;
        ref float p0 = ref MemoryMarshal.GetReference(param);
        ref float g0 = ref MemoryMarshal.GetReference(grad);
        ref float m0 = ref MemoryMarshal.GetReference(m);
        ref float v0 = ref MemoryMarshal.GetReference(v);
        float decayFactor = decay ? k.DecayFactor : 1f;
        int i = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<float>.Count)
        {
            var b1 = new Vector<float>(k.Beta1);
            var c1 = new Vector<float>(k.OneMinusBeta1);
            var b2 = new Vector<float>(k.Beta2);
            var c2 = new Vector<float>(k.OneMinusBeta2);
            var eps = new Vector<float>(k.Eps);
            var stepSize = new Vector<float>(k.StepSize);
            var invBc2Sqrt = new Vector<float>(k.InvBc2Sqrt);
            var df = new Vector<float>(decayFactor);
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                nuint at = (nuint)i;
                var g = Vector.LoadUnsafe(ref g0, at);
                var mi = b1 * Vector.LoadUnsafe(ref m0, at) + c1 * g;
                var vi = b2 * Vector.LoadUnsafe(ref v0, at) + c2 * (g * g);
                var p = Vector.LoadUnsafe(ref p0, at) * df;
                p -= stepSize * mi / (Vector.SquareRoot(vi) * invBc2Sqrt + eps);
                mi.StoreUnsafe(ref m0, at);
                vi.StoreUnsafe(ref v0, at);
                p.StoreUnsafe(ref p0, at);
            }
        }
        for (; i < n; i++)
        {
            float g = Unsafe.Add(ref g0, i);
            float mi = k.Beta1 * Unsafe.Add(ref m0, i) + k.OneMinusBeta1 * g;
            float vi = k.Beta2 * Unsafe.Add(ref v0, i) + k.OneMinusBeta2 * (g * g);
            float p = Unsafe.Add(ref p0, i) * decayFactor;
            p -= k.StepSize * mi / (MathF.Sqrt(vi) * k.InvBc2Sqrt + k.Eps);
            Unsafe.Add(ref m0, i) = mi;
            Unsafe.Add(ref v0, i) = vi;
            Unsafe.Add(ref p0, i) = p;
        }
    }
}

using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Runtime;

/// <summary>
/// Stochastic gradient descent with momentum, in PyTorch's <c>torch.optim.SGD</c> form (no dampening):
/// <code>
/// d ← g + wd·p                            (L2 term only where ParameterInfo.WeightDecay)
/// b ← μ·b + d                             (b starts at zero, so the first step sets b = d)
/// d ← nesterov ? d + μ·b : b
/// p ← p − lr·d
/// </code>
/// With momentum 0 the buffer is neither kept nor allocated. State: slab <c>momentum</c> when momentum &gt; 0.
/// </summary>
public sealed class Sgd : Optimizer
{
    /// <summary>Creates the optimizer.</summary>
    /// <param name="momentum">Momentum factor μ in [0, 1).</param>
    /// <param name="nesterov">Nesterov momentum (needs μ &gt; 0).</param>
    /// <param name="weightDecay">L2 penalty coefficient added to the gradient of decayed parameters.</param>
    public Sgd(float momentum = 0.9f, bool nesterov = false, float weightDecay = 0f)
        : base(momentum > 0f ? new[] { "momentum" } : Array.Empty<string>())
    {
        if (!(momentum >= 0f && momentum < 1f)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "SGD momentum must be in [0, 1).");
        if (nesterov && momentum == 0f) throw new ArgumentException("Nesterov momentum needs a momentum above 0; set momentum or turn nesterov off.", nameof(nesterov));
        if (!(weightDecay >= 0f) || !float.IsFinite(weightDecay)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "SGD weight decay must be finite and non-negative.");
        Momentum = momentum;
        Nesterov = nesterov;
        WeightDecay = weightDecay;
    }

    /// <summary>Momentum factor.</summary>
    public float Momentum { get; }

    /// <summary>Whether the update uses Nesterov momentum.</summary>
    public bool Nesterov { get; }

    /// <summary>L2 penalty coefficient.</summary>
    public float WeightDecay { get; }

    /// <inheritdoc/>
    protected override void Update(ModelProgram program, ReadOnlySpan<ParameterRange> ranges, float learningRate)
    {
        var buffer = Momentum > 0f ? Slab("momentum") : null;
        foreach (var r in ranges)
        {
            float wd = r.Decay ? WeightDecay : 0f;
            var p = program.Params.AsSpan(r.Offset, r.Length);
            var g = program.Grads.AsSpan(r.Offset, r.Length);
            if (buffer is null) Plain(p, g, learningRate, wd);
            else WithMomentum(p, g, buffer.AsSpan(r.Offset - StateBase, r.Length), learningRate, wd, Momentum, Nesterov);
        }
    }

    private static void Plain(Span<float> param, ReadOnlySpan<float> grad, float lr, float wd)
    {
        int n = param.Length;
        ref float p0 = ref MemoryMarshal.GetReference(param);
        ref float g0 = ref MemoryMarshal.GetReference(grad);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vlr = new Vector<float>(lr);
            var vwd = new Vector<float>(wd);
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                nuint at = (nuint)i;
                var p = Vector.LoadUnsafe(ref p0, at);
                var d = Vector.LoadUnsafe(ref g0, at) + vwd * p;
                (p - vlr * d).StoreUnsafe(ref p0, at);
            }
        }
        for (; i < n; i++)
        {
            float p = Unsafe.Add(ref p0, i);
            float d = Unsafe.Add(ref g0, i) + wd * p;
            Unsafe.Add(ref p0, i) = p - lr * d;
        }
    }

    private static void WithMomentum(Span<float> param, ReadOnlySpan<float> grad, Span<float> buffer, float lr, float wd, float mu, bool nesterov)
    {
        int n = param.Length;
        ref float p0 = ref MemoryMarshal.GetReference(param);
        ref float g0 = ref MemoryMarshal.GetReference(grad);
        ref float b0 = ref MemoryMarshal.GetReference(buffer);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vlr = new Vector<float>(lr);
            var vwd = new Vector<float>(wd);
            var vmu = new Vector<float>(mu);
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                nuint at = (nuint)i;
                var p = Vector.LoadUnsafe(ref p0, at);
                var d = Vector.LoadUnsafe(ref g0, at) + vwd * p;
                var b = vmu * Vector.LoadUnsafe(ref b0, at) + d;
                b.StoreUnsafe(ref b0, at);
                d = nesterov ? d + vmu * b : b;
                (p - vlr * d).StoreUnsafe(ref p0, at);
            }
        }
        for (; i < n; i++)
        {
            float p = Unsafe.Add(ref p0, i);
            float d = Unsafe.Add(ref g0, i) + wd * p;
            float b = mu * Unsafe.Add(ref b0, i) + d;
            Unsafe.Add(ref b0, i) = b;
            d = nesterov ? d + mu * b : b;
            Unsafe.Add(ref p0, i) = p - lr * d;
        }
    }
}

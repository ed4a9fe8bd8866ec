using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Kiln.Runtime.Cpu;

/// <summary>
/// Elementwise math on <see cref="Vector256{T}"/> lanes for generated kernels. Transcendentals use the
/// runtime's vectorised Exp/Log; tanh, sigmoid and GELU are built on Exp so vector and scalar paths
/// agree to a few ulps.
/// </summary>
public static class V
{
    private static readonly Vector256<float> One = Vector256.Create(1f);
    private static readonly Vector256<float> Zero = Vector256<float>.Zero;

    /// <summary>e^x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Exp(Vector256<float> x) => Vector256.Exp(x);
    /// <summary>ln x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Log(Vector256<float> x) => Vector256.Log(x);
    /// <summary>√x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sqrt(Vector256<float> x) => Vector256.Sqrt(x);
    /// <summary>1/√x (exact division, not the approximate instruction, so results match the scalar path).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Rsqrt(Vector256<float> x) => One / Vector256.Sqrt(x);
    /// <summary>|x|.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Abs(Vector256<float> x) => Vector256.Abs(x);
    /// <summary>−1, 0 or 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sign(Vector256<float> x) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, Zero), One, Zero) - Vector256.ConditionalSelect(Vector256.LessThan(x, Zero), One, Zero);
    /// <summary>max(x, 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Relu(Vector256<float> x) => Vector256.Max(x, Zero);
    /// <summary>Elementwise maximum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    /// <summary>Elementwise minimum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.Min(a, b);
    /// <summary>1 where a &gt; b else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Greater(Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(Vector256.GreaterThan(a, b), One, Zero);
    /// <summary>1 where a &lt; b else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Less(Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(Vector256.LessThan(a, b), One, Zero);
    /// <summary>1 where a = b else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Equal(Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(Vector256.Equals(a, b), One, Zero);
    /// <summary>a where c ≠ 0 else b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Where(Vector256<float> c, Vector256<float> a, Vector256<float> b) => Vector256.ConditionalSelect(Vector256.Equals(c, Zero), b, a);

    /// <summary>tanh x = 1 − 2/(e^{2x} + 1), exact at ±∞.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> x) => One - Vector256.Create(2f) / (Vector256.Exp(x + x) + One);

    /// <summary>sin x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sin(Vector256<float> x) => Vector256.Sin(x);

    /// <summary>cos x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Cos(Vector256<float> x) => Vector256.Cos(x);

    /// <summary>1/(1 + e^−x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sigmoid(Vector256<float> x) => One / (One + Vector256.Exp(-x));

    /// <summary>GELU, tanh approximation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Gelu(Vector256<float> x)
    {
        var inner = Vector256.Create(S.GeluK) * (x + Vector256.Create(0.044715f) * x * x * x);
        return Vector256.Create(0.5f) * x * (One + Tanh(inner));
    }

    /// <summary>d/dx of the tanh-approximated GELU.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> GeluGrad(Vector256<float> x)
    {
        var x2 = x * x;
        var t = Tanh(Vector256.Create(S.GeluK) * (x + Vector256.Create(0.044715f) * x2 * x));
        var dinner = Vector256.Create(S.GeluK) * (One + Vector256.Create(3 * 0.044715f) * x2);
        return Vector256.Create(0.5f) * (One + t) + Vector256.Create(0.5f) * x * (One - t * t) * dinner;
    }

    /// <summary>x^p lane by lane.</summary>
    public static Vector256<float> Pow(Vector256<float> x, Vector256<float> p)
    {
        Span<float> a = stackalloc float[8];
        x.CopyTo(a);
        float e = p.GetElement(0);
        for (int i = 0; i < 8; i++) a[i] = MathF.Pow(a[i], e);
        return Vector256.Create<float>(a);
    }

    /// <summary>
    /// Rounds to the program's low-precision storage type and back (emulating a 16-bit store): mode 0 keeps
    /// fp32, 1 rounds to bf16, 2 to fp16, both to nearest even, as the CUDA kernels store them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> RoundLow(Vector256<float> x, int mode)
    {
        if (mode == 0) return x;
        if (mode == 1)
        {
            var bits = x.AsUInt32();
            var rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256.Create(1u))) & Vector256.Create(0xFFFF0000u);
            // NaN stays NaN (quietened), as in Bf16.Round.
            var nan = Vector256.GreaterThan(bits & Vector256.Create(0x7FFFFFFFu), Vector256.Create(0x7F800000u));
            var quiet = (bits | Vector256.Create(0x00400000u)) & Vector256.Create(0xFFFF0000u);
            return Vector256.ConditionalSelect(nan, quiet, rounded).AsSingle();
        }
        return Vector256.Create(
            S.RoundLow(x.GetElement(0), 2), S.RoundLow(x.GetElement(1), 2), S.RoundLow(x.GetElement(2), 2), S.RoundLow(x.GetElement(3), 2),
            S.RoundLow(x.GetElement(4), 2), S.RoundLow(x.GetElement(5), 2), S.RoundLow(x.GetElement(6), 2), S.RoundLow(x.GetElement(7), 2));
    }
}

/// <summary>Scalar counterparts of <see cref="V"/> for the tails of generated loops.</summary>
public static class S
{
    internal const float GeluK = 0.7978845608028654f; // √(2/π)

    /// <summary>e^x.</summary>
    public static float Exp(float x) => MathF.Exp(x);
    /// <summary>ln x.</summary>
    public static float Log(float x) => MathF.Log(x);
    /// <summary>√x.</summary>
    public static float Sqrt(float x) => MathF.Sqrt(x);
    /// <summary>1/√x.</summary>
    public static float Rsqrt(float x) => 1f / MathF.Sqrt(x);
    /// <summary>|x|.</summary>
    public static float Abs(float x) => MathF.Abs(x);
    /// <summary>−1, 0 or 1.</summary>
    public static float Sign(float x) => x > 0 ? 1f : x < 0 ? -1f : 0f;
    /// <summary>max(x, 0).</summary>
    public static float Relu(float x) => x > 0 ? x : 0f;
    /// <summary>Maximum.</summary>
    public static float Max(float a, float b) => MathF.Max(a, b);
    /// <summary>Minimum.</summary>
    public static float Min(float a, float b) => MathF.Min(a, b);
    /// <summary>1 where a &gt; b else 0.</summary>
    public static float Greater(float a, float b) => a > b ? 1f : 0f;
    /// <summary>1 where a &lt; b else 0.</summary>
    public static float Less(float a, float b) => a < b ? 1f : 0f;
    /// <summary>1 where a = b else 0.</summary>
    public static float Equal(float a, float b) => a == b ? 1f : 0f;
    /// <summary>a where c ≠ 0 else b.</summary>
    public static float Where(float c, float a, float b) => c != 0 ? a : b;
    /// <summary>tanh x, same formula as the vector path.</summary>
    public static float Tanh(float x) => 1f - 2f / (MathF.Exp(x + x) + 1f);
    /// <summary>sin x.</summary>
    public static float Sin(float x) => MathF.Sin(x);
    /// <summary>cos x.</summary>
    public static float Cos(float x) => MathF.Cos(x);
    /// <summary>1/(1 + e^−x).</summary>
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));
    /// <summary>GELU, tanh approximation.</summary>
    public static float Gelu(float x) => 0.5f * x * (1f + Tanh(GeluK * (x + 0.044715f * x * x * x)));
    /// <summary>d/dx of the tanh-approximated GELU.</summary>
    public static float GeluGrad(float x)
    {
        float t = Tanh(GeluK * (x + 0.044715f * x * x * x));
        return 0.5f * (1f + t) + 0.5f * x * (1f - t * t) * GeluK * (1f + 3 * 0.044715f * x * x);
    }
    /// <summary>x^p.</summary>
    public static float Pow(float x, float p) => MathF.Pow(x, p);

    /// <summary>Rounds to the low-precision storage type and back: mode 0 keeps fp32, 1 rounds to bf16, 2 to fp16 (nearest even).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float RoundLow(float x, int mode) => mode switch
    {
        0 => x,
        1 => Precision.Bf16.Round(x),
        _ => Precision.Fp16.Round(x),
    };
}

using System;

namespace Kiln.Runtime;

/// <summary>
/// Parameter initialisation from the counter-based generator: tensor <c>t</c> of the parameter table
/// draws stream <c>t</c> (parameter-init domain) under the run seed, so a parameter's initial value
/// depends only on (seed, its table index, its element index) — not on the order tensors are filled,
/// nor on how they are sharded.
/// </summary>
internal static class ParameterInit
{
    /// <summary>
    /// Fills <paramref name="dst"/> by <paramref name="kind"/>: <see cref="InitKind.Uniform"/> draws from
    /// U[−scale, scale), <see cref="InitKind.Normal"/> from N(0, scale²).
    /// </summary>
    public static void Fill(Span<float> dst, InitKind kind, float scale, ulong seed, ulong tensorIndex)
    {
        switch (kind)
        {
            case InitKind.Zeros:
                dst.Clear();
                break;
            case InitKind.Ones:
                dst.Fill(1f);
                break;
            case InitKind.Uniform:
                CheckScale(kind, scale, tensorIndex);
                Philox.FillUniform(dst, -scale, scale, seed, RandomStreams.ParameterInit(tensorIndex));
                break;
            case InitKind.Normal:
                CheckScale(kind, scale, tensorIndex);
                Philox.FillNormal(dst, 0f, scale, seed, RandomStreams.ParameterInit(tensorIndex));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, $"Unknown initialisation kind for parameter tensor {tensorIndex}.");
        }
    }

    private static void CheckScale(InitKind kind, float scale, ulong tensorIndex)
    {
        if (!float.IsFinite(scale) || scale < 0)
            throw new ArgumentOutOfRangeException(nameof(scale), scale,
                $"Parameter tensor {tensorIndex} has {kind} initialisation with scale {scale}; the scale must be finite and non-negative.");
    }
}

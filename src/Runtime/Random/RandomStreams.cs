using System;

namespace Kiln.Runtime;

/// <summary>
/// The layout of Philox stream ids (the high 64 bits of the counter). Every consumer of randomness
/// keyed by the run seed owns a disjoint range of streams, told apart by the top two bits, so a
/// parameter initialiser, the data order and a dropout mask never draw the same numbers.
/// </summary>
internal static class RandomStreams
{
    /// <summary>Bits 63..62 = 00: parameter initialisation; the rest is the tensor's index in the parameter table.</summary>
    public const ulong ParameterInitDomain = 0UL << 62;

    /// <summary>Bits 63..62 = 01: data order (epoch shuffles and splits).</summary>
    public const ulong DataDomain = 1UL << 62;

    /// <summary>Bits 63..62 = 10: dropout masks (see <see cref="Cpu.DropoutKernels.Stream"/>).</summary>
    public const ulong DropoutDomain = 2UL << 62;

    /// <summary>Bits 63..62 = 11: stochastic rounding of the low-precision parameter copy; the rest is the step.</summary>
    public const ulong StochasticRoundingDomain = 3UL << 62;

    private const ulong PayloadMask = (1UL << 62) - 1;

    /// <summary>Bit 61 inside the data domain: set for held-out splits, clear for epoch shuffles.</summary>
    private const ulong SplitFlag = 1UL << 61;

    /// <summary>The stream that initialises parameter tensor <paramref name="tensorIndex"/>.</summary>
    public static ulong ParameterInit(ulong tensorIndex)
    {
        if (tensorIndex > PayloadMask)
            throw new ArgumentOutOfRangeException(nameof(tensorIndex), tensorIndex, "A parameter table index must fit in 62 bits.");
        return ParameterInitDomain | tensorIndex;
    }

    /// <summary>The stream that shuffles the training examples of epoch <paramref name="epoch"/>.</summary>
    public static ulong EpochShuffle(long epoch)
    {
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "An epoch number is non-negative.");
        return DataDomain | (ulong)epoch;
    }

    /// <summary>The stream that rounds the low-precision parameter copy after optimizer step <paramref name="step"/>.</summary>
    public static ulong StochasticRounding(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "A step is non-negative.");
        return StochasticRoundingDomain | ((ulong)step & PayloadMask);
    }

    /// <summary>The stream that orders examples for a train/held-out split.</summary>
    public static ulong Split => DataDomain | SplitFlag;

    /// <summary>Bit 60 inside the data domain: token sampling during generation (the counter is the token's position).</summary>
    public static ulong Sampling => DataDomain | (1UL << 60);
}

using System;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Kiln.Runtime.Cpu;

/// <summary>
/// Dropout masks drawn from the counter-based generator, so a mask is a pure function of
/// (seed, step, micro-step, site, element) and a resumed or re-sharded run reproduces it.
/// </summary>
public static class DropoutKernels
{
    private const int StepBits = 38;
    private const int MicroStepBits = 12;
    private const int SiteBits = 12;

    /// <summary>
    /// Writes the inverted-dropout mask: element <c>j</c> is 0 when
    /// <c>Philox.Uniform(seed, stream, firstIndex + j) &lt; p</c> and <c>1/(1 − p)</c> otherwise, so
    /// multiplying activations by the mask keeps their expectation.
    /// </summary>
    /// <param name="mask">The mask to write.</param>
    /// <param name="p">Drop probability in [0, 1).</param>
    /// <param name="seed">Run seed (the Philox key).</param>
    /// <param name="stream">Stream id from <see cref="Stream"/>.</param>
    /// <param name="firstIndex">Element index of <c>mask[0]</c> in the site's full activation, for a shard.</param>
    public static void FillMask(Span<float> mask, float p, ulong seed, ulong stream, ulong firstIndex = 0)
    {
        if (!(p >= 0f && p < 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "A dropout probability must be in [0, 1).");
        if (p == 0f)
        {
            mask.Fill(1f);
            return;
        }
        // Drawing uniforms into the mask and then thresholding in place keeps one pass over the generator.
        Philox.FillUniform(mask, 0f, 1f, seed, stream, firstIndex);
        float keep = 1f / (1f - p);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // A select instead of a branch: the branch would be mispredicted at rate ~p.
            var vp = new Vector<float>(p);
            var vkeep = new Vector<float>(keep);
            ref float m0 = ref MemoryMarshal.GetReference(mask);
            for (; i <= mask.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var u = Vector.LoadUnsafe(ref m0, (nuint)i);
                Vector.ConditionalSelect(Vector.LessThan(u, vp), Vector<float>.Zero, vkeep).StoreUnsafe(ref m0, (nuint)i);
            }
        }
        for (; i < mask.Length; i++)
            mask[i] = mask[i] < p ? 0f : keep;
    }

    /// <summary>
    /// The Philox stream id of one dropout site in one micro-step. Bit layout, most significant first:
    /// <c>10</c> (the dropout domain, disjoint from parameter init and data order), 38 bits of
    /// <paramref name="step"/>, 12 bits of <paramref name="microStep"/>, 12 bits of <paramref name="site"/>.
    /// Distinct in-range triples give distinct streams, hence independent masks.
    /// </summary>
    /// <param name="step">Optimizer step, 0 ≤ step &lt; 2³⁸.</param>
    /// <param name="microStep">Micro-batch within the accumulation group, 0 ≤ microStep &lt; 4096.</param>
    /// <param name="site">The dropout site's number in the program, 0 ≤ site &lt; 4096.</param>
    public static ulong Stream(long step, int microStep, int site)
    {
        if (step < 0 || step >= 1L << StepBits)
            throw new ArgumentOutOfRangeException(nameof(step), step, $"The step must be in [0, 2^{StepBits}) to key a dropout mask.");
        if (microStep < 0 || microStep >= 1 << MicroStepBits)
            throw new ArgumentOutOfRangeException(nameof(microStep), microStep, $"The micro-step must be in [0, {1 << MicroStepBits}) to key a dropout mask.");
        if (site < 0 || site >= 1 << SiteBits)
            throw new ArgumentOutOfRangeException(nameof(site), site, $"The dropout site must be in [0, {1 << SiteBits}) to key a dropout mask.");
        return RandomStreams.DropoutDomain
            | ((ulong)step << (MicroStepBits + SiteBits))
            | ((ulong)(uint)microStep << SiteBits)
            | (uint)site;
    }
}

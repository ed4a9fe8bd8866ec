using System;

namespace Kiln.Runtime.Tests.Precision;

/// <summary>
/// A binary floating-point format of 16 bits, described by its field widths, with reference
/// conversions written from the definitions in double arithmetic (no bit tricks shared with the
/// implementation under test).
/// </summary>
internal sealed class Format16
{
    public static readonly Format16 Bf16 = new(exponentBits: 8, mantissaBits: 7);
    public static readonly Format16 Fp16 = new(exponentBits: 5, mantissaBits: 10);

    private Format16(int exponentBits, int mantissaBits)
    {
        ExponentBits = exponentBits;
        MantissaBits = mantissaBits;
    }

    public int ExponentBits { get; }
    public int MantissaBits { get; }
    public int Bias => (1 << (ExponentBits - 1)) - 1;
    public int EMin => 1 - Bias;
    public int EMax => Bias;
    private int ExponentAllOnes => (1 << ExponentBits) - 1;
    private ushort InfinityBits => (ushort)(ExponentAllOnes << MantissaBits);

    /// <summary>The largest finite value: (2 − 2^−p)·2^EMax.</summary>
    public double MaxFinite => (2 - Math.ScaleB(1.0, -MantissaBits)) * Math.ScaleB(1.0, EMax);

    /// <summary>The value of <paramref name="h"/> from the IEEE definition; NaN for every NaN pattern.</summary>
    public double Decode(ushort h)
    {
        int sign = h >> 15;
        int e = (h >> MantissaBits) & ExponentAllOnes;
        int m = h & ((1 << MantissaBits) - 1);
        double magnitude;
        if (e == ExponentAllOnes) magnitude = m == 0 ? double.PositiveInfinity : double.NaN;
        else if (e == 0) magnitude = m * Math.ScaleB(1.0, EMin - MantissaBits);
        else magnitude = (1 + m * Math.ScaleB(1.0, -MantissaBits)) * Math.ScaleB(1.0, e - Bias);
        return sign == 1 ? -magnitude : magnitude;
    }

    public bool IsNaN(ushort h) => (h & 0x7FFF) > InfinityBits;

    /// <summary>The spacing of the format's values at magnitude <paramref name="a"/> (finite, non-negative).</summary>
    public double Ulp(double a) => Math.ScaleB(1.0, Math.Max(a == 0 ? EMin : Math.ILogB(a), EMin) - MantissaBits);

    /// <summary>Round to nearest, ties to even, from the definition.</summary>
    public ushort EncodeNearestEven(float x)
    {
        if (float.IsNaN(x)) return QuietNaN(x);
        double a = Math.Abs((double)x);
        if (double.IsInfinity(a)) return WithSign(x, InfinityBits);
        double ulp = Ulp(a);
        return Pack(x, Math.Round(a / ulp, MidpointRounding.ToEven) * ulp);
    }

    /// <summary>
    /// Stochastic rounding as specified in Kiln: away from zero when <c>word &lt; ⌊frac·2³²⌋</c>, where frac is
    /// the distance above the lower neighbour in ulps.
    /// </summary>
    public ushort EncodeStochastic(float x, uint word)
    {
        if (float.IsNaN(x)) return QuietNaN(x);
        double a = Math.Abs((double)x);
        if (double.IsInfinity(a)) return WithSign(x, InfinityBits);
        double ulp = Ulp(a);
        double q = a / ulp, lower = Math.Floor(q);
        double threshold = Math.Floor((q - lower) * 4294967296.0);
        return Pack(x, (word < threshold ? lower + 1 : lower) * ulp);
    }

    /// <summary>⌊frac·2³²⌋ for finite <paramref name="x"/>: words below it round away from zero.</summary>
    public double StochasticThreshold(float x)
    {
        double a = Math.Abs((double)x);
        if (!double.IsFinite(a)) return 0;
        double q = a / Ulp(a);
        return Math.Floor((q - Math.Floor(q)) * 4294967296.0);
    }

    /// <summary>The bits of an exactly representable magnitude <paramref name="v"/> (∞ from 2^(EMax+1) up) with the sign of <paramref name="x"/>.</summary>
    private ushort Pack(float x, double v)
    {
        if (v >= Math.ScaleB(1.0, EMax + 1)) return WithSign(x, InfinityBits);
        if (v < Math.ScaleB(1.0, EMin))
            return WithSign(x, (int)(v / Math.ScaleB(1.0, EMin - MantissaBits)));
        int e = Math.ILogB(v);
        double significand = v / Math.ScaleB(1.0, e - MantissaBits);  // in [2^p, 2^(p+1)), an integer
        if (significand != Math.Floor(significand)) throw new InvalidOperationException($"{v} is not representable.");
        int m = (int)significand - (1 << MantissaBits);
        return WithSign(x, ((e + Bias) << MantissaBits) | m);
    }

    /// <summary>A NaN of the same sign with the quiet bit set and the top payload bits of <paramref name="x"/>.</summary>
    private ushort QuietNaN(float x)
    {
        uint payload = BitConverter.SingleToUInt32Bits(x) & 0x7FFFFF;
        int kept = (int)(payload >> (23 - MantissaBits));
        return WithSign(x, InfinityBits | (1 << (MantissaBits - 1)) | kept);
    }

    private static ushort WithSign(float x, int magnitudeBits) => (ushort)((float.IsNegative(x) ? 0x8000 : 0) | magnitudeBits);
}

/// <summary>Helpers shared by the precision tests.</summary>
internal static class PrecisionTestData
{
    /// <summary>Odd and boundary lengths for the vector-versus-scalar comparisons.</summary>
    public static readonly int[] Lengths = [0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 47, 63, 65, 127, 255, 257, 511, 1001, 4099];

    /// <summary>Random float bit patterns: a mix of uniformly random bits and values near the interesting boundaries.</summary>
    public static float[] RandomFloats(Random rng, int n)
    {
        uint[] specials =
        [
            0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x7F80_0001, 0xFFFF_FFFF, 0x7F7F_FFFF,
            0x7F7F_8000, 0x7F7F_7FFF, 0x477F_E000, 0x477F_F000, 0x477F_EFFF, 0x4780_0000, 0x3880_0000, 0x387F_FFFF,
            0x3300_0000, 0x3300_0001, 0x3380_0000, 0x0000_8000, 0x0001_8000, 0x3F80_8000, 0x3F81_8000, 0x3F80_1000,
        ];
        var result = new float[n];
        for (int i = 0; i < n; i++)
        {
            uint bits = (uint)rng.NextInt64(0, 1L << 32);
            result[i] = (rng.Next(8)) switch
            {
                0 => BitConverter.UInt32BitsToSingle(specials[rng.Next(specials.Length)]),
                // Values spread over the fp16 range, subnormals included.
                1 => BitConverter.UInt32BitsToSingle((bits & 0x80FF_FFFF) | ((uint)rng.Next(100, 145) << 23)),
                // Ties and near-ties for both formats.
                2 => BitConverter.UInt32BitsToSingle((bits & 0xFFFF_0000) | (uint)(0x8000 + rng.Next(-1, 2))),
                3 => BitConverter.UInt32BitsToSingle((bits & 0xFFFF_E000) | (uint)(0x1000 + rng.Next(-1, 2))),
                _ => BitConverter.UInt32BitsToSingle(bits),
            };
        }
        return result;
    }

    public static string Hex(float x) => $"0x{BitConverter.SingleToUInt32Bits(x):X8} ({x:R})";
}

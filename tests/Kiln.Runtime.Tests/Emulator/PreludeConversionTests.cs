using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Kiln.Cuda.Emulator;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Precision;

namespace Kiln.Runtime.Tests.Emulator;

/// <summary>
/// The 16-bit conversions of the generator's CUDA prelude (the host-emulation forms, which must match the GPU's
/// <c>cvt</c> instructions), run on the emulator and compared bit for bit with the runtime's <see cref="Bf16"/>,
/// <see cref="Fp16"/> and <see cref="Half"/>.
/// </summary>
public sealed class PreludeConversionTests
{
    private const string Kernels = """

        extern "C" __global__ void narrow(unsigned short* __restrict__ toBf16, unsigned short* __restrict__ toF16, const float* __restrict__ values, long long n)
        {
            KILN_FOR_ELEMENTS(i, n)
            {
                toBf16[i] = kiln_float_to_bf16(values[i]);
                toF16[i] = kiln_float_to_f16(values[i]);
            }
        }

        extern "C" __global__ void widen(float* __restrict__ fromBf16, float* __restrict__ fromF16, const unsigned short* __restrict__ bits, long long n)
        {
            KILN_FOR_ELEMENTS(i, n)
            {
                fromBf16[i] = kiln_bf16_to_float(bits[i]);
                fromF16[i] = kiln_f16_to_float(bits[i]);
            }
        }

        extern "C" __global__ void low_round_trip(float* __restrict__ out, kiln_low* __restrict__ stored, const float* __restrict__ in, long long n)
        {
            KILN_FOR_ELEMENTS(i, n)
            {
                stored[i] = kiln_float_to_low(in[i]);
                out[i] = kiln_low_to_float(stored[i]);
            }
        }
        """;

    /// <summary>The text of <c>CudaPrelude.Text</c>, read from the generator's source (a raw string literal).</summary>
    internal static string PreludeText()
    {
        string[] lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Emulator", "Inputs", "CudaPrelude.cs"));
        int open = Array.FindIndex(lines, l => l.TrimEnd().EndsWith("Text = \"\"\"", StringComparison.Ordinal));
        int close = Array.FindIndex(lines, open + 1, l => l.Trim() == "\"\"\";");
        Assert.True(open >= 0 && close > open, "CudaPrelude.cs no longer holds `Text = \"\"\"` … `\"\"\";`; update this reader.");
        string indent = lines[close][..(lines[close].Length - lines[close].TrimStart().Length)];
        return string.Join('\n', lines[(open + 1)..close].Select(l => l.StartsWith(indent, StringComparison.Ordinal) ? l[indent.Length..] : l.Trim())) + "\n";
    }

    private static GpuKernelSource Module(string define) => new("PreludeConversions.cu", PreludeText() + Kernels, [define]);

    private static (float[] FromBf16, float[] FromF16) Widen(EmulatedGpu gpu, IGpuModule module, ushort[] bits)
    {
        ulong dbits = gpu.Upload(bits), db = gpu.Zeros<float>(bits.Length), dh = gpu.Zeros<float>(bits.Length);
        module.GetKernel("widen").Launch(256, 256, 0, db, dh, dbits, (long)bits.Length);
        return (gpu.Download<float>(db, bits.Length), gpu.Download<float>(dh, bits.Length));
    }

    private static (ushort[] Bf16, ushort[] F16) Narrow(EmulatedGpu gpu, IGpuModule module, float[] values)
    {
        ulong dv = gpu.Upload(values), db = gpu.Zeros<ushort>(values.Length), dh = gpu.Zeros<ushort>(values.Length);
        module.GetKernel("narrow").Launch(512, 256, 0, db, dh, dv, (long)values.Length);
        return (gpu.Download<ushort>(db, values.Length), gpu.Download<ushort>(dh, values.Length));
    }

    private static bool IsHalfNaN(ushort h) => (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0;
    private static bool IsBf16NaN(ushort h) => (h & 0x7f80) == 0x7f80 && (h & 0x007f) != 0;
    private static uint Bits(float f) => BitConverter.SingleToUInt32Bits(f);

    [EmulatorFact]
    public void Every_bf16_and_fp16_bit_pattern_widens_exactly_and_round_trips()
    {
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module(KernelCacheKey.Float32Define));
        ushort[] all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var (fromBf16, fromF16) = Widen(gpu, module, all);
        var (backBf16, _) = Narrow(gpu, module, fromBf16);
        var (_, backF16) = Narrow(gpu, module, fromF16);
        for (int i = 0; i < 65536; i++)
        {
            ushort h = (ushort)i;
            Assert.True(Bits(Bf16.ToFloat(h)) == Bits(fromBf16[i]), $"bf16 0x{h:x4} widened to 0x{Bits(fromBf16[i]):x8}");
            // Decoding then encoding gives every pattern back, except that a signalling NaN comes back quiet.
            ushort bf = IsBf16NaN(h) ? (ushort)(h | 0x0040) : h;
            Assert.True(bf == backBf16[i], $"bf16 0x{h:x4} round-tripped to 0x{backBf16[i]:x4}");

            uint viaHalf = Bits((float)BitConverter.UInt16BitsToHalf(h));
            if (!IsHalfNaN(h))
                Assert.True(viaHalf == Bits(fromF16[i]), $"fp16 0x{h:x4} widened to 0x{Bits(fromF16[i]):x8}, System.Half gives 0x{viaHalf:x8}");
            else
                // A NaN keeps sign and payload; Half (like x86 F16C) also sets the float quiet bit, the prelude's host form does not.
                Assert.True((Bits(fromF16[i]) | 0x0040_0000u) == viaHalf && float.IsNaN(fromF16[i]), $"fp16 NaN 0x{h:x4} widened to 0x{Bits(fromF16[i]):x8}, System.Half gives 0x{viaHalf:x8}");
            ushort hf = IsHalfNaN(h) ? (ushort)(h | 0x0200) : h;
            Assert.True(hf == backF16[i], $"fp16 0x{h:x4} round-tripped to 0x{backF16[i]:x4}");
        }
    }

    /// <summary>Edge cases of float → 16-bit rounding: zeros, subnormals, ties, the overflow thresholds, infinities, NaNs.</summary>
    private static IEnumerable<float> EdgeCases()
    {
        uint[] bits =
        [
            0x0000_0000, 0x8000_0000, 0x0000_0001, 0x8000_0001, 0x007f_ffff, 0x0080_0000, 0x0000_8000, 0x0001_8000,
            0x3f80_8000, 0x3f81_8000, 0x3f80_8001, 0x3f80_7fff,             // bf16 ties (even below, odd above) and near-ties
            0x7f7f_7fff, 0x7f7f_8000, 0x7f7f_ffff, 0xff7f_8000,             // bf16 MaxValue, the overflow tie, float max
            0x7f80_0000, 0xff80_0000,                                        // ±∞
            0x7fc0_0000, 0xffc0_0000, 0x7f80_0001, 0xff80_0001, 0x7fa0_0000, 0x7fbf_ffff, 0x7f80_2000, 0x7fff_ffff, // NaNs
            0x477f_e000, 0x477f_efff, 0x477f_f000, 0xc77f_f000, 0x4780_0000, // fp16: 65504, just below the overflow tie, 65520, -65520, 65536
            0x3380_0000, 0x3300_0000, 0x3300_0001, 0x32ff_ffff, 0x33c0_0000, // 2⁻²⁴, 2⁻²⁵ (tie to 0), just above, just below, 1.5·2⁻²⁴ (tie to 2)
            0x3880_0000, 0x387f_c000, 0x387f_e000, 0x387f_f000,             // 2⁻¹⁴ and the subnormal/normal boundary
            0x3f80_1000, 0x3f80_3000, 0x3f80_1001,                           // fp16 ties at 1 (to even 1, to even 1+2ulp) and near-tie
        ];
        return bits.Select(BitConverter.UInt32BitsToSingle);
    }

    /// <summary>Every midpoint between neighbouring finite bf16 and fp16 values (exact in float), of both signs.</summary>
    private static IEnumerable<float> Midpoints()
    {
        for (int h = 0; h < 0x7f7f; h++)
        {
            double mid = ((double)Bf16.ToFloat((ushort)h) + Bf16.ToFloat((ushort)(h + 1))) / 2;
            yield return (float)mid;
            yield return -(float)mid;
        }
        for (int h = 0; h < 0x7bff; h++)
        {
            double mid = ((double)(float)BitConverter.UInt16BitsToHalf((ushort)h) + (float)BitConverter.UInt16BitsToHalf((ushort)(h + 1))) / 2;
            yield return (float)mid;
            yield return -(float)mid;
        }
    }

    /// <summary>Random bit patterns (every float class) and random values across the fp16 range and beyond.</summary>
    private static IEnumerable<float> RandomValues(int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < 100_000; i++) yield return BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32));
        for (int i = 0; i < 100_000; i++)
            yield return (float)((random.Next(2) == 0 ? 1 : -1) * Math.Pow(2, random.NextDouble() * 50 - 32));
    }

    [EmulatorFact]
    public void Float_to_bf16_and_fp16_rounding_matches_the_runtime_on_edge_cases_ties_and_random_values()
    {
        int seed = Random.Shared.Next();
        float[] values = [.. EdgeCases(), .. Midpoints(), .. RandomValues(seed)];
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module(KernelCacheKey.Float32Define));
        var (bf16, f16) = Narrow(gpu, module, values);
        var failures = new List<string>();
        for (int i = 0; i < values.Length && failures.Count < 10; i++)
        {
            float v = values[i];
            ushort expectBf16 = Bf16.FromFloat(v), expectHalf = BitConverter.HalfToUInt16Bits((Half)v);
            Assert.Equal(expectHalf, Fp16.FromFloat(v)); // the runtime's two references agree
            if (bf16[i] != expectBf16) failures.Add($"bf16 of 0x{Bits(v):x8} ({v:R}): prelude 0x{bf16[i]:x4}, Bf16.FromFloat 0x{expectBf16:x4}");
            if (f16[i] != expectHalf) failures.Add($"fp16 of 0x{Bits(v):x8} ({v:R}): prelude 0x{f16[i]:x4}, System.Half 0x{expectHalf:x4}");
        }
        Assert.True(failures.Count == 0, $"seed {seed}, {values.Length} values:\n" + string.Join('\n', failures));
    }

    [EmulatorTheory]
    [InlineData("bf16")]
    [InlineData("f16")]
    [InlineData("f32")]
    public void The_precision_define_selects_the_storage_type_of_kiln_low(string precision)
    {
        int seed = Random.Shared.Next();
        float[] values = [.. EdgeCases(), .. RandomValues(seed).Take(20_000)];
        string define = KernelCacheKey.DefineFor(precision)!;
        using var gpu = new EmulatedGpu();
        using var module = gpu.LoadModule(Module(define));
        int bytes = precision == "f32" ? 4 : 2;
        ulong din = gpu.Upload(values), dout = gpu.Zeros<float>(values.Length), dstored = gpu.Zeros<byte>((long)values.Length * bytes);
        module.GetKernel("low_round_trip").Launch(64, 256, 0, dout, dstored, din, (long)values.Length);
        float[] got = gpu.Download<float>(dout, values.Length);
        byte[] stored = gpu.Download<byte>(dstored, (long)values.Length * bytes);
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            uint expected = precision switch
            {
                "bf16" => Bits(Bf16.Round(v)),
                "f16" => Bits((float)(Half)v),
                _ => Bits(v),
            };
            uint storedBits = bytes == 4 ? BitConverter.ToUInt32(stored, i * 4) : BitConverter.ToUInt16(stored, i * 2);
            uint expectedStored = precision switch
            {
                "bf16" => Bf16.FromFloat(v),
                "f16" => BitConverter.HalfToUInt16Bits((Half)v),
                _ => Bits(v),
            };
            Assert.True(expectedStored == storedBits, $"seed {seed}: {precision} storage of 0x{Bits(v):x8} is 0x{storedBits:x}, expected 0x{expectedStored:x}");
            // NaN payloads widen differently (see the widening test); only their NaN-ness is compared here.
            if (float.IsNaN(v)) Assert.True(float.IsNaN(BitConverter.UInt32BitsToSingle(Bits(got[i]))));
            else Assert.True(expected == Bits(got[i]), $"seed {seed}: {precision} round trip of 0x{Bits(v):x8} gave 0x{Bits(got[i]):x8}, expected 0x{expected:x8}");
        }
    }
}

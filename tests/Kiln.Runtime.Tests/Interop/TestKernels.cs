using System;

namespace Kiln.Runtime.Tests.Interop;

/// <summary>
/// Self-contained CUDA C (no includes, as Kiln's emitted kernels are) used by the NVRTC and GPU tests, with
/// CPU references written independently of the CUDA text.
/// </summary>
internal static class TestKernels
{
    public const string Bf16RoundTrip = "kiln_test_bf16_round_trip";
    public const string AdamWUpdate = "kiln_test_adamw_update";
    public const string VectorAdd = "kiln_test_vector_add";

    /// <summary>bf16 helpers (bit-level, like the emitted prelude), a bf16 round trip, an AdamW step and a vector add.</summary>
    public const string Source = """
        // Kiln NVRTC test kernels: bf16 round trip, AdamW update, vector add.
        typedef unsigned short kiln_bf16;

        __device__ __forceinline__ float kiln_bf16_to_float(kiln_bf16 h)
        {
            return __uint_as_float(((unsigned int)h) << 16);
        }

        // Round to nearest, ties to even; a NaN stays a quiet NaN instead of rounding into infinity.
        __device__ __forceinline__ kiln_bf16 kiln_float_to_bf16(float f)
        {
            unsigned int u = __float_as_uint(f);
            if ((u & 0x7fffffffu) > 0x7f800000u)
                return (kiln_bf16)((u >> 16) | 0x0040u);
            u += 0x7fffu + ((u >> 16) & 1u);
            return (kiln_bf16)(u >> 16);
        }

        extern "C" __global__ void kiln_test_bf16_round_trip(kiln_bf16* bits, float* out, const float* __restrict__ in, int n)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n)
            {
                kiln_bf16 b = kiln_float_to_bf16(in[i]);
                bits[i] = b;
                out[i] = kiln_bf16_to_float(b);
            }
        }

        extern "C" __global__ void kiln_test_adamw_update(
            float* param, float* m, float* v, const float* __restrict__ grad,
            float lr, float beta1, float beta2, float eps, float weight_decay,
            float bias_correction1, float bias_correction2, int n)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i >= n)
                return;
            float g = grad[i];
            float mi = beta1 * m[i] + (1.0f - beta1) * g;
            float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            float m_hat = mi / bias_correction1;
            float v_hat = vi / bias_correction2;
            float p = param[i];
            param[i] = p - lr * (m_hat / (sqrtf(v_hat) + eps) + weight_decay * p);
        }

        extern "C" __global__ void kiln_test_vector_add(float* out, const float* __restrict__ a, const float* __restrict__ b, int n)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n)
                out[i] = a[i] + b[i];
        }
        """;

    /// <summary>float → bf16 bits, round to nearest even, NaN kept quiet; computed on the value, not with the CUDA bit trick.</summary>
    public static ushort ToBf16Bits(float value)
    {
        if (float.IsNaN(value))
            return (ushort)((BitConverter.SingleToUInt32Bits(value) >> 16) | 0x0040);

        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint upper = bits >> 16;
        uint lower = bits & 0xFFFF;
        // lower is the discarded half: above 0x8000 rounds up, below rounds down, exactly 0x8000 rounds to even.
        bool roundUp = lower > 0x8000 || (lower == 0x8000 && (upper & 1) == 1);
        return (ushort)(roundUp ? upper + 1 : upper);
    }

    /// <summary>bf16 bits → float.</summary>
    public static float FromBf16Bits(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}

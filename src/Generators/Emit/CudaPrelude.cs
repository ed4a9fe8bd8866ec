namespace Kiln.Generators.Emit;

/// <summary>
/// The start of every emitted CUDA translation unit. NVRTC compiles it without toolkit headers, so the
/// math helpers (the same formulas as the runtime's CPU <c>S</c> class, with CUDA's precise built-ins),
/// the 16-bit float conversions and the launch arithmetic are spelled out here.
/// </summary>
internal static class CudaPrelude
{
    public const string Text = """
        // ── Kiln CUDA prelude: self-contained, includes no toolkit headers ──
        typedef long long kiln_i64;
        typedef unsigned short kiln_bf16;   // bfloat16 bits
        typedef unsigned short kiln_f16;    // IEEE half bits
        #define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
        #define KILN_WARP 32

        __device__ __forceinline__ float kiln_Exp(float x) { return expf(x); }
        __device__ __forceinline__ float kiln_Log(float x) { return logf(x); }
        __device__ __forceinline__ float kiln_Sqrt(float x) { return sqrtf(x); }
        __device__ __forceinline__ float kiln_Rsqrt(float x) { return 1.0f / sqrtf(x); }
        __device__ __forceinline__ float kiln_Abs(float x) { return fabsf(x); }
        __device__ __forceinline__ float kiln_Sign(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f); }
        __device__ __forceinline__ float kiln_Relu(float x) { return x > 0.0f ? x : 0.0f; }
        __device__ __forceinline__ float kiln_Max(float a, float b) { return fmaxf(a, b); }
        __device__ __forceinline__ float kiln_Min(float a, float b) { return fminf(a, b); }
        __device__ __forceinline__ float kiln_Greater(float a, float b) { return a > b ? 1.0f : 0.0f; }
        __device__ __forceinline__ float kiln_Less(float a, float b) { return a < b ? 1.0f : 0.0f; }
        __device__ __forceinline__ float kiln_Equal(float a, float b) { return a == b ? 1.0f : 0.0f; }
        __device__ __forceinline__ float kiln_Where(float c, float a, float b) { return c != 0.0f ? a : b; }
        __device__ __forceinline__ float kiln_Tanh(float x) { return tanhf(x); }
        __device__ __forceinline__ float kiln_Sin(float x) { return sinf(x); }
        __device__ __forceinline__ float kiln_Cos(float x) { return cosf(x); }
        __device__ __forceinline__ float kiln_Sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
        __device__ __forceinline__ float kiln_Pow(float x, float p) { return powf(x, p); }
        // GELU, tanh approximation (as the CPU runtime), and its derivative.
        #define KILN_GELU_K 0.7978845608028654f
        __device__ __forceinline__ float kiln_Gelu(float x)
        {
            return 0.5f * x * (1.0f + tanhf(KILN_GELU_K * (x + 0.044715f * x * x * x)));
        }
        __device__ __forceinline__ float kiln_GeluGrad(float x)
        {
            float t = tanhf(KILN_GELU_K * (x + 0.044715f * x * x * x));
            return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * KILN_GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        }
        __device__ __forceinline__ float kiln_NegInf() { return __int_as_float(0xff800000); }

        // bf16/fp16 storage for mixed precision: round to nearest even, NaN stays NaN.
        __device__ __forceinline__ float kiln_bf16_to_float(kiln_bf16 h) { return __uint_as_float(((unsigned int)h) << 16); }
        __device__ __forceinline__ kiln_bf16 kiln_float_to_bf16(float f)
        {
            unsigned int u = __float_as_uint(f);
            if ((u & 0x7fffffffu) > 0x7f800000u) return (kiln_bf16)((u >> 16) | 0x0040u);
            u += 0x7fffu + ((u >> 16) & 1u);
            return (kiln_bf16)(u >> 16);
        }
        #ifndef KILN_HOST_EMULATION
        __device__ __forceinline__ float kiln_f16_to_float(kiln_f16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
        __device__ __forceinline__ kiln_f16 kiln_float_to_f16(float f) { kiln_f16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
        #else
        // The host emulator (tests) has no PTX: the same conversions in integer arithmetic (RNE, NaN stays NaN).
        __device__ __forceinline__ float kiln_f16_to_float(kiln_f16 h)
        {
            unsigned int sign = ((unsigned int)h & 0x8000u) << 16, e = ((unsigned int)h >> 10) & 0x1fu, m = (unsigned int)h & 0x3ffu;
            if (e == 0x1fu) return __uint_as_float(sign | 0x7f800000u | (m << 13));
            if (e != 0) return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
            if (m == 0) return __uint_as_float(sign);
            float f = (float)m * 5.9604644775390625e-8f; // m · 2^-24
            return sign ? -f : f;
        }
        __device__ __forceinline__ kiln_f16 kiln_float_to_f16(float f)
        {
            unsigned int u = __float_as_uint(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
            if (a > 0x7f800000u) return (kiln_f16)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
            if (a >= 0x477ff000u) return (kiln_f16)(sign | 0x7c00u);            // rounds to ±∞
            if (a < 0x38800000u)                                                 // subnormal or zero in fp16
            {
                float s = __uint_as_float(a) * 16777216.0f;                      // exact: scale by 2^24
                unsigned int q = (unsigned int)s; float r = s - (float)q;
                if (r > 0.5f || (r == 0.5f && (q & 1u))) q++;
                return (kiln_f16)(sign | q);
            }
            unsigned int mant = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u;
            return (kiln_f16)(sign | (mant >> 13));
        }
        #endif

        // Storage of low-precision tensors, chosen per build variant: bf16, fp16 or fp32 (no reduction).
        #if defined(KILN_PRECISION_BF16)
        typedef kiln_bf16 kiln_low;
        __device__ __forceinline__ float kiln_low_to_float(kiln_low v) { return kiln_bf16_to_float(v); }
        __device__ __forceinline__ kiln_low kiln_float_to_low(float f) { return kiln_float_to_bf16(f); }
        #elif defined(KILN_PRECISION_F16)
        typedef kiln_f16 kiln_low;
        __device__ __forceinline__ float kiln_low_to_float(kiln_low v) { return kiln_f16_to_float(v); }
        __device__ __forceinline__ kiln_low kiln_float_to_low(float f) { return kiln_float_to_f16(f); }
        #else
        typedef float kiln_low;
        __device__ __forceinline__ float kiln_low_to_float(kiln_low v) { return v; }
        __device__ __forceinline__ kiln_low kiln_float_to_low(float f) { return f; }
        #endif

        // 16-byte vector access for contiguous elementwise kernels: 8 elements a thread, as two 16-byte accesses in
        // fp32/int32 or one in bf16/fp16. Taken only when every pointer is 16-byte aligned and the count divides by 8.
        struct alignas(16) kiln_v4f { float a, b, c, d; };
        struct alignas(16) kiln_v4i { int a, b, c, d; };
        struct alignas(16) kiln_v8h { unsigned short v[8]; };
        __device__ __forceinline__ bool kiln_aligned16(const void* p) { return ((unsigned long long)p & 15ull) == 0; }
        __device__ __forceinline__ void kiln_load8(float* d, const float* s)
        {
            kiln_v4f x = ((const kiln_v4f*)s)[0], y = ((const kiln_v4f*)s)[1];
            d[0] = x.a; d[1] = x.b; d[2] = x.c; d[3] = x.d; d[4] = y.a; d[5] = y.b; d[6] = y.c; d[7] = y.d;
        }
        __device__ __forceinline__ void kiln_load8(int* d, const int* s)
        {
            kiln_v4i x = ((const kiln_v4i*)s)[0], y = ((const kiln_v4i*)s)[1];
            d[0] = x.a; d[1] = x.b; d[2] = x.c; d[3] = x.d; d[4] = y.a; d[5] = y.b; d[6] = y.c; d[7] = y.d;
        }
        __device__ __forceinline__ void kiln_store8(float* o, const float* v)
        {
            kiln_v4f x, y;
            x.a = v[0]; x.b = v[1]; x.c = v[2]; x.d = v[3]; y.a = v[4]; y.b = v[5]; y.c = v[6]; y.d = v[7];
            ((kiln_v4f*)o)[0] = x; ((kiln_v4f*)o)[1] = y;
        }
        __device__ __forceinline__ void kiln_store8(int* o, const float* v)
        {
            kiln_v4i x, y;
            x.a = (int)v[0]; x.b = (int)v[1]; x.c = (int)v[2]; x.d = (int)v[3]; y.a = (int)v[4]; y.b = (int)v[5]; y.c = (int)v[6]; y.d = (int)v[7];
            ((kiln_v4i*)o)[0] = x; ((kiln_v4i*)o)[1] = y;
        }
        __device__ __forceinline__ void kiln_accumulate8(float* o, const float* v)
        {
            float t[8];
            kiln_load8(t, o);
            for (int j = 0; j < 8; j++) t[j] += v[j];
            kiln_store8(o, t);
        }
        #if defined(KILN_PRECISION_BF16) || defined(KILN_PRECISION_F16)
        __device__ __forceinline__ void kiln_load8(float* d, const kiln_low* s)
        {
            kiln_v8h x = *(const kiln_v8h*)s;
            for (int j = 0; j < 8; j++) d[j] = kiln_low_to_float(x.v[j]);
        }
        __device__ __forceinline__ void kiln_store8(kiln_low* o, const float* v)
        {
            kiln_v8h x;
            for (int j = 0; j < 8; j++) x.v[j] = kiln_float_to_low(v[j]);
            *(kiln_v8h*)o = x;
        }
        #endif

        // Sum and max across the 32 lanes of a warp; every lane ends with the result.
        __device__ __forceinline__ float kiln_warp_sum(float v)
        {
            for (int o = KILN_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            return v;
        }
        __device__ __forceinline__ float kiln_warp_max(float v)
        {
            for (int o = KILN_WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
            return v;
        }
        // Grid-stride loops: over elements (one thread each) and over rows (one warp each).
        #define KILN_FOR_ELEMENTS(i, n) for (kiln_i64 i = (kiln_i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (kiln_i64)blockDim.x * gridDim.x)
        #define KILN_FOR_WARPS(w, n) for (kiln_i64 w = ((kiln_i64)blockIdx.x * blockDim.x + threadIdx.x) / KILN_WARP; w < (n); w += ((kiln_i64)blockDim.x * gridDim.x) / KILN_WARP)
        """;
}

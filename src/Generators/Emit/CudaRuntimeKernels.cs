namespace Kiln.Generators.Emit;

/// <summary>
/// Kernels every CUDA program needs besides its own: the optimizer updates (fused with the refresh of the
/// low-precision parameter copy), the gradient norm, scaling, gradient accumulation of unfused parameter
/// gradients, parameter casts and dropout masks. They are appended to each model's translation unit so they
/// are compiled at build time with the model's kernels and its precision variant.
/// </summary>
/// <remarks>
/// Random numbers follow the runtime's Philox conventions exactly (<c>Kiln.Runtime.Philox</c>): element
/// <c>i</c> of stream <c>s</c> under key <c>k</c> is word <c>i mod 4</c> of block <c>(k; s, i / 4)</c>, and a
/// uniform is <c>(word &gt;&gt; 8)·2⁻²⁴</c>. Stochastic rounding follows <c>Bf16</c>/<c>Fp16</c>: the magnitude goes
/// up when the element's word is below its discarded fraction scaled to 2³². So masks and rounding are
/// bit-identical on the CPU and the GPU.
/// </remarks>
internal static class CudaRuntimeKernels
{
    public const string Text = """
        // ═══════════ runtime kernels (optimizer, norms, casts, dropout) ═══════════

        // Every kernel is declared on one line, as the emitter's are (the test emulator finds kernels that way).

        // Philox4x32-10, Random123's word order: counter (c0..c3) = (block lo, block hi, stream lo, stream hi), key = (seed lo, seed hi).
        __device__ __forceinline__ unsigned int kiln_philox_word(unsigned long long key, unsigned long long stream, unsigned long long index)
        {
            unsigned long long block = index >> 2;
            unsigned int c0 = (unsigned int)block, c1 = (unsigned int)(block >> 32), c2 = (unsigned int)stream, c3 = (unsigned int)(stream >> 32);
            unsigned int k0 = (unsigned int)key, k1 = (unsigned int)(key >> 32);
            for (int r = 0; r < 10; r++)
            {
                if (r > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
                unsigned int hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
                unsigned int hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
                unsigned int n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
                c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
            }
            unsigned int lane = (unsigned int)(index & 3);
            return lane == 0 ? c0 : lane == 1 ? c1 : lane == 2 ? c2 : c3;
        }

        // Stochastic rounding to the low type (see Bf16/Fp16.RoundStochastic); fp32 needs none.
        __device__ __forceinline__ kiln_low kiln_float_to_low_sr(float f, unsigned int word)
        {
        #if defined(KILN_PRECISION_BF16)
            unsigned int u = __float_as_uint(f);
            if ((u & 0x7fffffffu) > 0x7f800000u) return (kiln_low)((u >> 16) | 0x0040u);
            return (kiln_low)(((u & 0xffff0000u) + (word < (u << 16) ? 0x10000u : 0u)) >> 16);
        #elif defined(KILN_PRECISION_F16)
            unsigned int u = __float_as_uint(f), a = u & 0x7fffffffu, sign = (u >> 16) & 0x8000u, h;
            if (a > 0x7f800000u) h = 0x7e00u | ((a >> 13) & 0x3ffu);
            else if (a >= 0x47800000u) h = 0x7c00u;
            else if (a >= 0x38800000u) h = ((a - 0x38000000u) >> 13) + (word < (a << 19) ? 1u : 0u);
            else
            {
                float scaled = __uint_as_float(a) * 16777216.0f;
                unsigned int q = (unsigned int)scaled;
                unsigned int threshold = (unsigned int)((scaled - (float)q) * 4294967296.0f);
                h = q + (word < threshold ? 1u : 0u);
            }
            return (kiln_low)(h | sign);
        #else
            return f;
        #endif
        }

        __device__ __forceinline__ void kiln_store_low_param(kiln_low* lp, kiln_i64 i, float p, int sr, unsigned long long seed, unsigned long long stream)
        {
            if (lp == 0) return;
            lp[i] = sr ? kiln_float_to_low_sr(p, kiln_philox_word(seed, stream, (unsigned long long)i)) : kiln_float_to_low(p);
        }

        // AdamW with decoupled weight decay, the CPU optimizer's formula; writes the low-precision copy (lp may be null).
        extern "C" __global__ void kiln_rt_adamw(float* __restrict__ p, kiln_low* __restrict__ lp, float* __restrict__ m, float* __restrict__ v, const float* __restrict__ g, const unsigned char* __restrict__ decay, long long n, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2, float eps, float stepSize, float invBc2Sqrt, float decayFactor, int sr, unsigned long long seed, unsigned long long stream)
        {
            KILN_FOR_ELEMENTS(i, n)
            {
                float gi = g[i];
                float mi = beta1 * m[i] + oneMinusBeta1 * gi;
                float vi = beta2 * v[i] + oneMinusBeta2 * (gi * gi);
                float pi = p[i] * (decay[i] ? decayFactor : 1.0f);
                pi -= stepSize * mi / (sqrtf(vi) * invBc2Sqrt + eps);
                m[i] = mi; v[i] = vi; p[i] = pi;
                kiln_store_low_param(lp, i, pi, sr, seed, stream);
            }
        }

        // SGD with optional (Nesterov) momentum and L2 weight decay, the CPU optimizer's formula.
        extern "C" __global__ void kiln_rt_sgd(float* __restrict__ p, kiln_low* __restrict__ lp, float* __restrict__ buf, const float* __restrict__ g, const unsigned char* __restrict__ decay, long long n, float lr, float weightDecay, float momentum, int nesterov, int sr, unsigned long long seed, unsigned long long stream)
        {
            KILN_FOR_ELEMENTS(i, n)
            {
                float pi = p[i];
                float d = g[i] + (decay[i] ? weightDecay : 0.0f) * pi;
                if (buf != 0)
                {
                    float b = momentum * buf[i] + d;
                    buf[i] = b;
                    d = nesterov ? d + momentum * b : b;
                }
                pi = pi - lr * d;
                p[i] = pi;
                kiln_store_low_param(lp, i, pi, sr, seed, stream);
            }
        }

        // The low-precision copy of the parameters (after loading or initialising them).
        extern "C" __global__ void kiln_rt_params_to_low(kiln_low* __restrict__ lp, const float* __restrict__ p, long long n, int sr, unsigned long long seed, unsigned long long stream)
        {
            KILN_FOR_ELEMENTS(i, n) kiln_store_low_param(lp, i, p[i], sr, seed, stream);
        }

        // Σx² in double: every block writes one partial sum; the host adds the partials.
        extern "C" __global__ void kiln_rt_sumsq(double* __restrict__ partial, const float* __restrict__ x, long long n)
        {
            __shared__ double warpSums[32];
            double acc = 0.0;
            KILN_FOR_ELEMENTS(i, n) { double xi = (double)x[i]; acc += xi * xi; }
            for (int o = KILN_WARP / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
            unsigned int lane = threadIdx.x % KILN_WARP, warp = threadIdx.x / KILN_WARP;
            if (lane == 0) warpSums[warp] = acc;
            __syncthreads();
            if (warp == 0)
            {
                unsigned int warps = blockDim.x / KILN_WARP;
                acc = lane < warps ? warpSums[lane] : 0.0;
                for (int o = KILN_WARP / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
                if (lane == 0) partial[blockIdx.x] = acc;
            }
        }

        extern "C" __global__ void kiln_rt_scale(float* __restrict__ x, float factor, long long n)
        {
            KILN_FOR_ELEMENTS(i, n) x[i] *= factor;
        }

        // A parameter gradient that was not written into the gradient slab directly.
        extern "C" __global__ void kiln_rt_add_into_f32(float* __restrict__ g, const float* __restrict__ x, long long n)
        {
            KILN_FOR_ELEMENTS(i, n) g[i] += x[i];
        }

        extern "C" __global__ void kiln_rt_add_into_low(float* __restrict__ g, const kiln_low* __restrict__ x, long long n)
        {
            KILN_FOR_ELEMENTS(i, n) g[i] += kiln_low_to_float(x[i]);
        }

        extern "C" __global__ void kiln_rt_add_scalar_into(float* __restrict__ g, float value, long long n)
        {
            KILN_FOR_ELEMENTS(i, n) g[i] += value;
        }

        // A carried value that widens from the low type to fp32 as a loop starts.
        extern "C" __global__ void kiln_rt_low_to_f32(float* __restrict__ out, const kiln_low* __restrict__ in, long long n)
        {
            KILN_FOR_ELEMENTS(i, n) out[i] = kiln_low_to_float(in[i]);
        }

        // Inverted dropout: 0 where Uniform(seed, stream, first + i) < p, else 1/(1 − p) (DropoutKernels.FillMask; in a loop
        // body, iteration l starts at first = l·n, so each layer draws its own mask).
        extern "C" __global__ void kiln_rt_dropout_mask(float* __restrict__ out, float p, unsigned long long seed, unsigned long long stream, unsigned long long first, long long n)
        {
            float keep = 1.0f / (1.0f - p);
            KILN_FOR_ELEMENTS(i, n)
            {
                float u = (float)(kiln_philox_word(seed, stream, first + (unsigned long long)i) >> 8) * 5.9604644775390625e-8f;
                out[i] = u < p ? 0.0f : keep;
            }
        }
        """;
}

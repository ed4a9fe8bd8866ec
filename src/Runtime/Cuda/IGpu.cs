using System;
using System.Collections.Generic;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Cuda;

/// <summary>Element types of device buffers and GEMM operands.</summary>
public enum GpuDataType
{
    /// <summary>32-bit IEEE float (<c>CUDA_R_32F</c>).</summary>
    Float32,
    /// <summary>bfloat16 (<c>CUDA_R_16BF</c>).</summary>
    BFloat16,
    /// <summary>IEEE half (<c>CUDA_R_16F</c>).</summary>
    Float16,
    /// <summary>32-bit signed integer.</summary>
    Int32,
}

/// <summary>
/// The CUDA C of one module, as the generator emitted it, and the preprocessor definitions of the variant
/// to build (for example <c>-DKILN_PRECISION_BF16</c>). The definitions are part of the kernel cache key.
/// </summary>
/// <param name="Name">Program name NVRTC reports diagnostics under (for a model, <c>{Model}.cu</c>).</param>
/// <param name="Source">The translation unit; includes no toolkit headers.</param>
/// <param name="Defines">Preprocessor options of the variant, each of the form <c>-DNAME</c> or <c>-DNAME=VALUE</c>.</param>
public sealed record GpuKernelSource(string Name, string Source, IReadOnlyList<string> Defines)
{
    /// <summary>The content key of this source and variant: prebuilt kernels are looked up by it.</summary>
    public string Key => KernelCacheKey.Compute(Source, Defines);
}

/// <summary>
/// A device that runs Kiln's generated CUDA programs: the real driver (<c>CudaGpu</c>) or, in tests,
/// a host emulator of the same kernels. All work is queued on one in-order stream; copies to the host
/// wait for it. Pointers are device addresses (<c>CUdeviceptr</c>).
/// </summary>
public interface IGpu : IDisposable
{
    /// <summary>A human-readable description, e.g. <c>cuda:0 NVIDIA H200 (sm_90, 139 GiB)</c>.</summary>
    string Name { get; }

    /// <summary>Device memory in bytes.</summary>
    long TotalMemoryBytes { get; }

    /// <summary>Allocates <paramref name="bytes"/> (at least 256-byte aligned; contents undefined).</summary>
    ulong Allocate(long bytes);

    /// <summary>Frees an allocation made by <see cref="Allocate"/> (after the queued work that uses it).</summary>
    void Free(ulong pointer);

    /// <summary>Copies host bytes to the device (the host span may be reused when this returns).</summary>
    void CopyToDevice(ulong destination, ReadOnlySpan<byte> source);

    /// <summary>Waits for the queued work, then copies device bytes to the host.</summary>
    void CopyToHost(Span<byte> destination, ulong source);

    /// <summary>Queues a device-to-device copy.</summary>
    void CopyDeviceToDevice(ulong destination, ulong source, long bytes);

    /// <summary>Queues a byte fill (<c>memset</c>).</summary>
    void Fill(ulong destination, byte value, long bytes);

    /// <summary>
    /// Loads (building when needed) the kernels of <paramref name="source"/>: the real device looks for a
    /// prebuilt CUBIN or PTX by <see cref="GpuKernelSource.Key"/>, then compiles with NVRTC.
    /// </summary>
    IGpuModule LoadModule(GpuKernelSource source);

    /// <summary>Queues one (batched) matrix multiply with cuBLASLt semantics; see <see cref="LtMatmul"/>.</summary>
    void Matmul(in LtMatmul matmul);

    /// <summary>Waits until all queued work has finished; kernel faults surface here.</summary>
    void Synchronize();
}

/// <summary>Kernels loaded from one <see cref="GpuKernelSource"/>.</summary>
public interface IGpuModule : IDisposable
{
    /// <summary>The kernel named <paramref name="name"/> (an <c>extern "C" __global__</c> function).</summary>
    /// <exception cref="KeyNotFoundException">The module has no such kernel.</exception>
    IGpuKernel GetKernel(string name);
}

/// <summary>One kernel of an <see cref="IGpuModule"/>.</summary>
public interface IGpuKernel
{
    /// <summary>The kernel's name.</summary>
    string Name { get; }

    /// <summary>
    /// Queues the kernel on a one-dimensional grid. Arguments are passed by value in declaration order, each
    /// with the C type of the kernel's parameter: a pointer or <c>long long</c> as <see cref="ulong"/>/<see cref="long"/>,
    /// <c>float</c> as <see cref="float"/>, <c>int</c> as <see cref="int"/>.
    /// </summary>
    void Launch(uint gridBlocks, uint blockThreads, int sharedMemoryBytes, params ReadOnlySpan<KernelArgument> arguments);
}

/// <summary>
/// One matrix multiply in cuBLASLt's terms (column-major): <c>D = Alpha·op(A)·op(B) + Beta·C</c> with
/// <c>op(A)</c> M×K, <c>op(B)</c> K×N and D = C (written in place, <c>TypeC</c>, leading dimension <c>Ldc</c>),
/// fp32 accumulation and fp32 scale. A is stored K×M when <c>TransA</c> (else M×K) with leading dimension
/// <c>Lda</c>; likewise B. <c>BatchCount</c> matrices are multiplied, the i-th operands starting
/// <c>i·Stride</c> elements after the first (a stride of 0 broadcasts an operand). When <c>Bias</c> is not 0
/// the BIAS epilogue adds a <c>TypeC</c> vector of length M to every column of D.
/// </summary>
public readonly record struct LtMatmul(
    bool TransA, bool TransB, long M, long N, long K,
    ulong A, GpuDataType TypeA, long Lda, long StrideA,
    ulong B, GpuDataType TypeB, long Ldb, long StrideB,
    ulong C, GpuDataType TypeC, long Ldc, long StrideC,
    int BatchCount, float Alpha, float Beta, ulong Bias = 0)
{
    /// <summary>
    /// The column-major call that computes the row-major product <c>C[m×n] = Alpha·op(A)·op(B) + Beta·C</c>, where
    /// the row-major A is stored <c>[m, k]</c> (or <c>[k, m]</c> when <paramref name="transA"/>) and B is stored
    /// <c>[k, n]</c> (or <c>[n, k]</c>): a row-major matrix is its transpose in column-major, so the call computes
    /// <c>Cᵀ = op(B)ᵀ·op(A)ᵀ</c> with the operands swapped. A bias, if any, has length <paramref name="n"/>
    /// (one value per output column, as a Linear layer's).
    /// </summary>
    public static LtMatmul RowMajor(bool transA, bool transB, long m, long n, long k,
        ulong a, GpuDataType typeA, ulong b, GpuDataType typeB, ulong c, GpuDataType typeC,
        float alpha = 1f, float beta = 0f, int batchCount = 1, long strideA = 0, long strideB = 0, long strideC = 0, ulong bias = 0)
    {
        if (m <= 0 || n <= 0 || k <= 0) throw new ArgumentException($"A matrix multiply needs positive sizes; got m={m}, n={n}, k={k}.");
        if (batchCount <= 0) throw new ArgumentOutOfRangeException(nameof(batchCount), batchCount, "The batch count must be positive.");
        return new LtMatmul(
            TransA: transB, TransB: transA, M: n, N: m, K: k,
            A: b, TypeA: typeB, Lda: transB ? k : n, StrideA: strideB,
            B: a, TypeB: typeA, Ldb: transA ? m : k, StrideB: strideA,
            C: c, TypeC: typeC, Ldc: n, StrideC: strideC,
            BatchCount: batchCount, Alpha: alpha, Beta: beta, Bias: bias);
    }
}

/// <summary>Byte sizes of <see cref="GpuDataType"/> elements.</summary>
public static class GpuDataTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(GpuDataType type) => type is GpuDataType.BFloat16 or GpuDataType.Float16 ? 2 : 4;
}

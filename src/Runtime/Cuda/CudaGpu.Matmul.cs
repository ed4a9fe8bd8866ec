using System;
using System.Collections.Generic;
using System.Numerics;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Cuda;

/// <summary>
/// Everything that decides a cuBLASLt plan (descriptors and the heuristic's algorithm): shapes, types, leading
/// dimensions, batch strides and count, transposes, the bias epilogue, and the alignment the operands are known to
/// have. Two multiplies with equal keys reuse one plan; the pointers themselves are not part of it.
/// </summary>
internal readonly record struct MatmulPlanKey(
    bool TransA, bool TransB, long M, long N, long K,
    GpuDataType TypeA, GpuDataType TypeB, GpuDataType TypeC,
    long Lda, long Ldb, long Ldc,
    long StrideA, long StrideB, long StrideC,
    int BatchCount, bool HasBias,
    int AlignmentA, int AlignmentB, int AlignmentC, int AlignmentBias)
{
    /// <summary>The most alignment cuBLASLt asks about (its default assumption for every operand).</summary>
    internal const int MaxAlignment = 256;

    /// <summary>
    /// The alignment the BIAS epilogue's vector must have. A, B and C need only their element's alignment: the plan passes
    /// their actual alignment to the heuristic (<c>MIN_ALIGNMENT_*</c>), which then picks kernels that can read them —
    /// a weight after an odd-sized tensor in the parameter slab is legal, just slower.
    /// </summary>
    internal const int BiasAlignment = 16;

    /// <summary>The key of <paramref name="g"/>, after <see cref="Validate"/>.</summary>
    internal static MatmulPlanKey For(in LtMatmul g) => new(
        g.TransA, g.TransB, g.M, g.N, g.K, g.TypeA, g.TypeB, g.TypeC,
        g.Lda, g.Ldb, g.Ldc, g.StrideA, g.StrideB, g.StrideC, g.BatchCount, g.Bias != 0,
        Alignment(g.A, g.StrideA, g.TypeA, g.BatchCount),
        Alignment(g.B, g.StrideB, g.TypeB, g.BatchCount),
        Alignment(g.C, g.StrideC, g.TypeC, g.BatchCount),
        g.Bias == 0 ? 0 : Alignment(g.Bias, 0, g.TypeC, 1));

    /// <summary>
    /// The alignment (a power of two up to 256 bytes) every batch's matrix of an operand has: that of the pointer and
    /// of the byte stride between batches.
    /// </summary>
    internal static int Alignment(ulong pointer, long stride, GpuDataType type, int batchCount)
    {
        int alignment = MaxAlignment;
        if (pointer != 0)
            alignment = Math.Min(alignment, 1 << BitOperations.TrailingZeroCount(pointer));
        long strideBytes = stride * GpuDataTypes.SizeOf(type);
        if (batchCount > 1 && strideBytes != 0)
            alignment = Math.Min(alignment, 1 << BitOperations.TrailingZeroCount(strideBytes));
        return alignment;
    }

    /// <summary>Checks what cuBLASLt would otherwise reject with a bare status (or, for a bad leading dimension, not reject).</summary>
    /// <exception cref="ArgumentException">The message names the operand, the value and the rule.</exception>
    internal static void Validate(in LtMatmul g)
    {
        if (g.M <= 0 || g.N <= 0 || g.K <= 0)
            throw new ArgumentException($"Matmul needs positive sizes; got M={g.M}, N={g.N}, K={g.K}.", "matmul");
        if (g.BatchCount <= 0)
            throw new ArgumentException($"Matmul needs a positive batch count; got {g.BatchCount}.", "matmul");
        CheckType(g.TypeA, "A");
        CheckType(g.TypeB, "B");
        CheckType(g.TypeC, "C");
        if (g.TypeA != g.TypeB)
            throw new ArgumentException($"Matmul operands A ({g.TypeA}) and B ({g.TypeB}) must have the same type: cuBLASLt has no mixed-input fp32-accumulate kernels.", "matmul");
        if (g.TypeC != g.TypeA && g.TypeC != GpuDataType.Float32)
            throw new ArgumentException($"Matmul output C has type {g.TypeC}; with {g.TypeA} inputs it must be {g.TypeA} or Float32.", "matmul");
        CheckOperand("A", g.A, g.TypeA, g.TransA ? g.K : g.M, g.Lda, g.StrideA);
        CheckOperand("B", g.B, g.TypeB, g.TransB ? g.N : g.K, g.Ldb, g.StrideB);
        CheckOperand("C", g.C, g.TypeC, g.M, g.Ldc, g.StrideC);
        if (g.Bias != 0 && g.Bias % BiasAlignment != 0)
            throw new ArgumentException(MisalignedMessage("bias", g.Bias, BiasAlignment), "matmul");
    }

    internal static string MisalignedMessage(string operand, ulong pointer, int required)
        => $"Matmul operand {operand} at 0x{pointer:x} is not {required}-byte aligned (it is {1 << BitOperations.TrailingZeroCount(pointer)}-byte aligned); " +
           $"cuBLASLt needs it on a {required}-byte boundary. Fix: start the tensor at an offset that is a multiple of {required} bytes in its slab.";

    private static void CheckType(GpuDataType type, string operand)
    {
        if (type is not (GpuDataType.Float32 or GpuDataType.BFloat16 or GpuDataType.Float16))
            throw new ArgumentException($"Matmul operand {operand} has type {type}; Kiln's cuBLASLt matmul supports Float32, BFloat16 and Float16.", "matmul");
    }

    private static void CheckOperand(string operand, ulong pointer, GpuDataType type, long rows, long ld, long stride)
    {
        if (pointer == 0)
            throw new ArgumentException($"Matmul operand {operand} is a null device pointer.", "matmul");
        int element = GpuDataTypes.SizeOf(type);
        if (pointer % (ulong)element != 0)
            throw new ArgumentException(MisalignedMessage(operand, pointer, element), "matmul");
        if (ld < rows)
            throw new ArgumentException($"Matmul operand {operand}: the leading dimension {ld} is less than its {rows} stored rows (column-major, as cuBLASLt).", "matmul");
        if (stride < 0)
            throw new ArgumentException($"Matmul operand {operand}: the batch stride {stride} is negative.", "matmul");
    }
}

/// <summary>The cuBLASLt side of <see cref="CudaGpu"/>: one handle, one 32 MiB workspace, and a plan per <see cref="MatmulPlanKey"/>.</summary>
public sealed partial class CudaGpu
{
    /// <summary>The workspace cuBLASLt may use per call (llm.c: Hopper needs 32 MiB for its best kernels).</summary>
    internal const long WorkspaceBytes = 32L * 1024 * 1024;

    private readonly nint _cublasLt;
    private readonly Dictionary<MatmulPlanKey, MatmulPlan> _plans = new();
    private ulong _workspace;

    /// <summary>How many distinct plans the cache holds (for tests and diagnostics).</summary>
    internal int MatmulPlanCount => _plans.Count;

    /// <summary>
    /// Queues <c>D = Alpha·op(A)·op(B) + Beta·C (+ bias)</c> with cuBLASLt on the GPU's stream, with fp32 accumulation
    /// and scale (see <see cref="LtMatmul"/>). The descriptors and algorithm are planned once per distinct
    /// <see cref="MatmulPlanKey"/> and reused.
    /// </summary>
    /// <exception cref="ArgumentException">Bad sizes, types, leading dimensions or strides, or a pointer not 16-byte aligned.</exception>
    /// <exception cref="NotSupportedException">cuBLASLt has no algorithm for this problem on this GPU.</exception>
    public unsafe void Matmul(in LtMatmul matmul)
    {
        MatmulPlanKey.Validate(matmul);
        MakeCurrent();
        var key = MatmulPlanKey.For(matmul);
        if (!_plans.TryGetValue(key, out var plan))
        {
            if (_workspace == 0)
                CudaDriver.Check(CudaDriver.cuMemAlloc_v2(out _workspace, (nuint)WorkspaceBytes));
            plan = MatmulPlan.Create(_cublasLt, key);
            _plans.Add(key, plan);
        }

        float alpha = matmul.Alpha, beta = matmul.Beta;
        if (matmul.Bias != 0)
            CublasLt.SetDescAttribute(plan.Desc, CublasLt.MatmulDescBiasPointer, matmul.Bias);
        var algo = plan.Algo;
        // D is C (in place), with the same layout.
        CublasLt.Check(CublasLt.cublasLtMatmul(
            _cublasLt, plan.Desc,
            &alpha, matmul.A, plan.LayoutA, matmul.B, plan.LayoutB,
            &beta, matmul.C, plan.LayoutC, matmul.C, plan.LayoutC,
            &algo, _workspace, (nuint)WorkspaceBytes, Stream.Handle));
    }

    private void DisposeMatmul()
    {
        foreach (var plan in _plans.Values)
            plan.Destroy();
        _plans.Clear();
        if (_workspace != 0)
        {
            ulong workspace = _workspace;
            _workspace = 0;
            CudaDriver.Check(CudaDriver.cuMemFree_v2(workspace));
        }

        CublasLt.Check(CublasLt.cublasLtDestroy(_cublasLt));
    }

    /// <summary>The descriptors of one problem and the algorithm the heuristic chose for it.</summary>
    private sealed class MatmulPlan
    {
        private MatmulPlan(nint desc, nint layoutA, nint layoutB, nint layoutC, CublasLt.MatmulAlgo algo)
        {
            Desc = desc;
            LayoutA = layoutA;
            LayoutB = layoutB;
            LayoutC = layoutC;
            Algo = algo;
        }

        public nint Desc { get; }
        public nint LayoutA { get; }
        public nint LayoutB { get; }
        public nint LayoutC { get; }
        public CublasLt.MatmulAlgo Algo { get; }

        public static unsafe MatmulPlan Create(nint handle, MatmulPlanKey key)
        {
            nint desc = 0, layoutA = 0, layoutB = 0, layoutC = 0, preference = 0;
            try
            {
                CublasLt.Check(CublasLt.cublasLtMatmulDescCreate(out desc, CublasLt.ComputeType32F, CublasLt.CudaR32F));
                CublasLt.SetDescAttribute(desc, CublasLt.MatmulDescTransA, key.TransA ? CublasLt.OperationT : CublasLt.OperationN);
                CublasLt.SetDescAttribute(desc, CublasLt.MatmulDescTransB, key.TransB ? CublasLt.OperationT : CublasLt.OperationN);
                if (key.HasBias)
                {
                    CublasLt.SetDescAttribute(desc, CublasLt.MatmulDescEpilogue, CublasLt.EpilogueBias);
                    CublasLt.SetDescAttribute(desc, CublasLt.MatmulDescBiasDataType, DataType(key.TypeC));
                }

                layoutA = Layout(key.TypeA, key.TransA ? key.K : key.M, key.TransA ? key.M : key.K, key.Lda, key.StrideA, key.BatchCount);
                layoutB = Layout(key.TypeB, key.TransB ? key.N : key.K, key.TransB ? key.K : key.N, key.Ldb, key.StrideB, key.BatchCount);
                layoutC = Layout(key.TypeC, key.M, key.N, key.Ldc, key.StrideC, key.BatchCount);

                CublasLt.Check(CublasLt.cublasLtMatmulPreferenceCreate(out preference));
                CublasLt.SetPreferenceAttribute(preference, CublasLt.PreferenceMaxWorkspaceBytes, (ulong)WorkspaceBytes);
                // The heuristic otherwise assumes 256-byte aligned operands and may pick a kernel that faults on
                // tensors at 16-byte offsets in a slab.
                CublasLt.SetPreferenceAttribute(preference, CublasLt.PreferenceMinAlignmentABytes, (uint)key.AlignmentA);
                CublasLt.SetPreferenceAttribute(preference, CublasLt.PreferenceMinAlignmentBBytes, (uint)key.AlignmentB);
                CublasLt.SetPreferenceAttribute(preference, CublasLt.PreferenceMinAlignmentCBytes, (uint)key.AlignmentC);
                CublasLt.SetPreferenceAttribute(preference, CublasLt.PreferenceMinAlignmentDBytes, (uint)key.AlignmentC);

                CublasLt.HeuristicResult result = default;
                int found = 0;
                int status = CublasLt.cublasLtMatmulAlgoGetHeuristic(handle, desc, layoutA, layoutB, layoutC, layoutC, preference, 1, &result, out found);
                if (status == CublasLt.StatusNotSupported)
                    found = 0;
                else
                    CublasLt.Check(status);
                // A returned entry whose state is not success is a plan cuBLASLt cannot run.
                if (found == 0 || result.State != CublasLt.StatusSuccess)
                    throw new NotSupportedException(NoAlgorithmMessage(key));

                CublasLt.Check(CublasLt.cublasLtMatmulPreferenceDestroy(preference));
                preference = 0;
                return new MatmulPlan(desc, layoutA, layoutB, layoutC, result.Algo);
            }
            catch
            {
                // Free what was made; the error being thrown matters more than a failure here.
                if (preference != 0) _ = CublasLt.cublasLtMatmulPreferenceDestroy(preference);
                if (layoutC != 0) _ = CublasLt.cublasLtMatrixLayoutDestroy(layoutC);
                if (layoutB != 0) _ = CublasLt.cublasLtMatrixLayoutDestroy(layoutB);
                if (layoutA != 0) _ = CublasLt.cublasLtMatrixLayoutDestroy(layoutA);
                if (desc != 0) _ = CublasLt.cublasLtMatmulDescDestroy(desc);
                throw;
            }
        }

        public void Destroy()
        {
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutDestroy(LayoutC));
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutDestroy(LayoutB));
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutDestroy(LayoutA));
            CublasLt.Check(CublasLt.cublasLtMatmulDescDestroy(Desc));
        }

        internal static string NoAlgorithmMessage(MatmulPlanKey key)
            => $"cuBLASLt found no algorithm for this matrix multiply: M={key.M}, N={key.N}, K={key.K}, " +
               $"A {key.TypeA}{(key.TransA ? "ᵀ" : "")} (ld {key.Lda}, stride {key.StrideA}, {key.AlignmentA}-byte aligned), " +
               $"B {key.TypeB}{(key.TransB ? "ᵀ" : "")} (ld {key.Ldb}, stride {key.StrideB}, {key.AlignmentB}-byte aligned), " +
               $"C {key.TypeC} (ld {key.Ldc}, stride {key.StrideC}, {key.AlignmentC}-byte aligned), batch {key.BatchCount}" +
               (key.HasBias ? ", BIAS epilogue" : "") + $", fp32 compute, {WorkspaceBytes >> 20} MiB workspace. " +
               "Fix: align operands and batch strides to 16 bytes, or use Float32 for C.";

        private static nint Layout(GpuDataType type, long rows, long cols, long ld, long stride, int batchCount)
        {
            CublasLt.Check(CublasLt.cublasLtMatrixLayoutCreate(out nint layout, DataType(type), (ulong)rows, (ulong)cols, ld));
            try
            {
                if (batchCount > 1)
                {
                    CublasLt.SetLayoutAttribute(layout, CublasLt.MatrixLayoutBatchCount, batchCount);
                    CublasLt.SetLayoutAttribute(layout, CublasLt.MatrixLayoutStridedBatchOffset, stride);
                }
            }
            catch
            {
                _ = CublasLt.cublasLtMatrixLayoutDestroy(layout);
                throw;
            }

            return layout;
        }

        private static int DataType(GpuDataType type) => type switch
        {
            GpuDataType.Float32 => CublasLt.CudaR32F,
            GpuDataType.BFloat16 => CublasLt.CudaR16BF,
            GpuDataType.Float16 => CublasLt.CudaR16F,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "cuBLASLt matmul operands are Float32, BFloat16 or Float16."),
        };
    }
}

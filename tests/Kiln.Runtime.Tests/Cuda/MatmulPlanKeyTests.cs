using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Tests.Cuda;

/// <summary>The cuBLASLt plan cache key, the checks made before cuBLASLt is called, and the binding's struct layout. No GPU needed.</summary>
public sealed class MatmulPlanKeyTests
{
    private static readonly LtMatmul Base = new(
        TransA: true, TransB: false, M: 64, N: 48, K: 32,
        A: 0x7000_0000, TypeA: GpuDataType.BFloat16, Lda: 32, StrideA: 64 * 32,
        B: 0x7100_0000, TypeB: GpuDataType.BFloat16, Ldb: 32, StrideB: 0,
        C: 0x7200_0000, TypeC: GpuDataType.Float32, Ldc: 64, StrideC: 64 * 48,
        BatchCount: 4, Alpha: 1f, Beta: 0f);

    [Fact]
    public void Problems_that_differ_only_in_pointers_of_equal_alignment_and_in_scalars_share_a_plan()
    {
        var other = Base with { A = 0x9000_0000, B = 0x9100_0000, C = 0x9200_0000, Alpha = 2f, Beta = 1f };

        Assert.Equal(MatmulPlanKey.For(Base), MatmulPlanKey.For(other));
        Assert.Equal(MatmulPlanKey.For(Base).GetHashCode(), MatmulPlanKey.For(other).GetHashCode());
    }

    public static TheoryData<string> Changes() => ["TransA", "TransB", "M", "N", "K", "TypeA", "TypeC", "Lda", "Ldb", "Ldc", "StrideA", "StrideB", "StrideC", "BatchCount", "Bias", "AlignmentA", "AlignmentC", "AlignmentBias"];

    [Theory]
    [MemberData(nameof(Changes))]
    public void Anything_that_changes_the_plan_changes_the_key(string change)
    {
        var withBias = Base with { Bias = 0x7300_0000 };
        var (before, after) = change switch
        {
            "TransA" => (Base, Base with { TransA = false }),
            "TransB" => (Base, Base with { TransB = true }),
            "M" => (Base, Base with { M = 65 }),
            "N" => (Base, Base with { N = 49 }),
            "K" => (Base, Base with { K = 33 }),
            "TypeA" => (Base, Base with { TypeA = GpuDataType.Float16, TypeB = GpuDataType.Float16 }),
            "TypeC" => (Base, Base with { TypeC = GpuDataType.BFloat16 }),
            "Lda" => (Base, Base with { Lda = 40 }),
            "Ldb" => (Base, Base with { Ldb = 40 }),
            "Ldc" => (Base, Base with { Ldc = 72 }),
            "StrideA" => (Base, Base with { StrideA = 64 * 40 }),
            "StrideB" => (Base, Base with { StrideB = 32 * 48 }),
            "StrideC" => (Base, Base with { StrideC = 64 * 56 }),
            "BatchCount" => (Base, Base with { BatchCount = 5 }),
            "Bias" => (Base, withBias),
            "AlignmentA" => (Base, Base with { A = 0x7000_0010 }),
            "AlignmentC" => (Base, Base with { C = 0x7200_0020 }),
            _ => (withBias, withBias with { Bias = 0x7300_0010 }),
        };

        Assert.NotEqual(MatmulPlanKey.For(before), MatmulPlanKey.For(after));
    }

    [Theory]
    [InlineData(0x1000UL, 0L, GpuDataType.Float32, 4, 256)]      // capped at cuBLASLt's largest assumption
    [InlineData(0x1010UL, 0L, GpuDataType.Float32, 4, 16)]       // the pointer's own alignment
    [InlineData(0x1000UL, 8L, GpuDataType.Float32, 4, 32)]       // batch i starts 32·i bytes in
    [InlineData(0x1000UL, 12L, GpuDataType.BFloat16, 4, 8)]      // 24-byte stride: every other batch is only 8-byte aligned
    [InlineData(0x1000UL, 12L, GpuDataType.BFloat16, 1, 256)]    // a single batch never steps by the stride
    public void Alignment_covers_every_batch(ulong pointer, long stride, GpuDataType type, int batch, int expected)
        => Assert.Equal(expected, MatmulPlanKey.Alignment(pointer, stride, type, batch));

    [Theory]
    [InlineData("A", 2)]
    [InlineData("B", 2)]
    [InlineData("C", 4)]
    [InlineData("bias", 16)]
    public void A_pointer_off_its_required_boundary_is_rejected_with_the_operand_and_the_fix(string operand, int required)
    {
        // A, B and C need their element's alignment (bf16 A/B, fp32 C here); the bias vector needs 16 bytes.
        var g = operand switch
        {
            "A" => Base with { A = Base.A + 1 },
            "B" => Base with { B = Base.B + 1 },
            "C" => Base with { C = Base.C + 2 },
            _ => Base with { Bias = 0x7300_0008 },
        };

        var error = Assert.Throws<ArgumentException>(() => MatmulPlanKey.Validate(g));

        Assert.Contains($"Matmul operand {operand} at 0x", error.Message, StringComparison.Ordinal);
        Assert.Contains($"is not {required}-byte aligned", error.Message, StringComparison.Ordinal);
        Assert.Contains("Fix:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Operands_off_a_16_byte_boundary_are_accepted_and_their_alignment_goes_into_the_plan()
    {
        // A weight after an odd-sized tensor in the parameter slab: legal, with a plan of its own.
        var g = Base with { A = Base.A + 4, C = Base.C + 8 };
        MatmulPlanKey.Validate(g);
        var key = MatmulPlanKey.For(g);
        Assert.Equal(4, key.AlignmentA);
        Assert.Equal(8, key.AlignmentC);
        Assert.NotEqual(MatmulPlanKey.For(Base), key);
    }

    [Fact]
    public void Shapes_types_and_leading_dimensions_cuBLASLt_would_reject_are_caught_first()
    {
        MatmulPlanKey.Validate(Base); // the base case is valid
        Assert.Contains("same type", Assert.Throws<ArgumentException>(() => MatmulPlanKey.Validate(Base with { TypeB = GpuDataType.Float32 })).Message, StringComparison.Ordinal);
        Assert.Contains("must be BFloat16 or Float32", Assert.Throws<ArgumentException>(() => MatmulPlanKey.Validate(Base with { TypeC = GpuDataType.Float16 })).Message, StringComparison.Ordinal);
        Assert.Contains("leading dimension 31 is less than its 32 stored rows", Assert.Throws<ArgumentException>(() => MatmulPlanKey.Validate(Base with { Lda = 31 })).Message, StringComparison.Ordinal);
        Assert.Contains("positive sizes", Assert.Throws<ArgumentException>(() => MatmulPlanKey.Validate(Base with { K = 0 })).Message, StringComparison.Ordinal);
        Assert.Contains("batch stride -1", Assert.Throws<ArgumentException>(() => MatmulPlanKey.Validate(Base with { StrideC = -1 })).Message, StringComparison.Ordinal);
        Assert.Contains("Int32", Assert.Throws<ArgumentException>(() => MatmulPlanKey.Validate(Base with { TypeA = GpuDataType.Int32, TypeB = GpuDataType.Int32 })).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_heuristic_result_struct_matches_cublasLt_h()
    {
        // cublasLtMatmulAlgo_t is uint64_t data[8]; then size_t workspaceSize, cublasStatus_t state, float wavesCount, int reserved[4].
        Assert.Equal(64, Unsafe.SizeOf<CublasLt.MatmulAlgo>());
        Assert.Equal(64, (int)Marshal.OffsetOf<CublasLt.HeuristicResult>(nameof(CublasLt.HeuristicResult.WorkspaceSize)));
        Assert.Equal(72, (int)Marshal.OffsetOf<CublasLt.HeuristicResult>(nameof(CublasLt.HeuristicResult.State)));
        Assert.Equal(76, (int)Marshal.OffsetOf<CublasLt.HeuristicResult>(nameof(CublasLt.HeuristicResult.WavesCount)));
        Assert.Equal(80, (int)Marshal.OffsetOf<CublasLt.HeuristicResult>("Reserved"));
        Assert.Equal(96, Unsafe.SizeOf<CublasLt.HeuristicResult>());
    }

    [Fact]
    public void A_cuBLASLt_failure_names_the_API_the_status_and_the_call_site()
    {
        // Status names come from a table when cuBLASLt itself is absent (as here without a GPU stack).
        var error = Assert.Throws<KilnCudaException>(() => CublasLt.Check(CublasLt.StatusNotSupported, "CublasLt.cublasLtMatmul(handle, desc)"));

        Assert.Equal("cublasLtMatmul", error.Api);
        Assert.Equal("CUBLAS_STATUS_NOT_SUPPORTED", error.StatusName);
        Assert.Contains("[called from MatmulPlanKeyTests.cs:", error.Message, StringComparison.Ordinal);
        Assert.Equal("CUBLAS_STATUS_INVALID_VALUE", CublasLt.KnownStatusName(7));
    }

    [Fact]
    public void The_bindings_use_the_logical_names_the_resolver_maps_and_the_device_name_reads_like_the_interface_says()
    {
        Assert.Equal(CublasLt.Library, NativeLibraries.LogicalName(CudaLibrary.CublasLt));
        Assert.True(NativeLibraries.TryParseLogicalName(CublasLt.Library, out var library));
        Assert.Equal(CudaLibrary.CublasLt, library);
        Assert.Equal("cuda:0 NVIDIA H200 (sm_90, 139 GiB)", CudaGpu.FormatName(0, "NVIDIA H200", 90, 139L * 1024 * 1024 * 1024 + 300L * 1024 * 1024));
    }
}

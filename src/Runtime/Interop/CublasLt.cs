using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Runtime.Interop;

/// <summary>
/// Source-generated bindings to cuBLASLt under the logical name <c>cublasLt</c>, which <see cref="NativeLibraries"/>
/// resolves to <c>libcublasLt.so.13/.12/.11</c>. Every function returns a <c>cublasStatus_t</c> (0 = success) and is
/// called through <see cref="Check"/>; <see cref="Cuda.CudaGpu"/> is the only user.
/// </summary>
/// <remarks>
/// Handles (<c>cublasLtHandle_t</c>, <c>cublasLtMatmulDesc_t</c>, <c>cublasLtMatrixLayout_t</c>,
/// <c>cublasLtMatmulPreference_t</c>) are opaque pointers (<see cref="nint"/>); device pointers are <see cref="ulong"/>.
/// Enumeration values are those of <c>cublasLt.h</c>, <c>cublas_api.h</c> and <c>library_types.h</c> (CUDA 11.8–13).
/// </remarks>
internal static unsafe partial class CublasLt
{
    /// <summary>The logical library name (see <see cref="NativeLibraries.LogicalName"/>).</summary>
    internal const string Library = "cublasLt";

    internal const int StatusSuccess = 0;
    internal const int StatusNotSupported = 15;

    // cudaDataType_t (library_types.h).
    internal const int CudaR32F = 0;
    internal const int CudaR16F = 2;
    internal const int CudaR16BF = 14;

    // cublasComputeType_t: fp32 accumulation.
    internal const int ComputeType32F = 68;

    // cublasOperation_t.
    internal const int OperationN = 0;
    internal const int OperationT = 1;

    // cublasLtMatmulDescAttributes_t.
    internal const int MatmulDescTransA = 3;        // int32 (cublasOperation_t)
    internal const int MatmulDescTransB = 4;        // int32 (cublasOperation_t)
    internal const int MatmulDescEpilogue = 7;      // uint32 (cublasLtEpilogue_t)
    internal const int MatmulDescBiasPointer = 8;   // void* (device)
    internal const int MatmulDescBiasDataType = 26; // int32 (cudaDataType_t)

    // cublasLtEpilogue_t.
    internal const uint EpilogueDefault = 1;
    internal const uint EpilogueBias = 4;

    // cublasLtMatrixLayoutAttribute_t.
    internal const int MatrixLayoutBatchCount = 5;         // int32
    internal const int MatrixLayoutStridedBatchOffset = 6; // int64, in elements

    // cublasLtMatmulPreferenceAttributes_t.
    internal const int PreferenceMaxWorkspaceBytes = 1; // uint64
    internal const int PreferenceMinAlignmentABytes = 5; // uint32; the default (256) assumes every operand is 256-byte aligned
    internal const int PreferenceMinAlignmentBBytes = 6;
    internal const int PreferenceMinAlignmentCBytes = 7;
    internal const int PreferenceMinAlignmentDBytes = 8;

    static CublasLt() => NativeLibraries.InstallResolver();

    /// <summary>Loads cuBLASLt through the shared resolver, so that a missing library is reported with the search list.</summary>
    /// <exception cref="KilnNativeLibraryException">No libcublasLt.so.13/.12/.11 was found.</exception>
    internal static void EnsureLoaded() => NativeLibraries.Shared.Load(CudaLibrary.CublasLt);

    [LibraryImport(Library)]
    internal static partial int cublasLtCreate(out nint handle);

    [LibraryImport(Library)]
    internal static partial int cublasLtDestroy(nint handle);

    [LibraryImport(Library)]
    internal static partial nuint cublasLtGetVersion();

    [LibraryImport(Library)]
    internal static partial int cublasLtMatmulDescCreate(out nint desc, int computeType, int scaleType);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatmulDescSetAttribute(nint desc, int attribute, void* value, nuint bytes);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatmulDescDestroy(nint desc);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatrixLayoutCreate(out nint layout, int type, ulong rows, ulong cols, long ld);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatrixLayoutSetAttribute(nint layout, int attribute, void* value, nuint bytes);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatrixLayoutDestroy(nint layout);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatmulPreferenceCreate(out nint preference);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatmulPreferenceSetAttribute(nint preference, int attribute, void* value, nuint bytes);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatmulPreferenceDestroy(nint preference);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatmulAlgoGetHeuristic(
        nint handle, nint desc, nint layoutA, nint layoutB, nint layoutC, nint layoutD,
        nint preference, int requestedAlgoCount, HeuristicResult* results, out int returnedAlgoCount);

    [LibraryImport(Library)]
    internal static partial int cublasLtMatmul(
        nint handle, nint desc,
        void* alpha, ulong a, nint layoutA, ulong b, nint layoutB,
        void* beta, ulong c, nint layoutC, ulong d, nint layoutD,
        MatmulAlgo* algo, ulong workspace, nuint workspaceBytes, nint stream);

    [LibraryImport(Library)]
    internal static partial nint cublasLtGetStatusName(int status);

    [LibraryImport(Library)]
    internal static partial nint cublasLtGetStatusString(int status);

    /// <summary><c>cublasLtMatmulAlgo_t</c>: an opaque plan of 8 <c>uint64_t</c>, copied by value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MatmulAlgo
    {
        internal fixed ulong Data[8];
    }

    /// <summary><c>cublasLtMatmulHeuristicResult_t</c>: algo, size_t workspaceSize, cublasStatus_t state, float wavesCount, int reserved[4] (96 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct HeuristicResult
    {
        internal MatmulAlgo Algo;
        internal nuint WorkspaceSize;
        internal int State;
        internal float WavesCount;
        internal fixed int Reserved[4];
    }

    /// <summary>Sets a fixed-size attribute of a matmul descriptor.</summary>
    internal static void SetDescAttribute<T>(nint desc, int attribute, T value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
        where T : unmanaged
        => Check(cublasLtMatmulDescSetAttribute(desc, attribute, &value, (nuint)sizeof(T)), "cublasLtMatmulDescSetAttribute", file, line);

    /// <summary>Sets a fixed-size attribute of a matrix layout.</summary>
    internal static void SetLayoutAttribute<T>(nint layout, int attribute, T value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
        where T : unmanaged
        => Check(cublasLtMatrixLayoutSetAttribute(layout, attribute, &value, (nuint)sizeof(T)), "cublasLtMatrixLayoutSetAttribute", file, line);

    /// <summary>Sets a fixed-size attribute of a matmul preference.</summary>
    internal static void SetPreferenceAttribute<T>(nint preference, int attribute, T value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
        where T : unmanaged
        => Check(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &value, (nuint)sizeof(T)), "cublasLtMatmulPreferenceSetAttribute", file, line);

    /// <summary>
    /// The one checked wrapper for cuBLASLt calls: returns on <c>CUBLAS_STATUS_SUCCESS</c>, otherwise throws
    /// <see cref="KilnCudaException"/> with the API (from the call expression), the status name and description, and
    /// the Kiln call site.
    /// </summary>
    internal static void Check(
        int status,
        [CallerArgumentExpression(nameof(status))] string call = "",
        [CallerFilePath] string file = "",
        [CallerLineNumber] int line = 0)
    {
        if (status == StatusSuccess)
            return;
        throw new KilnCudaException(Nvrtc.ApiName(call), status, StatusName(status), StatusDescription(status), file, line, Hint(status));
    }

    /// <summary>cuBLASLt's name for a status (<c>CUBLAS_STATUS_NOT_SUPPORTED</c>); a built-in table when the library is too old to say.</summary>
    internal static string StatusName(int status)
    {
        try
        {
            nint text = cublasLtGetStatusName(status);
            if (text != 0 && Marshal.PtrToStringUTF8(text) is { Length: > 0 } name)
                return name;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // cublasLtGetStatusName arrived in CUDA 11.4; reporting an error must not raise a different one.
        }

        return KnownStatusName(status);
    }

    /// <summary>cuBLASLt's description of a status, or empty.</summary>
    internal static string StatusDescription(int status)
    {
        try
        {
            nint text = cublasLtGetStatusString(status);
            if (text != 0)
                return Marshal.PtrToStringUTF8(text) ?? string.Empty;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // As above.
        }

        return string.Empty;
    }

    /// <summary>The <c>cublasStatus_t</c> names from <c>cublas_api.h</c>.</summary>
    internal static string KnownStatusName(int status) => status switch
    {
        0 => "CUBLAS_STATUS_SUCCESS",
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => "cuBLAS status " + status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string? Hint(int status) => status switch
    {
        3 => "cuBLASLt could not allocate device memory: the GPU is out of memory.",
        7 => "cuBLASLt rejected a parameter: check the operand shapes, leading dimensions, batch strides and 16-byte alignment of the pointers.",
        15 => "cuBLASLt does not support this combination of types, layouts or epilogue on this GPU (Kiln uses fp32 accumulation with A and B of the same type and C fp32 or that type).",
        _ => null,
    };
}

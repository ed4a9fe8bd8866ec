using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Kiln.Runtime.Interop;

/// <summary>
/// Source-generated bindings to the CUDA driver API under the logical name <c>cuda</c>, which
/// <see cref="NativeLibraries"/> resolves to <c>libcuda.so.1</c> (<c>nvcuda.dll</c> on Windows). The
/// versioned entry points (<c>_v2</c>) are the ones the driver exports for 64-bit sizes and pointers.
/// Call every function through <see cref="Check"/>; use <see cref="CudaDevice"/> rather than these directly.
/// </summary>
/// <remarks>
/// Handles (<c>CUcontext</c>, <c>CUmodule</c>, <c>CUfunction</c>, <c>CUstream</c>, <c>CUevent</c>) are
/// <see cref="nint"/>; device pointers (<c>CUdeviceptr</c>) are <see cref="ulong"/>; <c>CUdevice</c> is an
/// <see cref="int"/>. Every function returns a <c>CUresult</c> (0 = success).
/// </remarks>
internal static unsafe partial class CudaDriver
{
    /// <summary>The logical library name (see <see cref="NativeLibraries.LogicalName"/>).</summary>
    internal const string Library = "cuda";

    internal const int Success = 0;
    internal const int ErrorNoDevice = 100;
    internal const int ErrorInvalidImage = 200;
    internal const int ErrorNoBinaryForGpu = 209;
    internal const int ErrorInvalidPtx = 218;
    internal const int ErrorUnsupportedPtxVersion = 222;
    internal const int ErrorNotFound = 500;

    // CUdevice_attribute values (cuda.h).
    internal const int AttributeMaxThreadsPerBlock = 1;
    internal const int AttributeWarpSize = 10;
    internal const int AttributeMultiprocessorCount = 16;
    internal const int AttributeL2CacheSize = 38;
    internal const int AttributeComputeCapabilityMajor = 75;
    internal const int AttributeComputeCapabilityMinor = 76;
    internal const int AttributeMaxSharedMemoryPerMultiprocessor = 81;
    internal const int AttributeMaxSharedMemoryPerBlockOptin = 97;

    // CUfunction_attribute: the dynamic shared memory a kernel may ask for (needed above 48 KiB).
    internal const int FunctionAttributeMaxDynamicSharedSizeBytes = 8;

    internal const uint StreamNonBlocking = 0x1;
    internal const uint EventDisableTiming = 0x2;

    static CudaDriver() => NativeLibraries.InstallResolver();

    /// <summary>Loads the driver through the shared resolver, so that a missing driver is reported with the search list.</summary>
    /// <exception cref="KilnNativeLibraryException">libcuda.so.1 was not found.</exception>
    internal static void EnsureLoaded() => NativeLibraries.Shared.Load(CudaLibrary.Driver);

    [LibraryImport(Library)]
    internal static partial int cuInit(uint flags);

    [LibraryImport(Library)]
    internal static partial int cuDriverGetVersion(out int version);

    [LibraryImport(Library)]
    internal static partial int cuDeviceGetCount(out int count);

    [LibraryImport(Library)]
    internal static partial int cuDeviceGet(out int device, int ordinal);

    [LibraryImport(Library)]
    internal static partial int cuDeviceGetAttribute(out int value, int attribute, int device);

    [LibraryImport(Library)]
    internal static partial int cuDeviceGetName(byte* name, int length, int device);

    [LibraryImport(Library)]
    internal static partial int cuDeviceTotalMem_v2(out nuint bytes, int device);

    [LibraryImport(Library)]
    internal static partial int cuDevicePrimaryCtxRetain(out nint context, int device);

    [LibraryImport(Library)]
    internal static partial int cuDevicePrimaryCtxRelease_v2(int device);

    [LibraryImport(Library)]
    internal static partial int cuCtxSetCurrent(nint context);

    [LibraryImport(Library)]
    internal static partial int cuCtxSynchronize();

    [LibraryImport(Library)]
    internal static partial int cuMemAlloc_v2(out ulong pointer, nuint bytes);

    [LibraryImport(Library)]
    internal static partial int cuMemFree_v2(ulong pointer);

    [LibraryImport(Library)]
    internal static partial int cuMemGetInfo_v2(out nuint free, out nuint total);

    [LibraryImport(Library)]
    internal static partial int cuMemcpyHtoD_v2(ulong destination, void* source, nuint bytes);

    [LibraryImport(Library)]
    internal static partial int cuMemcpyDtoH_v2(void* destination, ulong source, nuint bytes);

    [LibraryImport(Library)]
    internal static partial int cuMemcpyHtoDAsync_v2(ulong destination, void* source, nuint bytes, nint stream);

    [LibraryImport(Library)]
    internal static partial int cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(Library)]
    internal static partial int cuMemsetD8_v2(ulong destination, byte value, nuint count);

    [LibraryImport(Library)]
    internal static partial int cuMemcpyDtoDAsync_v2(ulong destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(Library)]
    internal static partial int cuMemsetD8Async(ulong destination, byte value, nuint count, nint stream);

    [LibraryImport(Library)]
    internal static partial int cuModuleLoadData(out nint module, void* image);

    [LibraryImport(Library)]
    internal static partial int cuModuleUnload(nint module);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int cuModuleGetFunction(out nint function, nint module, string name);

    [LibraryImport(Library)]
    internal static partial int cuLaunchKernel(
        nint function,
        uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, nint stream, void** kernelParameters, void** extra);

    [LibraryImport(Library)]
    internal static partial int cuFuncSetAttribute(nint function, int attribute, int value);

    [LibraryImport(Library)]
    internal static partial int cuStreamCreate(out nint stream, uint flags);

    [LibraryImport(Library)]
    internal static partial int cuStreamSynchronize(nint stream);

    [LibraryImport(Library)]
    internal static partial int cuStreamDestroy_v2(nint stream);

    [LibraryImport(Library)]
    internal static partial int cuEventCreate(out nint evt, uint flags);

    [LibraryImport(Library)]
    internal static partial int cuEventRecord(nint evt, nint stream);

    [LibraryImport(Library)]
    internal static partial int cuEventSynchronize(nint evt);

    [LibraryImport(Library)]
    internal static partial int cuEventElapsedTime(out float milliseconds, nint start, nint end);

    [LibraryImport(Library)]
    internal static partial int cuEventDestroy_v2(nint evt);

    [LibraryImport(Library)]
    internal static partial int cuGetErrorName(int error, out nint name);

    [LibraryImport(Library)]
    internal static partial int cuGetErrorString(int error, out nint description);

    /// <summary>
    /// The one checked wrapper for driver calls: returns when <paramref name="result"/> is <c>CUDA_SUCCESS</c>,
    /// otherwise throws <see cref="KilnCudaException"/> with the API (taken from the call expression), the
    /// status name and description from the driver, and the Kiln call site.
    /// </summary>
    internal static void Check(
        int result,
        [CallerArgumentExpression(nameof(result))] string call = "",
        [CallerFilePath] string file = "",
        [CallerLineNumber] int line = 0)
    {
        if (result == Success)
            return;
        throw new KilnCudaException(Nvrtc.ApiName(call), result, ErrorName(result), ErrorDescription(result), file, line, Hint(result));
    }

    /// <summary>The driver's name for a status (<c>CUDA_ERROR_OUT_OF_MEMORY</c>), or a number when the driver does not know it.</summary>
    internal static string ErrorName(int result)
    {
        try
        {
            if (cuGetErrorName(result, out nint text) == Success && text != 0)
                return Marshal.PtrToStringUTF8(text) ?? Unknown(result);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Reporting an error must not raise a different one.
        }

        return Unknown(result);
    }

    /// <summary>The driver's description of a status.</summary>
    internal static string ErrorDescription(int result)
    {
        try
        {
            if (cuGetErrorString(result, out nint text) == Success && text != 0)
                return Marshal.PtrToStringUTF8(text) ?? string.Empty;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // As above.
        }

        return string.Empty;
    }

    private static string Unknown(int result) => "CUDA error " + result.ToString(System.Globalization.CultureInfo.InvariantCulture);

    // Statuses whose fix is not obvious from the driver's description.
    private static string? Hint(int result) => result switch
    {
        2 => "The GPU is out of memory: lower Batch or Sequence, enable recompute, or shard over more devices.",
        209 => "The module holds no code for this GPU: compile a CUBIN for the device's sm_XX, or PTX for an architecture it can JIT.",
        222 => "The PTX was produced by an NVRTC newer than this driver: compile a CUBIN instead (or update the NVIDIA driver).",
        _ => null,
    };
}

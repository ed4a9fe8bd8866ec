using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Threading;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Cuda;

/// <summary>
/// A real NVIDIA GPU behind <see cref="IGpu"/>: the CUDA driver's primary context, one non-blocking stream for all
/// work, cuBLASLt for matrix multiplies and <see cref="KernelLocator"/> for module code. Every public member makes
/// the context current on the calling thread first (contexts are per thread).
/// </summary>
/// <remarks>
/// <see cref="CopyToDevice"/> waits for its copy (the host span may be reused on return, even if it is pinned), so
/// it also waits for the work queued before it; <see cref="Free"/> waits for the stream before freeing.
/// Not thread-safe beyond that: one program drives one device from one thread at a time.
/// </remarks>
public sealed partial class CudaGpu : IGpu
{
    private readonly CudaDevice _device;
    private readonly CudaStream _stream;
    private readonly KernelLocator _locator;
    private readonly List<CudaGpuModule> _modules = new();
    private int _disposed;

    private CudaGpu(CudaDevice device, CudaStream stream, nint cublasLt, KernelLocator locator)
    {
        _device = device;
        _stream = stream;
        _cublasLt = cublasLt;
        _locator = locator;
        Name = FormatName(device.Ordinal, device.Name, device.Architecture, device.TotalMemoryBytes);
    }

    /// <summary>E.g. <c>cuda:0 NVIDIA H200 (sm_90, 140 GiB)</c>: the memory in whole GiB, rounded to nearest.</summary>
    internal static string FormatName(int ordinal, string product, int architecture, long totalBytes)
        => string.Create(CultureInfo.InvariantCulture, $"cuda:{ordinal} {product} (sm_{architecture}, {Math.Round(totalBytes / (1024.0 * 1024 * 1024)):0} GiB)");

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public long TotalMemoryBytes => _device.TotalMemoryBytes;

    /// <summary>The device's architecture, compute capability × 10 (90 for sm_90).</summary>
    public int Architecture => _device.Architecture;

    /// <summary>The driver device under this GPU.</summary>
    public CudaDevice Device => _device;

    /// <summary>Opens GPU <paramref name="ordinal"/> with kernels found in the default bundle and cache directories.</summary>
    /// <exception cref="InvalidOperationException">There is no such GPU, or no driver; the message says why and what to do.</exception>
    /// <exception cref="KilnNativeLibraryException">The GPU is there but cuBLASLt is not installed.</exception>
    public static CudaGpu Open(int ordinal)
    {
        if (TryOpen(ordinal, out var gpu, out string reason))
            return gpu;
        throw new InvalidOperationException(reason);
    }

    /// <summary>
    /// Opens GPU <paramref name="ordinal"/>, or says why not. Never throws for a missing driver or device, and reports
    /// a missing cuBLASLt as a reason too.
    /// </summary>
    public static bool TryOpen(int ordinal, [NotNullWhen(true)] out CudaGpu? gpu, out string reason)
        => TryOpen(ordinal, null, out gpu, out reason, out _);

    /// <summary>As <see cref="TryOpen(int, out CudaGpu?, out string)"/>, with the locator settings and whether the failure was a missing driver or device.</summary>
    internal static bool TryOpen(int ordinal, Func<int, KernelLocator>? locatorFor, [NotNullWhen(true)] out CudaGpu? gpu, out string reason, out bool noDevice)
    {
        gpu = null;
        noDevice = false;
        if (!CudaDevice.TryOpen(ordinal, out var device, out reason))
        {
            // A missing driver, no GPU or an ordinal out of range: "auto" falls back to the CPU on these.
            noDevice = true;
            return false;
        }

        CudaStream? stream = null;
        nint handle = 0;
        try
        {
            stream = device.CreateStream(nonBlocking: true);
            if (!NativeLibraries.Shared.TryLoad(CudaLibrary.CublasLt, out _, out var missing))
            {
                reason = $"CUDA device {ordinal} ({device.Name}) is present, but cuBLASLt, which Kiln uses for matrix multiplies, is not: {missing!.Message}";
                stream.Dispose();
                device.Dispose();
                return false;
            }

            device.MakeCurrent();
            CublasLt.Check(CublasLt.cublasLtCreate(out handle));
            var locator = locatorFor?.Invoke(device.Architecture)
                ?? new KernelLocator(device.Architecture, KernelLocator.DefaultBundleDirectory, KernelLocator.DefaultCacheDirectory());
            gpu = new CudaGpu(device, stream, handle, locator);
            reason = string.Empty;
            return true;
        }
        catch (Exception e) when (e is KilnCudaException or EntryPointNotFoundException or DllNotFoundException)
        {
            if (handle != 0)
                _ = CublasLt.cublasLtDestroy(handle);
            stream?.Dispose();
            device.Dispose();
            reason = $"CUDA device {ordinal} could not be set up: {e.Message}";
            return false;
        }
    }

    /// <inheritdoc />
    public ulong Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemAlloc_v2(out ulong pointer, (nuint)bytes));
        return pointer;
    }

    /// <inheritdoc />
    public void Free(ulong pointer)
    {
        if (pointer == 0)
            return;
        MakeCurrent();
        // Work queued on the stream may still read or write the memory.
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream.Handle));
        CudaDriver.Check(CudaDriver.cuMemFree_v2(pointer));
    }

    /// <inheritdoc />
    public unsafe void CopyToDevice(ulong destination, ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty)
            return;
        MakeCurrent();
        // Queued on the stream (so it is ordered after earlier kernels), then waited for: the caller may reuse the span.
        fixed (byte* p = source)
        {
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync_v2(destination, p, (nuint)source.Length, _stream.Handle));
            CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream.Handle));
        }
    }

    /// <inheritdoc />
    public unsafe void CopyToHost(Span<byte> destination, ulong source)
    {
        if (destination.IsEmpty)
            return;
        MakeCurrent();
        fixed (byte* p = destination)
        {
            CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync_v2(p, source, (nuint)destination.Length, _stream.Handle));
            CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream.Handle));
        }
    }

    /// <inheritdoc />
    public void CopyDeviceToDevice(ulong destination, ulong source, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0)
            return;
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemcpyDtoDAsync_v2(destination, source, (nuint)bytes, _stream.Handle));
    }

    /// <inheritdoc />
    public void Fill(ulong destination, byte value, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0)
            return;
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemsetD8Async(destination, value, (nuint)bytes, _stream.Handle));
    }

    /// <summary>
    /// Loads the module of <paramref name="source"/>: a bundled or cached CUBIN or PTX, else an NVRTC compile (see
    /// <see cref="KernelLocator"/>). The returned module's <see cref="CudaGpuModule.LoadedFrom"/> says which.
    /// </summary>
    public IGpuModule LoadModule(GpuKernelSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        MakeCurrent();
        var located = _locator.Load<CudaModule>(source, TryLoadImage);
        var module = new CudaGpuModule(this, located.Module, located.Image, located.Rejected, located.Warnings);
        _modules.Add(module);
        return module;
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream.Handle));
    }

    /// <summary>Waits for the stream, then frees the cuBLASLt plans and workspace, the modules, the stream and the handle, and releases the context.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _device.MakeCurrent();
        // Best effort past a sticky kernel fault: free what can be freed, then report the first error.
        Exception? first = null;
        void Try(Action action)
        {
            try { action(); }
            catch (Exception e) when (e is KilnCudaException) { first ??= e; }
        }

        Try(() => CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream.Handle)));
        Try(DisposeMatmul);
        foreach (var module in _modules)
            Try(module.Unload);
        _modules.Clear();
        Try(_stream.Dispose);
        Try(_device.Dispose);
        if (first is not null)
            throw first;
    }

    /// <summary>The device name.</summary>
    public override string ToString() => Name;

    internal CudaStream Stream => _stream;

    internal void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _device.MakeCurrent();
    }

    private bool TryLoadImage(KernelImage image, out CudaModule? module, out string reason)
    {
        try
        {
            module = _device.LoadModule(image.Image);
            reason = string.Empty;
            return true;
        }
        catch (KilnCudaException e) when (IsUnusableImage(e.Status))
        {
            module = null;
            reason = e.StatusName + (string.IsNullOrEmpty(e.StatusDescription) ? string.Empty : " (" + e.StatusDescription + ")");
            return false;
        }
    }

    /// <summary>Load failures that mean "this image is not for this device or driver", after which the next candidate is tried.</summary>
    internal static bool IsUnusableImage(int status) => status is CudaDriver.ErrorInvalidImage or CudaDriver.ErrorNoBinaryForGpu
        or CudaDriver.ErrorInvalidPtx or CudaDriver.ErrorUnsupportedPtxVersion;
}

/// <summary>The kernels of one module loaded on a <see cref="CudaGpu"/>, and where its code came from.</summary>
public sealed class CudaGpuModule : IGpuModule
{
    private const int DefaultSharedMemoryLimit = 48 * 1024;

    private readonly CudaGpu _gpu;
    private readonly CudaModule _module;
    private readonly Dictionary<string, CudaGpuKernel> _kernels = new(StringComparer.Ordinal);
    private int _disposed;

    internal CudaGpuModule(CudaGpu gpu, CudaModule module, KernelImage image, IReadOnlyList<string> rejected, IReadOnlyList<string> warnings)
    {
        _gpu = gpu;
        _module = module;
        LoadedFrom = image.Origin;
        LoadedPath = image.Path;
        Description = image.Describe();
        Rejected = rejected;
        Warnings = warnings;
    }

    /// <summary>Where the module's code came from (bundle, cache or a fresh NVRTC compile; CUBIN or PTX).</summary>
    public KernelOrigin LoadedFrom { get; }

    /// <summary>The file the code was read from or cached in; null when a fresh compile could not be cached.</summary>
    public string? LoadedPath { get; }

    /// <summary>A one-line description for logs, e.g. <c>bundle CUBIN sm_90 (…/kiln-kernels/….cubin)</c>.</summary>
    public string Description { get; }

    /// <summary>Candidates tried before this one and why each was refused.</summary>
    public IReadOnlyList<string> Rejected { get; }

    /// <summary>Problems that did not stop the load (an unwritable cache, an unreadable file).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <inheritdoc />
    public IGpuKernel GetKernel(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_kernels.TryGetValue(name, out var kernel))
            return kernel;
        CudaFunction function;
        try
        {
            function = _module.GetFunction(name);
        }
        catch (KilnCudaException e) when (e.Status == CudaDriver.ErrorNotFound)
        {
            throw new KeyNotFoundException($"The CUDA module ({Description}) has no kernel named '{name}' (an extern \"C\" __global__ function).", e);
        }

        kernel = new CudaGpuKernel(_gpu, function, DefaultSharedMemoryLimit);
        _kernels.Add(name, kernel);
        return kernel;
    }

    /// <summary>Unloads the module (the GPU unloads any still loaded when it is disposed).</summary>
    public void Dispose() => Unload();

    internal void Unload()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _module.Dispose();
    }
}

/// <summary>One kernel of a <see cref="CudaGpuModule"/>, launched on the GPU's stream.</summary>
internal sealed class CudaGpuKernel : IGpuKernel
{
    private readonly CudaGpu _gpu;
    private readonly CudaFunction _function;
    private int _sharedMemoryLimit;

    internal CudaGpuKernel(CudaGpu gpu, CudaFunction function, int sharedMemoryLimit)
    {
        _gpu = gpu;
        _function = function;
        _sharedMemoryLimit = sharedMemoryLimit;
    }

    public string Name => _function.Name;

    public void Launch(uint gridBlocks, uint blockThreads, int sharedMemoryBytes, params ReadOnlySpan<KernelArgument> arguments)
    {
        ArgumentOutOfRangeException.ThrowIfZero(gridBlocks);
        ArgumentOutOfRangeException.ThrowIfZero(blockThreads);
        _gpu.MakeCurrent();
        // Above 48 KiB of dynamic shared memory a kernel must opt in first.
        if (sharedMemoryBytes > _sharedMemoryLimit)
        {
            _function.SetMaxDynamicSharedMemory(sharedMemoryBytes);
            _sharedMemoryLimit = sharedMemoryBytes;
        }

        _function.Launch(new Dim3(gridBlocks), new Dim3(blockThreads), sharedMemoryBytes, _gpu.Stream, arguments);
    }
}

using System;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading;

namespace Kiln.Runtime.Interop;

/// <summary>
/// One NVIDIA GPU, opened through the CUDA driver API with its primary context (the context the CUDA
/// runtime, PyTorch and cuBLAS share). Owns nothing but the context reference; buffers, modules, streams and
/// events it creates are disposed separately, before the device.
/// </summary>
/// <remarks>
/// A CUDA context is current per thread. Every method here makes the device's context current on the
/// calling thread first, so the objects can be used from thread-pool threads and async continuations.
/// </remarks>
public sealed class CudaDevice : IDisposable
{
    private static readonly object InitGate = new();
    private static int? _initResult;

    private readonly nint _context;
    private int _disposed;

    private CudaDevice(int ordinal, int handle, nint context)
    {
        Ordinal = ordinal;
        Handle = handle;
        _context = context;
        MakeCurrent();

        Name = ReadName(handle);
        ComputeCapabilityMajor = Attribute(CudaDriver.AttributeComputeCapabilityMajor);
        ComputeCapabilityMinor = Attribute(CudaDriver.AttributeComputeCapabilityMinor);
        MultiprocessorCount = Attribute(CudaDriver.AttributeMultiprocessorCount);
        MaxThreadsPerBlock = Attribute(CudaDriver.AttributeMaxThreadsPerBlock);
        WarpSize = Attribute(CudaDriver.AttributeWarpSize);
        L2CacheBytes = Attribute(CudaDriver.AttributeL2CacheSize);
        MaxSharedMemoryPerBlockOptIn = Attribute(CudaDriver.AttributeMaxSharedMemoryPerBlockOptin);
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem_v2(out nuint total, handle));
        TotalMemoryBytes = (long)total;
        CudaDriver.Check(CudaDriver.cuDriverGetVersion(out int driverVersion));
        DriverVersion = driverVersion;
    }

    /// <summary>The ordinal the device was opened with (0 = first GPU the driver lists).</summary>
    public int Ordinal { get; }

    /// <summary>The driver's device handle (<c>CUdevice</c>).</summary>
    public int Handle { get; }

    /// <summary>The product name, e.g. <c>NVIDIA H200</c>.</summary>
    public string Name { get; }

    /// <summary>The major compute capability (9 for Hopper).</summary>
    public int ComputeCapabilityMajor { get; }

    /// <summary>The minor compute capability.</summary>
    public int ComputeCapabilityMinor { get; }

    /// <summary>The architecture number NVRTC uses, compute capability × 10 (90 for <c>sm_90</c>).</summary>
    public int Architecture => ComputeCapabilityMajor * 10 + ComputeCapabilityMinor;

    /// <summary>Streaming multiprocessors on the device.</summary>
    public int MultiprocessorCount { get; }

    /// <summary>The most threads one block may have.</summary>
    public int MaxThreadsPerBlock { get; }

    /// <summary>Threads per warp (32 on every NVIDIA GPU so far).</summary>
    public int WarpSize { get; }

    /// <summary>L2 cache size in bytes.</summary>
    public int L2CacheBytes { get; }

    /// <summary>The most shared memory a block may use after opting in with <see cref="CudaFunction.SetMaxDynamicSharedMemory"/>.</summary>
    public int MaxSharedMemoryPerBlockOptIn { get; }

    /// <summary>Total device memory in bytes.</summary>
    public long TotalMemoryBytes { get; }

    /// <summary>The CUDA version the driver supports, as the driver reports it (e.g. 13000 for 13.0).</summary>
    public int DriverVersion { get; }

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Opens GPU <paramref name="ordinal"/>, or explains why not. Never throws for a missing driver or device:
    /// on a machine without an NVIDIA driver the reason starts with "libcuda.so.1 not found: no NVIDIA driver
    /// on this machine"; with a driver but no GPU it starts with "no CUDA devices".
    /// </summary>
    /// <param name="ordinal">Which GPU (0-based).</param>
    /// <param name="device">The open device, when it returns <see langword="true"/>.</param>
    /// <param name="reason">Why the device could not be opened, when it returns <see langword="false"/>.</param>
    public static bool TryOpen(int ordinal, [NotNullWhen(true)] out CudaDevice? device, out string reason)
    {
        device = null;
        if (ordinal < 0)
        {
            reason = $"CUDA device ordinals start at 0; {ordinal} is not one.";
            return false;
        }

        try
        {
            if (!TryInitialize(out reason))
                return false;

            CudaDriver.Check(CudaDriver.cuDeviceGetCount(out int count));
            if (count == 0)
            {
                reason = "no CUDA devices: the NVIDIA driver is installed but lists no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES), or use Device = \"cpu\".";
                return false;
            }

            if (ordinal >= count)
            {
                reason = $"no CUDA device {ordinal}: this machine has {count} (ordinals 0..{count - 1}; CUDA_VISIBLE_DEVICES may hide others).";
                return false;
            }

            CudaDriver.Check(CudaDriver.cuDeviceGet(out int handle, ordinal));
            CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out nint context, handle));
            try
            {
                device = new CudaDevice(ordinal, handle, context);
            }
            catch
            {
                _ = CudaDriver.cuDevicePrimaryCtxRelease_v2(handle);
                throw;
            }

            reason = string.Empty;
            return true;
        }
        catch (KilnCudaException e)
        {
            reason = $"CUDA device {ordinal} could not be opened: {e.Message}";
            return false;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            reason = $"the CUDA driver library is unusable: {e.Message}";
            return false;
        }
    }

    /// <summary>Opens GPU <paramref name="ordinal"/>.</summary>
    /// <exception cref="InvalidOperationException">There is no such device; the message says why.</exception>
    public static CudaDevice Open(int ordinal)
    {
        if (TryOpen(ordinal, out var device, out string reason))
            return device;
        throw new InvalidOperationException(reason);
    }

    /// <summary>How many GPUs the driver lists; 0 when there is no driver or no device (<see cref="TryOpen"/> says why).</summary>
    public static int GetDeviceCount()
    {
        try
        {
            if (!TryInitialize(out _))
                return 0;
            return CudaDriver.cuDeviceGetCount(out int count) == CudaDriver.Success ? count : 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>Makes the device's context current on the calling thread (every method here does this itself).</summary>
    public void MakeCurrent()
    {
        ThrowIfDisposed();
        // Called before every launch: skip the driver call when this thread already has the context current
        // (only Kiln sets contexts in this process; Dispose clears the cache).
        if (_currentOnThread == _context)
            return;
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(_context));
        _currentOnThread = _context;
    }

    [ThreadStatic]
    private static nint _currentOnThread;

    /// <summary>Waits until all work queued on the device has finished, and reports any asynchronous kernel error.</summary>
    public void Synchronize()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuCtxSynchronize());
    }

    /// <summary>Free and total device memory in bytes, as the driver sees them now.</summary>
    public (long FreeBytes, long TotalBytes) GetMemoryInfo()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemGetInfo_v2(out nuint free, out nuint total));
        return ((long)free, (long)total);
    }

    /// <summary>Allocates <paramref name="bytes"/> of device memory (256-byte aligned, uninitialised).</summary>
    /// <exception cref="KilnCudaException">The allocation failed (<c>CUDA_ERROR_OUT_OF_MEMORY</c> when the device is full).</exception>
    public CudaBuffer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemAlloc_v2(out ulong pointer, (nuint)bytes));
        return new CudaBuffer(this, pointer, bytes);
    }

    /// <summary>Allocates room for <paramref name="count"/> elements of <typeparamref name="T"/>.</summary>
    public CudaBuffer Allocate<T>(long count)
        where T : unmanaged
        => Allocate(checked(count * Unsafe.SizeOf<T>()));

    /// <summary>
    /// Loads a module from a CUBIN, a fatbinary or PTX text. A CUBIN must be for this device's architecture;
    /// PTX is JIT-compiled by the driver and must not be newer than the driver.
    /// </summary>
    public unsafe CudaModule LoadModule(ReadOnlySpan<byte> image)
    {
        if (image.IsEmpty)
            throw new ArgumentException("The module image is empty.", nameof(image));

        // PTX must be NUL-terminated; a NUL after an ELF or fatbinary image is ignored.
        var copy = new byte[image.Length + 1];
        image.CopyTo(copy);
        MakeCurrent();
        nint module;
        fixed (byte* p = copy)
            CudaDriver.Check(CudaDriver.cuModuleLoadData(out module, p));
        return new CudaModule(this, module);
    }

    /// <summary>Loads what NVRTC produced: the CUBIN when there is one, otherwise the PTX.</summary>
    public CudaModule LoadModule(CompileResult compiled)
    {
        ArgumentNullException.ThrowIfNull(compiled);
        return compiled.Cubin is { Length: > 0 } cubin ? LoadModule(cubin) : LoadModule(Encoding.UTF8.GetBytes(compiled.Ptx));
    }

    /// <summary>Creates a stream (an ordered queue of work).</summary>
    /// <param name="nonBlocking">When <see langword="true"/> (the default), the stream does not synchronise with the legacy default stream.</param>
    public CudaStream CreateStream(bool nonBlocking = true)
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamCreate(out nint stream, nonBlocking ? CudaDriver.StreamNonBlocking : 0u));
        return new CudaStream(this, stream);
    }

    /// <summary>Creates an event, for ordering work across streams and for timing.</summary>
    /// <param name="timing">When <see langword="false"/>, the event cannot be timed but is cheaper to record and wait on.</param>
    public CudaEvent CreateEvent(bool timing = true)
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventCreate(out nint evt, timing ? 0u : CudaDriver.EventDisableTiming));
        return new CudaEvent(this, evt);
    }

    /// <summary>Releases this reference to the primary context. Dispose buffers, modules, streams and events first.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (_currentOnThread == _context)
            _currentOnThread = 0;
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRelease_v2(Handle));
    }

    /// <summary>The device's name, architecture and memory.</summary>
    public override string ToString()
        => $"CUDA device {Ordinal}: {Name} (sm_{Architecture}, {MultiprocessorCount} SMs, {TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB)";

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    private static bool TryInitialize(out string reason)
    {
        if (!NativeLibraries.Shared.TryLoad(CudaLibrary.Driver, out _, out var error))
        {
            reason = error!.Message;
            return false;
        }

        lock (InitGate)
            _initResult ??= CudaDriver.cuInit(0);

        int result = _initResult.Value;
        if (result == CudaDriver.Success)
        {
            reason = string.Empty;
            return true;
        }

        reason = result == CudaDriver.ErrorNoDevice
            ? "no CUDA devices: cuInit reports CUDA_ERROR_NO_DEVICE (the driver is installed but sees no GPU; check nvidia-smi and CUDA_VISIBLE_DEVICES), or use Device = \"cpu\"."
            : $"the CUDA driver failed to initialise: cuInit returned {CudaDriver.ErrorName(result)} ({result}): {CudaDriver.ErrorDescription(result)}. Check nvidia-smi, or use Device = \"cpu\".";
        return false;
    }

    private static unsafe string ReadName(int handle)
    {
        byte* buffer = stackalloc byte[256];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(buffer, 256, handle));
        return Nvrtc.DecodeNulTerminated(new ReadOnlySpan<byte>(buffer, 256));
    }

    private int Attribute(int attribute)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int value, attribute, Handle));
        return value;
    }
}

/// <summary>A block of device memory.</summary>
public sealed class CudaBuffer : IDisposable
{
    private int _disposed;

    internal CudaBuffer(CudaDevice device, ulong pointer, long bytes)
    {
        Device = device;
        Pointer = pointer;
        Bytes = bytes;
    }

    /// <summary>The device that owns the memory.</summary>
    public CudaDevice Device { get; }

    /// <summary>The device address (<c>CUdeviceptr</c>).</summary>
    public ulong Pointer { get; }

    /// <summary>The size in bytes.</summary>
    public long Bytes { get; }

    /// <summary>Copies <paramref name="source"/> to the device, starting <paramref name="byteOffset"/> bytes into the buffer; returns when the copy is done.</summary>
    public unsafe void CopyFrom<T>(ReadOnlySpan<T> source, long byteOffset = 0)
        where T : unmanaged
    {
        long bytes = CheckRange(source.Length, Unsafe.SizeOf<T>(), byteOffset);
        if (bytes == 0)
            return;
        Device.MakeCurrent();
        fixed (T* p = source)
            CudaDriver.Check(CudaDriver.cuMemcpyHtoD_v2(Pointer + (ulong)byteOffset, p, (nuint)bytes));
    }

    /// <summary>Copies from the device into <paramref name="destination"/>, starting <paramref name="byteOffset"/> bytes into the buffer; returns when the copy is done.</summary>
    public unsafe void CopyTo<T>(Span<T> destination, long byteOffset = 0)
        where T : unmanaged
    {
        long bytes = CheckRange(destination.Length, Unsafe.SizeOf<T>(), byteOffset);
        if (bytes == 0)
            return;
        Device.MakeCurrent();
        fixed (T* p = destination)
            CudaDriver.Check(CudaDriver.cuMemcpyDtoH_v2(p, Pointer + (ulong)byteOffset, (nuint)bytes));
    }

    /// <summary>
    /// Queues a copy of <paramref name="source"/> to the device on <paramref name="stream"/>. From ordinary
    /// (pageable) memory the driver stages the data before returning, so the span may be reused at once; from
    /// pinned memory the copy overlaps with host work and the memory must stay valid until the stream is synchronised.
    /// </summary>
    public unsafe void CopyFromAsync<T>(ReadOnlySpan<T> source, CudaStream stream, long byteOffset = 0)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(stream);
        long bytes = CheckRange(source.Length, Unsafe.SizeOf<T>(), byteOffset);
        if (bytes == 0)
            return;
        Device.MakeCurrent();
        fixed (T* p = source)
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync_v2(Pointer + (ulong)byteOffset, p, (nuint)bytes, stream.Handle));
    }

    /// <summary>
    /// Queues a copy from the device into <paramref name="destination"/> on <paramref name="stream"/>. Into
    /// ordinary (pageable) memory the driver completes the copy before returning; into pinned memory the data
    /// is there only after the stream is synchronised.
    /// </summary>
    public unsafe void CopyToAsync<T>(Span<T> destination, CudaStream stream, long byteOffset = 0)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(stream);
        long bytes = CheckRange(destination.Length, Unsafe.SizeOf<T>(), byteOffset);
        if (bytes == 0)
            return;
        Device.MakeCurrent();
        fixed (T* p = destination)
            CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync_v2(p, Pointer + (ulong)byteOffset, (nuint)bytes, stream.Handle));
    }

    /// <summary>Sets every byte of the buffer to <paramref name="value"/> (0 clears it).</summary>
    public void Fill(byte value = 0)
    {
        ThrowIfDisposed();
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemsetD8_v2(Pointer, value, (nuint)Bytes));
    }

    /// <summary>Frees the memory. After the device is disposed this does nothing: releasing the context freed it.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || Device.IsDisposed)
            return;
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemFree_v2(Pointer));
    }

    private long CheckRange(int length, int elementSize, long byteOffset)
    {
        ThrowIfDisposed();
        long bytes = (long)length * elementSize;
        if (byteOffset < 0 || byteOffset > Bytes || bytes > Bytes - byteOffset)
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"Copying {bytes} bytes at offset {byteOffset} overruns the {Bytes}-byte device buffer.");
        return bytes;
    }

    private void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Device.ThrowIfDisposed();
    }
}

/// <summary>A loaded CUBIN or PTX module.</summary>
public sealed class CudaModule : IDisposable
{
    private int _disposed;

    internal CudaModule(CudaDevice device, nint handle)
    {
        Device = device;
        Handle = handle;
    }

    /// <summary>The device the module is loaded on.</summary>
    public CudaDevice Device { get; }

    /// <summary>The driver handle (<c>CUmodule</c>).</summary>
    public nint Handle { get; }

    /// <summary>Looks up a kernel by its (<c>extern "C"</c>, unmangled) name.</summary>
    /// <exception cref="KilnCudaException"><c>CUDA_ERROR_NOT_FOUND</c> when the module has no such kernel.</exception>
    public CudaFunction GetFunction(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuModuleGetFunction(out nint function, Handle, name));
        return new CudaFunction(this, name, function);
    }

    /// <summary>Unloads the module; its functions become invalid.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || Device.IsDisposed)
            return;
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuModuleUnload(Handle));
    }
}

/// <summary>A kernel in a loaded module.</summary>
public sealed class CudaFunction
{
    // The driver limits kernel parameters to 4 KiB (32 KiB from CUDA 12.1 on Volta and newer); each argument here is an 8-byte slot.
    private const int MaxArguments = 512;

    internal CudaFunction(CudaModule module, string name, nint handle)
    {
        Module = module;
        Name = name;
        Handle = handle;
    }

    /// <summary>The module the kernel lives in.</summary>
    public CudaModule Module { get; }

    /// <summary>The kernel's name.</summary>
    public string Name { get; }

    /// <summary>The driver handle (<c>CUfunction</c>).</summary>
    public nint Handle { get; }

    /// <summary>Allows launches with up to <paramref name="bytes"/> of dynamic shared memory (required above 48 KiB).</summary>
    public void SetMaxDynamicSharedMemory(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Module.Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuFuncSetAttribute(Handle, CudaDriver.FunctionAttributeMaxDynamicSharedSizeBytes, bytes));
    }

    /// <summary>
    /// Queues the kernel. Arguments are passed by value in declaration order; each must have the C type of the
    /// kernel's parameter (an <see cref="int"/> for <c>int</c>, a <see cref="CudaBuffer"/> for a pointer, and so on).
    /// Launch errors from the kernel itself surface at the next synchronisation.
    /// </summary>
    /// <param name="grid">Blocks in the grid.</param>
    /// <param name="block">Threads per block.</param>
    /// <param name="sharedMemoryBytes">Dynamic shared memory per block.</param>
    /// <param name="stream">The stream, or <see langword="null"/> for the default stream.</param>
    /// <param name="arguments">The kernel's arguments.</param>
    public unsafe void Launch(Dim3 grid, Dim3 block, int sharedMemoryBytes, CudaStream? stream, params ReadOnlySpan<KernelArgument> arguments)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sharedMemoryBytes);
        if (arguments.Length > MaxArguments)
            throw new ArgumentException($"{Name} is launched with {arguments.Length} arguments; at most {MaxArguments} are supported.", nameof(arguments));
        if (stream is not null && stream.Device != Module.Device)
            throw new ArgumentException($"The stream belongs to {stream.Device}, the kernel {Name} to {Module.Device}.", nameof(stream));

        // The driver reads each argument through a pointer to its value, and copies the values at launch.
        int count = Math.Max(arguments.Length, 1);
        ulong* values = stackalloc ulong[count];
        void** pointers = stackalloc void*[count];
        for (int i = 0; i < arguments.Length; i++)
        {
            values[i] = arguments[i].Bits;
            pointers[i] = values + i;
        }

        Module.Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuLaunchKernel(
            Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z,
            (uint)sharedMemoryBytes, stream?.Handle ?? 0, arguments.Length == 0 ? null : pointers, null));
    }
}

/// <summary>Grid or block dimensions of a kernel launch.</summary>
/// <param name="X">Extent in x.</param>
/// <param name="Y">Extent in y.</param>
/// <param name="Z">Extent in z.</param>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    /// <summary>A one-dimensional extent.</summary>
    public static implicit operator Dim3(uint x) => new(x);

    /// <summary>A one-dimensional extent (must be positive).</summary>
    public static implicit operator Dim3(int x) => new(checked((uint)x));

    /// <summary>The blocks needed to cover <paramref name="elements"/> with <paramref name="blockSize"/> threads each (CEIL_DIV).</summary>
    public static Dim3 BlocksFor(long elements, uint blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(elements);
        return new Dim3(checked((uint)((elements + blockSize - 1) / blockSize)));
    }
}

/// <summary>
/// One kernel argument, held as up to 8 bytes (little-endian, zero-extended) so that every scalar type and
/// device pointer fits the same slot.
/// </summary>
public readonly struct KernelArgument
{
    private KernelArgument(ulong bits) => Bits = bits;

    internal ulong Bits { get; }

    /// <summary>A C <c>int</c>.</summary>
    public static implicit operator KernelArgument(int value) => new((uint)value);

    /// <summary>A C <c>unsigned int</c>.</summary>
    public static implicit operator KernelArgument(uint value) => new(value);

    /// <summary>A C <c>long long</c>.</summary>
    public static implicit operator KernelArgument(long value) => new((ulong)value);

    /// <summary>A C <c>unsigned long long</c>, or a raw device pointer.</summary>
    public static implicit operator KernelArgument(ulong value) => new(value);

    /// <summary>A C <c>float</c>.</summary>
    public static implicit operator KernelArgument(float value) => new(BitConverter.SingleToUInt32Bits(value));

    /// <summary>A C <c>double</c>.</summary>
    public static implicit operator KernelArgument(double value) => new(BitConverter.DoubleToUInt64Bits(value));

    /// <summary>A device pointer to the buffer's first byte.</summary>
    public static implicit operator KernelArgument(CudaBuffer buffer) => new((buffer ?? throw new ArgumentNullException(nameof(buffer))).Pointer);
}

/// <summary>An ordered queue of device work.</summary>
public sealed class CudaStream : IDisposable
{
    private int _disposed;

    internal CudaStream(CudaDevice device, nint handle)
    {
        Device = device;
        Handle = handle;
    }

    /// <summary>The device the stream runs on.</summary>
    public CudaDevice Device { get; }

    /// <summary>The driver handle (<c>CUstream</c>), for passing to cuBLASLt or NCCL.</summary>
    public nint Handle { get; }

    /// <summary>Waits until everything queued on the stream has finished; reports asynchronous kernel errors.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(Handle));
    }

    /// <summary>Destroys the stream (queued work still completes).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || Device.IsDisposed)
            return;
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamDestroy_v2(Handle));
    }
}

/// <summary>A marker in a stream, for waiting and timing.</summary>
public sealed class CudaEvent : IDisposable
{
    private int _disposed;

    internal CudaEvent(CudaDevice device, nint handle)
    {
        Device = device;
        Handle = handle;
    }

    /// <summary>The device the event belongs to.</summary>
    public CudaDevice Device { get; }

    /// <summary>The driver handle (<c>CUevent</c>).</summary>
    public nint Handle { get; }

    /// <summary>Records the event at the current end of <paramref name="stream"/> (the default stream when <see langword="null"/>).</summary>
    public void Record(CudaStream? stream = null)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventRecord(Handle, stream?.Handle ?? 0));
    }

    /// <summary>Waits until the work before the recorded event has finished.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventSynchronize(Handle));
    }

    /// <summary>Milliseconds of device time between two recorded, completed events (resolution about 0.5 µs).</summary>
    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(end);
        start.Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventElapsedTime(out float milliseconds, start.Handle, end.Handle));
        return milliseconds;
    }

    /// <summary>Destroys the event.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0 || Device.IsDisposed)
            return;
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventDestroy_v2(Handle));
    }
}

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using Kiln.Runtime.Cuda;
using Kiln.Runtime.Interop;

namespace Kiln.Cuda.Emulator;

/// <summary>
/// An <see cref="IGpu"/> that runs on the host: device memory is host memory (a device pointer is a host address),
/// kernels are the module's CUDA C compiled by g++ against a header of CUDA built-ins and run with CUDA's block,
/// thread, warp and barrier semantics (see <c>native/kiln_cuda_emu.h</c>), and <see cref="Matmul"/> is a reference
/// implementation of cuBLASLt's contract. Everything runs synchronously on the calling thread, in a fixed order, so
/// results are deterministic. Copies, fills, GEMM operands and kernel pointer arguments are checked against the live
/// allocations, so host code that addresses memory it does not own fails with a message instead of corrupting it.
/// </summary>
public sealed unsafe partial class EmulatedGpu : IGpu
{
    private const int Alignment = 256;

    private readonly Lock _gate = new();
    // Live allocations sorted by address, for the range checks.
    private readonly List<(ulong Start, long Bytes)> _allocations = [];
    private bool _disposed;

    /// <inheritdoc />
    public string Name => "emulator (g++ host execution)";

    /// <summary>The memory this process may use (physical memory or the container's limit).</summary>
    public long TotalMemoryBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <inheritdoc />
    public ulong Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        ThrowIfDisposed();
        ulong p = (ulong)NativeMemory.AlignedAlloc((nuint)bytes, Alignment);
        lock (_gate)
        {
            int i = Find(p);
            _allocations.Insert(i < 0 ? ~i : i, (p, bytes));
        }
        return p;
    }

    /// <inheritdoc />
    public void Free(ulong pointer)
    {
        ThrowIfDisposed();
        lock (_gate)
        {
            int i = Find(pointer);
            if (i < 0) throw new ArgumentException($"0x{pointer:x} is not the start of a live allocation of this device (freed twice, or not from Allocate).", nameof(pointer));
            _allocations.RemoveAt(i);
        }
        NativeMemory.AlignedFree((void*)pointer);
    }

    /// <inheritdoc />
    public void CopyToDevice(ulong destination, ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty) return;
        CheckRange(destination, source.Length, "CopyToDevice (destination)");
        source.CopyTo(new Span<byte>((void*)destination, source.Length));
    }

    /// <inheritdoc />
    public void CopyToHost(Span<byte> destination, ulong source)
    {
        if (destination.IsEmpty) return;
        CheckRange(source, destination.Length, "CopyToHost (source)");
        new ReadOnlySpan<byte>((void*)source, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public void CopyDeviceToDevice(ulong destination, ulong source, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0) return;
        CheckRange(source, bytes, "CopyDeviceToDevice (source)");
        CheckRange(destination, bytes, "CopyDeviceToDevice (destination)");
        Buffer.MemoryCopy((void*)source, (void*)destination, bytes, bytes);
    }

    /// <inheritdoc />
    public void Fill(ulong destination, byte value, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0) return;
        CheckRange(destination, bytes, "Fill");
        NativeMemory.Fill((void*)destination, (nuint)bytes, value);
    }

    /// <summary>
    /// Builds the module with g++ (or finds it in the cache, keyed by <see cref="GpuKernelSource.Key"/>) and loads it.
    /// Kernels are the lines of the form <c>extern "C" __global__ void NAME(PARAMS)</c>.
    /// </summary>
    /// <exception cref="EmulatorCompileException">g++ rejected the source; the message has its output.</exception>
    /// <exception cref="EmulatorException">g++ is missing or the module cannot be loaded.</exception>
    public IGpuModule LoadModule(GpuKernelSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        ThrowIfDisposed();
        var kernels = KernelDeclarations.Parse(source.Source, source.Name);
        return new EmulatedModule(this, source.Name, EmulatorBuild.Load(source, kernels), kernels);
    }

    /// <summary>Nothing is queued: every call has finished when it returns.</summary>
    public void Synchronize() => ThrowIfDisposed();

    /// <summary>Frees every allocation still live.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var (start, _) in _allocations) NativeMemory.AlignedFree((void*)start);
            _allocations.Clear();
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    // Index of the allocation starting at p, or the complement of where it would be inserted.
    private int Find(ulong p)
    {
        int lo = 0, hi = _allocations.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            ulong s = _allocations[mid].Start;
            if (s == p) return mid;
            if (s < p) lo = mid + 1; else hi = mid - 1;
        }
        return ~lo;
    }

    /// <summary>Whether [p, p + bytes) lies inside one live allocation (bytes may be 0: then p may be its end).</summary>
    private bool Contains(ulong p, long bytes)
    {
        int i = Find(p);
        if (i < 0) i = ~i - 1;
        if (i < 0) return false;
        var (start, length) = _allocations[i];
        return p >= start && p - start <= (ulong)length && (ulong)bytes <= (ulong)length - (p - start);
    }

    internal void CheckRange(ulong pointer, long bytes, string what)
    {
        ThrowIfDisposed();
        lock (_gate)
        {
            if (Contains(pointer, bytes)) return;
            throw new ArgumentException($"{what}: {bytes} bytes at 0x{pointer:x} are not inside one live allocation of this device. {Nearest(pointer)}");
        }
    }

    /// <summary>Null when a kernel's pointer argument is 0 or points into (or just past) a live allocation, else why not.</summary>
    internal string? CheckPointerArgument(ulong pointer)
    {
        if (pointer == 0) return null;
        lock (_gate)
            return Contains(pointer, 0) ? null : $"0x{pointer:x} is not inside a live allocation of this device. {Nearest(pointer)}";
    }

    private string Nearest(ulong pointer)
    {
        int i = Find(pointer);
        if (i < 0) i = ~i - 1;
        if (i < 0) return _allocations.Count == 0 ? "There are no live allocations." : $"The lowest allocation starts at 0x{_allocations[0].Start:x}.";
        var (start, length) = _allocations[i];
        return $"The allocation below it is 0x{start:x} (+{length} bytes).";
    }

    private sealed class EmulatedModule(EmulatedGpu gpu, string moduleName, LoadedLibrary library, IReadOnlyList<KernelDeclaration> declarations) : IGpuModule
    {
        private readonly Dictionary<string, EmulatedKernel> _kernels = new(StringComparer.Ordinal);
        private bool _disposed;

        public IGpuKernel GetKernel(string name)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            lock (_kernels)
            {
                if (_kernels.TryGetValue(name, out var kernel)) return kernel;
                var declaration = declarations.FirstOrDefault(k => k.Name == name)
                    ?? throw new KeyNotFoundException(
                        $"Module {moduleName} has no kernel named '{name}'. It declares: {(declarations.Count == 0 ? "none" : string.Join(", ", declarations.Select(k => k.Name)))} " +
                        "(the emulator finds kernels declared on one line as extern \"C\" __global__ void NAME(PARAMS)).");
                nint entry = library.Export(declaration.WrapperSymbol);
                if (entry == 0) throw new EmulatorException($"Module {moduleName} was built without the entry point {declaration.WrapperSymbol}; delete {EmulatorBuild.CacheDirectory} and retry.");
                kernel = new EmulatedKernel(gpu, this, library, declaration, entry);
                _kernels.Add(name, kernel);
                return kernel;
            }
        }

        public void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

        // The shared object stays loaded: other modules of the same source may use it.
        public void Dispose() => _disposed = true;
    }

    private sealed class EmulatedKernel : IGpuKernel
    {
        private const int ErrorCapacity = 4096;
        private readonly EmulatedGpu _gpu;
        private readonly EmulatedModule _module;
        private readonly LoadedLibrary _library;
        private readonly KernelDeclaration _declaration;
        private readonly nint _entry;
        private readonly byte[] _nameUtf8;

        public EmulatedKernel(EmulatedGpu gpu, EmulatedModule module, LoadedLibrary library, KernelDeclaration declaration, nint entry)
        {
            _gpu = gpu;
            _module = module;
            _library = library;
            _declaration = declaration;
            _entry = entry;
            _nameUtf8 = Encoding.UTF8.GetBytes(declaration.Name + "\0");
        }

        public string Name => _declaration.Name;

        public void Launch(uint gridBlocks, uint blockThreads, int sharedMemoryBytes, params ReadOnlySpan<KernelArgument> arguments)
        {
            _module.ThrowIfDisposed();
            _gpu.ThrowIfDisposed();
            ArgumentOutOfRangeException.ThrowIfNegative(sharedMemoryBytes);
            var parameters = _declaration.Parameters;
            if (arguments.Length != parameters.Count)
                throw new ArgumentException(
                    $"Kernel {Name} takes {parameters.Count} argument{(parameters.Count == 1 ? "" : "s")} but {arguments.Length} {(arguments.Length == 1 ? "was" : "were")} given; its signature is {_declaration}.",
                    nameof(arguments));
            int n = Math.Max(1, parameters.Count);
            ulong* slots = stackalloc ulong[n];
            void** pointers = stackalloc void*[n];
            for (int i = 0; i < parameters.Count; i++)
            {
                slots[i] = arguments[i].Bits;
                pointers[i] = slots + i;
                if (parameters[i].IsPointer && _gpu.CheckPointerArgument(slots[i]) is string problem)
                    throw new ArgumentException($"Argument {i} ({parameters[i]}) of kernel {Name}: {problem}", nameof(arguments));
            }
            byte* error = stackalloc byte[ErrorCapacity];
            error[0] = 0;
            int status;
            fixed (byte* name = _nameUtf8)
            {
                lock (_library.Gate)
                    status = _library.Launch(_entry, name, gridBlocks, 1, 1, blockThreads, 1, 1, (ulong)sharedMemoryBytes, pointers, error, ErrorCapacity);
            }
            if (status != 0)
                throw new EmulatorLaunchException(Name,
                    $"Launch of {Name} on {gridBlocks.ToString(CultureInfo.InvariantCulture)}×{blockThreads.ToString(CultureInfo.InvariantCulture)} threads failed: " +
                    Marshal.PtrToStringUTF8((nint)error));
        }
    }
}

using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using Kiln.Runtime.Interop;

namespace Kiln.Runtime.Cuda;

/// <summary>How a tensor read back from the device is stored there.</summary>
public enum DeviceTensorKind
{
    /// <summary>fp32.</summary>
    Float32,
    /// <summary>The program's low-precision type (bf16, fp16 or fp32 by <see cref="ModelProgram.Precision"/>).</summary>
    Low,
    /// <summary>int32.</summary>
    Int32,
}

/// <summary>
/// The base of every generated CUDA program: device slabs for the parameters (fp32 master weights and their
/// low-precision copy), gradients and optimizer state, the activation arenas of the memory plan, input
/// uploads, kernel launches and cuBLASLt GEMMs. The generated subclass holds only the launch sequence.
/// <see cref="ModelProgram.Params"/> and <see cref="ModelProgram.Grads"/> are host mirrors here: see
/// <see cref="SyncParametersToHost"/>, <see cref="SyncGradientsToHost"/> and <see cref="ParametersChanged"/>.
/// </summary>
public abstract class CudaModelProgram : ModelProgram, IDisposable
{
    private const uint BlockThreads = 256;
    private const uint NormBlocks = 256;

    private readonly IGpu _gpu;
    private readonly string _modelName;
    private readonly GpuKernelSource _source;
    private readonly string[] _kernelNames;
    private readonly IGpuKernel?[] _kernels;
    private readonly long _parameterCount;
    private readonly List<ulong> _inputs = new();
    private readonly List<long> _inputBytes = new();
    private IGpuModule? _module;
    private ulong _m, _v, _momentum, _decayMask, _partials;
    private long _arenaFBytes, _arenaLBytes, _arenaIBytes;
    private bool _disposed;

    /// <summary>Allocates the device slabs and uploads nothing yet (the trainer initialises the parameters).</summary>
    /// <param name="gpu">The device.</param>
    /// <param name="precision">Storage of low-precision tensors; <see cref="PrecisionMode.Auto"/> means bf16.</param>
    /// <param name="parameters">The parameter table.</param>
    /// <param name="parameterCount">Elements in the parameter slab.</param>
    /// <param name="modelName">The model's class name.</param>
    /// <param name="programName">The CUDA program name (<c>{Model}.cu</c>).</param>
    /// <param name="cudaSource">The model's CUDA translation unit (<c>KilnCudaSource</c>).</param>
    /// <param name="kernelNames">The kernels the generated launches refer to by index.</param>
    protected CudaModelProgram(IGpu gpu, PrecisionMode precision, IReadOnlyList<ParameterInfo> parameters, long parameterCount,
        string modelName, string programName, string cudaSource, string[] kernelNames)
        : base(parameters, parameterCount, precision == PrecisionMode.Auto ? PrecisionMode.BFloat16 : precision)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        _gpu = gpu;
        _modelName = modelName;
        _parameterCount = parameterCount;
        _kernelNames = kernelNames;
        _kernels = new IGpuKernel?[kernelNames.Length];
        LowType = Precision switch { PrecisionMode.BFloat16 => GpuDataType.BFloat16, PrecisionMode.Float16 => GpuDataType.Float16, _ => GpuDataType.Float32 };
        LowBytes = GpuDataTypes.SizeOf(LowType);
        var define = Precision switch { PrecisionMode.BFloat16 => KernelCacheKey.BFloat16Define, PrecisionMode.Float16 => KernelCacheKey.Float16Define, _ => KernelCacheKey.Float32Define };
        _source = new GpuKernelSource(programName, cudaSource, new[] { define });

        long bytes = Math.Max(parameterCount, 1) * 4;
        DeviceParams = gpu.Allocate(bytes);
        DeviceGrads = gpu.Allocate(bytes);
        DeviceLowParams = LowType == GpuDataType.Float32 ? DeviceParams : gpu.Allocate(Math.Max(parameterCount, 1) * LowBytes);
        gpu.Fill(DeviceParams, 0, bytes);
        gpu.Fill(DeviceGrads, 0, bytes);
        _partials = gpu.Allocate(NormBlocks * sizeof(double));
        var mask = new byte[Math.Max(parameterCount, 1)];
        foreach (var p in parameters)
            if (p.WeightDecay) mask.AsSpan((int)p.Offset, (int)p.Length).Fill(1);
        _decayMask = gpu.Allocate(mask.Length);
        gpu.CopyToDevice(_decayMask, mask);
    }

    /// <inheritdoc/>
    public override string ModelName => _modelName;

    /// <inheritdoc/>
    public override string Device => _gpu.Name;

    /// <summary>The device the program runs on.</summary>
    public IGpu Gpu => _gpu;

    /// <inheritdoc/>
    public override long ArenaBytes => _arenaFBytes + _arenaLBytes + _arenaIBytes;

    /// <summary>The device type of low-precision tensors.</summary>
    protected GpuDataType LowType { get; }

    /// <summary>Bytes per low-precision element.</summary>
    protected int LowBytes { get; }

    /// <summary>The fp32 parameter slab on the device.</summary>
    protected ulong DeviceParams { get; }

    /// <summary>The low-precision parameter copy (the fp32 slab itself when the precision is fp32).</summary>
    protected ulong DeviceLowParams { get; }

    /// <summary>The gradient slab on the device.</summary>
    protected ulong DeviceGrads { get; }

    /// <summary>The fp32 activation arena (valid after <see cref="EnsureArena"/>).</summary>
    protected ulong ArenaF { get; private set; }

    /// <summary>The low-precision activation arena.</summary>
    protected ulong ArenaL { get; private set; }

    /// <summary>The int32 activation arena.</summary>
    protected ulong ArenaI { get; private set; }

    /// <summary>Grows the three arenas to at least the given element counts (the memory plan bound to this call's sizes).</summary>
    protected void EnsureArena(long floats, long lows, long ints)
    {
        ThrowIfDisposed();
        ArenaF = Grow(ArenaF, ref _arenaFBytes, floats * 4);
        ArenaL = Grow(ArenaL, ref _arenaLBytes, lows * LowBytes);
        ArenaI = Grow(ArenaI, ref _arenaIBytes, ints * 4);
    }

    private ulong Grow(ulong pointer, ref long capacity, long bytes)
    {
        // Rounded up so a loop over slightly varying batch sizes does not reallocate every call.
        bytes = Math.Max(256, (bytes + 255) & ~255L);
        if (pointer != 0 && capacity >= bytes) return pointer;
        if (pointer != 0) { _gpu.Synchronize(); _gpu.Free(pointer); }
        capacity = bytes;
        return _gpu.Allocate(bytes);
    }

    /// <summary>Copies input <paramref name="slot"/> of the call to the device and returns its address.</summary>
    protected ulong UploadInput(int slot, TensorData tensor)
    {
        ThrowIfDisposed();
        while (_inputs.Count <= slot) { _inputs.Add(0); _inputBytes.Add(0); }
        long bytes = tensor.Length * 4;
        long capacity = _inputBytes[slot];
        _inputs[slot] = Grow(_inputs[slot], ref capacity, bytes);
        _inputBytes[slot] = capacity;
        ReadOnlySpan<byte> data = tensor.Floats is { } f ? MemoryMarshal.AsBytes(f.AsSpan()) : MemoryMarshal.AsBytes(tensor.Ints!.AsSpan());
        _gpu.CopyToDevice(_inputs[slot], data);
        return _inputs[slot];
    }

    private IGpuKernel Kernel(int index)
    {
        ThrowIfDisposed();
        if (_kernels[index] is { } k) return k;
        _module ??= _gpu.LoadModule(_source);
        return _kernels[index] = _module.GetKernel(_kernelNames[index]);
    }

    private IGpuKernel RuntimeKernel(string name)
    {
        _module ??= _gpu.LoadModule(_source);
        return _module.GetKernel(name);
    }

    private static uint GridFor(long threads) => (uint)Math.Clamp((threads + BlockThreads - 1) / BlockThreads, 1, 65535);

    /// <summary>Launches kernel <paramref name="index"/> with one thread per element (grid-stride).</summary>
    protected void LaunchElements(int index, long elements, params ReadOnlySpan<KernelArgument> arguments) =>
        Kernel(index).Launch(GridFor(elements), BlockThreads, 0, arguments);

    /// <summary>Launches kernel <paramref name="index"/> with one warp per row (grid-stride).</summary>
    protected void LaunchWarps(int index, long rows, params ReadOnlySpan<KernelArgument> arguments) =>
        Kernel(index).Launch(GridFor(rows * 32), BlockThreads, 0, arguments);

    /// <summary>Launches kernel <paramref name="index"/> on <paramref name="blocks"/> blocks of 256 threads (grid-stride beyond 65535).</summary>
    protected void LaunchBlocks(int index, long blocks, params ReadOnlySpan<KernelArgument> arguments) =>
        Kernel(index).Launch((uint)Math.Clamp(blocks, 1, 65535), BlockThreads, 0, arguments);

    /// <summary>Zeroes <paramref name="bytes"/> at <paramref name="pointer"/>.</summary>
    protected void Zero(ulong pointer, long bytes) => _gpu.Fill(pointer, 0, bytes);

    /// <summary>Copies <paramref name="bytes"/> between device buffers (a loop's carried values and results).</summary>
    protected void CopyDevice(ulong destination, ulong source, ulong bytes)
    {
        if (bytes > 0) _gpu.CopyDeviceToDevice(destination, source, checked((long)bytes));
    }

    /// <summary>Widens <paramref name="count"/> low-precision elements to fp32 (a carried value that a loop keeps in fp32).</summary>
    protected void WidenLow(ulong destination, ulong source, long count)
    {
        if (count > 0) Launch("kiln_rt_low_to_f32", count, destination, source, count);
    }

    /// <summary>
    /// Row-major <c>C[m×n] (+)= op(A)·op(B)</c> with low-precision operands; C is low precision or fp32
    /// (<paramref name="lowC"/>), and <paramref name="accumulate"/> adds into it (a gradient).
    /// </summary>
    protected void Gemm(bool transA, bool transB, long m, long n, long k, ulong a, ulong b, ulong c, bool lowC, bool accumulate) =>
        _gpu.Matmul(LtMatmul.RowMajor(transA, transB, m, n, k, a, LowType, b, LowType, c, lowC ? LowType : GpuDataType.Float32, 1f, accumulate ? 1f : 0f));

    /// <summary>
    /// A batched <see cref="Gemm"/>: batch dimensions <paramref name="batch"/> with per-operand element strides (0
    /// broadcasts); C is contiguous. Dimensions that are contiguous for every operand merge into one strided batch;
    /// any others become a loop of calls.
    /// </summary>
    protected void BatchedGemm(bool transA, bool transB, long m, long n, long k, ulong a, ulong b, ulong c, bool lowC, bool accumulate,
        long[] batch, long[] strideA, long[] strideB)
    {
        int r = batch.Length;
        var strideC = new long[r];
        long sc = m * n;
        for (int d = r - 1; d >= 0; d--) { strideC[d] = sc; sc *= batch[d]; }
        // Merge trailing dimensions while every operand steps through them as one run.
        int inner = r - 1;
        long count = r == 0 ? 1 : batch[r - 1];
        while (inner > 0 && Mergeable(inner - 1)) { count *= batch[inner - 1]; inner--; }
        bool Mergeable(int d) =>
            strideA[d] == strideA[d + 1] * batch[d + 1] && strideB[d] == strideB[d + 1] * batch[d + 1] && strideC[d] == strideC[d + 1] * batch[d + 1];
        long sa = r == 0 ? 0 : strideA[r - 1], sb = r == 0 ? 0 : strideB[r - 1], scc = r == 0 ? m * n : strideC[r - 1];
        var ctype = lowC ? LowType : GpuDataType.Float32;
        long ea = GpuDataTypes.SizeOf(LowType), ec = GpuDataTypes.SizeOf(ctype);
        long outer = 1;
        for (int d = 0; d < inner; d++) outer *= batch[d];
        for (long o = 0; o < outer; o++)
        {
            long offA = 0, offB = 0, offC = 0, rem = o;
            for (int d = inner - 1; d >= 0; d--)
            {
                long i = rem % batch[d]; rem /= batch[d];
                offA += i * strideA[d]; offB += i * strideB[d]; offC += i * strideC[d];
            }
            _gpu.Matmul(LtMatmul.RowMajor(transA, transB, m, n, k,
                a + (ulong)(offA * ea), LowType, b + (ulong)(offB * ea), LowType, c + (ulong)(offC * ec), ctype,
                1f, accumulate ? 1f : 0f, checked((int)count), sa, sb, scc));
        }
    }

    /// <summary>Adds a parameter gradient computed into an arena slot to the gradient slab.</summary>
    protected void AddIntoGrads(long paramOffset, ulong source, bool lowSource, long count) =>
        Launch(lowSource ? "kiln_rt_add_into_low" : "kiln_rt_add_into_f32", count, DeviceGrads + 4UL * (ulong)paramOffset, source, count);

    /// <summary>Adds a uniform parameter gradient to the gradient slab.</summary>
    protected void AddScalarIntoGrads(long paramOffset, long count, float value) =>
        Launch("kiln_rt_add_scalar_into", count, DeviceGrads + 4UL * (ulong)paramOffset, value, count);

    private void Launch(string runtimeKernel, long elements, params ReadOnlySpan<KernelArgument> arguments) =>
        RuntimeKernel(runtimeKernel).Launch(GridFor(elements), BlockThreads, 0, arguments);

    /// <summary>Reads one element (the loss) back to the host.</summary>
    protected float ReadScalar(ulong pointer, bool low)
    {
        Span<byte> b = stackalloc byte[4];
        if (!low || LowType == GpuDataType.Float32) { _gpu.CopyToHost(b, pointer); return BitConverter.ToSingle(b); }
        _gpu.CopyToHost(b[..2], pointer);
        ushort bits = BitConverter.ToUInt16(b);
        return LowType == GpuDataType.BFloat16 ? Kiln.Runtime.Precision.Bf16.ToFloat(bits) : (float)BitConverter.UInt16BitsToHalf(bits);
    }

    /// <summary>Reads a tensor (a <c>Forward</c> result) back to the host as fp32 or int32.</summary>
    protected TensorData ReadTensor(ulong pointer, DeviceTensorKind kind, int[] shape)
    {
        long count = 1;
        foreach (var d in shape) count *= d;
        if (kind == DeviceTensorKind.Int32)
        {
            var ints = new int[count];
            _gpu.CopyToHost(MemoryMarshal.AsBytes(ints.AsSpan()), pointer);
            return TensorData.Int(ints, shape);
        }
        var floats = new float[count];
        if (kind == DeviceTensorKind.Float32 || LowType == GpuDataType.Float32)
            _gpu.CopyToHost(MemoryMarshal.AsBytes(floats.AsSpan()), pointer);
        else
        {
            var bits = new ushort[count];
            _gpu.CopyToHost(MemoryMarshal.AsBytes(bits.AsSpan()), pointer);
            if (LowType == GpuDataType.BFloat16) Kiln.Runtime.Precision.Bf16.ToFloat(bits, floats);
            else for (long i = 0; i < count; i++) floats[i] = (float)BitConverter.UInt16BitsToHalf(bits[i]);
        }
        return TensorData.Float(floats, shape);
    }

    /// <summary>A tensor every element of which is <paramref name="value"/> (a result the compiler folded to a constant).</summary>
    protected static TensorData FilledTensor(int[] shape, float value)
    {
        long count = 1;
        foreach (var d in shape) count *= d;
        var data = new float[count];
        Array.Fill(data, value);
        return TensorData.Float(data, shape);
    }

    // ───────────────────────────── training operations on the device ─────────────────────────────

    /// <inheritdoc/>
    public override void ZeroGrads()
    {
        ThrowIfDisposed();
        _gpu.Fill(DeviceGrads, 0, _parameterCount * 4);
    }

    /// <inheritdoc/>
    public override double GradientNorm()
    {
        ThrowIfDisposed();
        if (_parameterCount == 0) return 0;
        RuntimeKernel("kiln_rt_sumsq").Launch(NormBlocks, BlockThreads, 0, _partials, DeviceGrads, _parameterCount);
        Span<double> partials = stackalloc double[(int)NormBlocks];
        _gpu.CopyToHost(MemoryMarshal.AsBytes(partials), _partials);
        double sum = 0;
        foreach (var p in partials) sum += p;
        return Math.Sqrt(sum);
    }

    /// <inheritdoc/>
    public override void ScaleGradients(float factor)
    {
        ThrowIfDisposed();
        if (_parameterCount > 0) Launch("kiln_rt_scale", _parameterCount, DeviceGrads, factor, _parameterCount);
    }

    /// <summary>Uploads <see cref="ModelProgram.Params"/> and refreshes the low-precision copy.</summary>
    public override void ParametersChanged()
    {
        ThrowIfDisposed();
        base.ParametersChanged();
        if (_parameterCount == 0) return;
        _gpu.CopyToDevice(DeviceParams, MemoryMarshal.AsBytes(Params.AsSpan()));
        if (DeviceLowParams != DeviceParams)
        {
            var (seed, stream) = RoundingStream();
            Launch("kiln_rt_params_to_low", _parameterCount, DeviceLowParams, DeviceParams, _parameterCount, StochasticRounding ? 1 : 0, seed, stream);
        }
    }

    /// <inheritdoc/>
    public override void SyncParametersToHost()
    {
        ThrowIfDisposed();
        if (_parameterCount > 0) _gpu.CopyToHost(MemoryMarshal.AsBytes(Params.AsSpan()), DeviceParams);
    }

    /// <inheritdoc/>
    public override void SyncGradientsToHost()
    {
        ThrowIfDisposed();
        if (_parameterCount > 0) _gpu.CopyToHost(MemoryMarshal.AsBytes(Grads.AsSpan()), DeviceGrads);
    }

    /// <summary>The low-precision copy of the parameters as matmuls read it, widened to fp32 (for tests and inspection).</summary>
    public float[] ReadLowParameters()
    {
        var t = ReadTensor(DeviceLowParams, DeviceTensorKind.Low, new[] { checked((int)_parameterCount) });
        return t.Floats!;
    }

    internal override bool UpdatesOnDevice => true;

    internal override void DeviceOptimizerStep(Optimizer optimizer, float learningRate)
    {
        ThrowIfDisposed();
        if (_parameterCount == 0) return;
        ulong low = DeviceLowParams == DeviceParams ? 0UL : DeviceLowParams;
        var (seed, stream) = RoundingStream();
        int sr = StochasticRounding ? 1 : 0;
        switch (optimizer)
        {
            case AdamW adam:
            {
                if (_m == 0)
                {
                    _m = _gpu.Allocate(_parameterCount * 4); _gpu.Fill(_m, 0, _parameterCount * 4);
                    _v = _gpu.Allocate(_parameterCount * 4); _gpu.Fill(_v, 0, _parameterCount * 4);
                }
                var k = adam.StepConstants(learningRate);
                Launch("kiln_rt_adamw", _parameterCount, DeviceParams, low, _m, _v, DeviceGrads, _decayMask, _parameterCount,
                    k.Beta1, k.OneMinusBeta1, k.Beta2, k.OneMinusBeta2, k.Eps, k.StepSize, k.InvBc2Sqrt, adam.WeightDecay != 0f ? k.DecayFactor : 1f,
                    sr, seed, stream);
                break;
            }
            case Sgd sgd:
            {
                if (sgd.Momentum > 0f && _momentum == 0)
                {
                    _momentum = _gpu.Allocate(_parameterCount * 4);
                    _gpu.Fill(_momentum, 0, _parameterCount * 4);
                }
                Launch("kiln_rt_sgd", _parameterCount, DeviceParams, low, sgd.Momentum > 0f ? _momentum : 0UL, DeviceGrads, _decayMask, _parameterCount,
                    learningRate, sgd.WeightDecay, sgd.Momentum, sgd.Nesterov ? 1 : 0, sr, seed, stream);
                break;
            }
            default:
                throw new NotSupportedException($"{optimizer.GetType().Name} has no device implementation; use AdamW or Sgd on {Device}.");
        }
    }

    /// <summary>The device slab of optimizer state <paramref name="name"/> (allocated and zeroed on first use).</summary>
    private ulong StateSlab(string name, bool allocate)
    {
        ref ulong slab = ref _m;
        switch (name)
        {
            case "m": slab = ref _m; break;
            case "v": slab = ref _v; break;
            case "momentum": slab = ref _momentum; break;
            default: throw new NotSupportedException($"{Device} keeps no optimizer state named '{name}'; AdamW keeps m and v, SGD with momentum keeps momentum.");
        }
        if (slab == 0 && allocate)
        {
            slab = _gpu.Allocate(_parameterCount * 4);
            _gpu.Fill(slab, 0, _parameterCount * 4);
        }
        return slab;
    }

    internal override void ReadOptimizerState(Optimizer optimizer, IReadOnlyDictionary<string, float[]> into)
    {
        ThrowIfDisposed();
        foreach (var (name, host) in into)
        {
            var slab = StateSlab(name, allocate: false);
            if (slab == 0) Array.Clear(host);
            else if (_parameterCount > 0) _gpu.CopyToHost(MemoryMarshal.AsBytes(host.AsSpan(0, (int)_parameterCount)), slab);
        }
    }

    internal override void WriteOptimizerState(Optimizer optimizer, IReadOnlyDictionary<string, float[]> state)
    {
        ThrowIfDisposed();
        foreach (var (name, host) in state)
        {
            if (host.Length != _parameterCount)
                throw new ArgumentException($"Optimizer state '{name}' holds {host.Length} values but {ModelName} has {_parameterCount} parameters.", nameof(state));
            if (_parameterCount > 0) _gpu.CopyToDevice(StateSlab(name, allocate: true), MemoryMarshal.AsBytes(host.AsSpan()));
        }
    }

    private (ulong Seed, ulong Stream) RoundingStream() => (RoundingKey.Seed, RandomStreams.StochasticRounding(RoundingKey.Step));

    /// <summary>Frees every device allocation of the program (the device itself stays open).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try { _gpu.Synchronize(); } catch (KilnCudaException) { }
        foreach (var p in new[] { DeviceParams, DeviceGrads, _partials, _decayMask, _m, _v, _momentum, ArenaF, ArenaL, ArenaI })
            if (p != 0) _gpu.Free(p);
        if (DeviceLowParams != DeviceParams) _gpu.Free(DeviceLowParams);
        foreach (var p in _inputs) if (p != 0) _gpu.Free(p);
        _module?.Dispose();
        GC.SuppressFinalize(this);
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}

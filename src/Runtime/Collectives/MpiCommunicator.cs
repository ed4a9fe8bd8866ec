using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading;

namespace Kiln.Runtime.Collectives;

/// <summary>
/// Ranks as processes launched by Open MPI (<c>mpirun -np 4 dotnet run …</c>), through <c>libmpi.so.40</c> bound at run
/// time (Debian/Ubuntu <c>openmpi-bin libopenmpi-dev</c>; run as root with <c>--allow-run-as-root</c>). The group is the
/// world (<see cref="World"/>) or a part of it (<see cref="Split"/>: the data and tensor axes of a mesh). Collectives are issued non-blocking and polled, so one that a rank never joins ends after
/// <see cref="Timeout"/> with a <see cref="CollectiveTimeoutException"/> (MPI does not say which ranks are missing).
/// Buffers are copied to native memory for the duration of a call, so a timed-out call can never write into managed
/// memory later.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private static readonly object InitGate = new();
    private static Api? _api;
    private long _sequence, _bytes;

    private readonly void* _comm;

    private MpiCommunicator(Api api, void* comm, string axis, TimeSpan timeout)
    {
        A = api; _comm = comm; Axis = axis; Timeout = timeout;
        int r, s;
        Check(A.CommRank(_comm, &r), "MPI_Comm_rank");
        Check(A.CommSize(_comm, &s), "MPI_Comm_size");
        Rank = r; Size = s;
    }

    /// <summary>
    /// Splits this group into sub-groups (MPI_Comm_split): ranks that pass the same <paramref name="color"/> form one,
    /// ordered by <paramref name="key"/>. Every rank of this group must call it (it blocks until they do). For a
    /// data × tensor mesh of world rank w = d·T + t: the tensor group is <c>Split(d, t, "tensor")</c>, the data group
    /// <c>Split(t, d, "data")</c>.
    /// </summary>
    public MpiCommunicator Split(int color, int key, string axis)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(color);
        void* comm;
        Check(A.CommSplit(_comm, color, key, &comm), "MPI_Comm_split");
        return new MpiCommunicator(A, comm, axis, Timeout);
    }

    private Api A { get; }

    /// <summary>Initialises MPI once per process (MPI_Init) and returns the world communicator.</summary>
    /// <exception cref="DllNotFoundException">Open MPI's library is not installed, with the install command.</exception>
    public static MpiCommunicator World(string axis = "data", TimeSpan? timeout = null)
    {
        lock (InitGate)
        {
            _api ??= Api.Load();
            int initialized;
            Check(_api.Initialized(&initialized), "MPI_Initialized");
            if (initialized == 0)
            {
                Check(_api.Init(null, null), "MPI_Init");
                AppDomain.CurrentDomain.ProcessExit += (_, _) => { int f; if (_api.Finalized(&f) == 0 && f == 0) _api.Finalize(); };
            }
            return new MpiCommunicator(_api, _api.World, axis, timeout ?? TimeSpan.FromSeconds(60));
        }
    }

    /// <inheritdoc/>
    public int Rank { get; }
    /// <inheritdoc/>
    public int Size { get; }
    /// <inheritdoc/>
    public string Axis { get; }
    /// <inheritdoc/>
    public string Engine => "mpi";
    /// <inheritdoc/>
    public TimeSpan Timeout { get; }
    /// <inheritdoc/>
    public long Sequence => _sequence;
    /// <inheritdoc/>
    public long BytesSent => _bytes;

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> data)
    {
        using var buf = new NativeBuffer(data.Length * sizeof(float));
        MemoryMarshal.AsBytes(data).CopyTo(buf.Span);
        void* req;
        Check(A.Iallreduce((void*)1, buf.Pointer, data.Length, A.Float, A.Sum, _comm, &req), "MPI_Iallreduce");
        Wait("AllReduce", &req, buf);
        buf.Span[..(data.Length * sizeof(float))].CopyTo(MemoryMarshal.AsBytes(data));
        _bytes += 2L * (Size - 1) * data.Length * sizeof(float) / Size;
    }

    /// <inheritdoc/>
    public double AllReduceSum(double value)
    {
        using var buf = new NativeBuffer(sizeof(double));
        *(double*)buf.Pointer = value;
        void* req;
        Check(A.Iallreduce((void*)1, buf.Pointer, 1, A.Double, A.Sum, _comm, &req), "MPI_Iallreduce");
        Wait("AllReduce(double)", &req, buf);
        _bytes += 2L * (Size - 1) * sizeof(double) / Size;
        return *(double*)buf.Pointer;
    }

    /// <inheritdoc/>
    public void ReduceScatterSum(ReadOnlySpan<float> input, Span<float> output)
    {
        if (input.Length != output.Length * Size)
            throw new ArgumentException($"ReduceScatter: the input holds {input.Length} values, not {Size} × the output's {output.Length}.", nameof(input));
        using var send = new NativeBuffer(input.Length * sizeof(float));
        using var recv = new NativeBuffer(Math.Max(1, output.Length) * sizeof(float));
        MemoryMarshal.AsBytes(input).CopyTo(send.Span);
        void* req;
        Check(A.IreduceScatterBlock(send.Pointer, recv.Pointer, output.Length, A.Float, A.Sum, _comm, &req), "MPI_Ireduce_scatter_block");
        Wait("ReduceScatter", &req, send, recv);
        recv.Span[..(output.Length * sizeof(float))].CopyTo(MemoryMarshal.AsBytes(output));
        _bytes += (long)(Size - 1) * output.Length * sizeof(float);
    }

    /// <inheritdoc/>
    public void AllGather(ReadOnlySpan<float> shard, Span<float> output)
    {
        if (output.Length != shard.Length * Size)
            throw new ArgumentException($"AllGather: the output holds {output.Length} values, not {Size} × the shard's {shard.Length}.", nameof(output));
        using var send = new NativeBuffer(Math.Max(1, shard.Length) * sizeof(float));
        using var recv = new NativeBuffer(Math.Max(1, output.Length) * sizeof(float));
        MemoryMarshal.AsBytes(shard).CopyTo(send.Span);
        void* req;
        Check(A.Iallgather(send.Pointer, shard.Length, A.Float, recv.Pointer, shard.Length, A.Float, _comm, &req), "MPI_Iallgather");
        Wait("AllGather", &req, send, recv);
        recv.Span[..(output.Length * sizeof(float))].CopyTo(MemoryMarshal.AsBytes(output));
        _bytes += (long)(Size - 1) * shard.Length * sizeof(float);
    }

    /// <inheritdoc/>
    public void Broadcast(Span<float> data, int root)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
        using var buf = new NativeBuffer(Math.Max(1, data.Length) * sizeof(float));
        MemoryMarshal.AsBytes(data).CopyTo(buf.Span);
        void* req;
        Check(A.Ibcast(buf.Pointer, data.Length, A.Float, root, _comm, &req), "MPI_Ibcast");
        Wait("Broadcast", &req, buf);
        buf.Span[..(data.Length * sizeof(float))].CopyTo(MemoryMarshal.AsBytes(data));
        if (Rank == root) _bytes += (long)data.Length * sizeof(float);
    }

    /// <inheritdoc/>
    public void Barrier()
    {
        void* req;
        Check(A.Ibarrier(_comm, &req), "MPI_Ibarrier");
        Wait("Barrier", &req);
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<float> data, int to)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(to);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(to, Size);
        using var buf = new NativeBuffer(Math.Max(1, data.Length) * sizeof(float));
        MemoryMarshal.AsBytes(data).CopyTo(buf.Span);
        void* req;
        Check(A.Isend(buf.Pointer, data.Length, A.Float, to, 0, _comm, &req), "MPI_Isend");
        Wait("Send", &req, buf);
        _bytes += (long)data.Length * sizeof(float);
    }

    /// <inheritdoc/>
    public void Receive(Span<float> data, int from)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(from, Size);
        using var buf = new NativeBuffer(Math.Max(1, data.Length) * sizeof(float));
        void* req;
        Check(A.Irecv(buf.Pointer, data.Length, A.Float, from, 0, _comm, &req), "MPI_Irecv");
        Wait("Receive", &req, buf);
        buf.Span[..(data.Length * sizeof(float))].CopyTo(MemoryMarshal.AsBytes(data));
    }

    /// <summary>Nothing to release per communicator; MPI is finalised at process exit.</summary>
    public void Dispose() { }

    private void Wait(string kind, void** request, params NativeBuffer[] buffers)
    {
        long sequence = _sequence++;
        var clock = Stopwatch.StartNew();
        int spins = 0;
        while (true)
        {
            int done;
            Check(A.Test(request, &done, null), "MPI_Test");
            if (done != 0) return;
            if (clock.Elapsed > Timeout)
            {
                // MPI may still write into the buffers: leave them allocated.
                foreach (var b in buffers) b.Leak();
                throw new CollectiveTimeoutException(kind, sequence, Axis, Array.Empty<int>(), Timeout,
                    $"{kind} #{sequence} on axis '{Axis}' ({Size} ranks, MPI; this is rank {Rank}) did not complete within {Timeout.TotalSeconds:0.###} s: " +
                    "at least one rank has not entered it (MPI does not say which). A rank skipped this collective, crashed, or is stuck before it.");
            }
            if (++spins < 1000) Thread.SpinWait(20); else Thread.Sleep(spins < 5000 ? 0 : 1);
        }
    }

    private static void Check(int code, string call)
    {
        if (code != 0) throw new InvalidOperationException($"{call} failed with MPI error code {code}.");
    }

    private sealed class NativeBuffer : IDisposable
    {
        private bool _leaked;
        public NativeBuffer(int bytes) { Length = Math.Max(1, bytes); Pointer = NativeMemory.Alloc((nuint)Length); }
        public void* Pointer { get; private set; }
        public int Length { get; }
        public Span<byte> Span => new(Pointer, Length);
        public void Leak() => _leaked = true;
        public void Dispose() { if (!_leaked && Pointer is not null) { NativeMemory.Free(Pointer); Pointer = null; } }
    }

    /// <summary>The entry points and predefined handles of Open MPI's libmpi.</summary>
    private sealed class Api
    {
        public delegate* unmanaged<int*, byte***, int> Init;
        public delegate* unmanaged<int*, int> Initialized;
        public delegate* unmanaged<int*, int> Finalized;
        public delegate* unmanaged<int> Finalize;
        public delegate* unmanaged<void*, int*, int> CommRank, CommSize;
        public delegate* unmanaged<void*, void*, int, void*, void*, void*, void**, int> Iallreduce;
        public delegate* unmanaged<void*, void*, int, void*, void*, void*, void**, int> IreduceScatterBlock;
        public delegate* unmanaged<void*, int, void*, void*, int, void*, void*, void**, int> Iallgather;
        public delegate* unmanaged<void*, int, void*, int, void*, void**, int> Ibcast;
        public delegate* unmanaged<void*, void**, int> Ibarrier;
        public delegate* unmanaged<void**, int*, void*, int> Test;
        public delegate* unmanaged<void*, int, int, void**, int> CommSplit;
        public delegate* unmanaged<void*, int, void*, int, int, void*, void**, int> Isend, Irecv;
        public void* World, Float, Double, Sum;

        /// <summary>dlopen(name, RTLD_NOW | RTLD_GLOBAL) through glibc; false when that is not possible.</summary>
        private static bool OpenGlobal(string name)
        {
            if (!NativeLibrary.TryLoad("libc.so.6", out var libc) || !NativeLibrary.TryGetExport(libc, "dlopen", out var dlopen)) return true;
            var bytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
            fixed (byte* p = bytes) return ((delegate* unmanaged<byte*, int, IntPtr>)dlopen)(p, 0x2 | 0x100) != IntPtr.Zero;
        }

        public static Api Load()
        {
            IntPtr lib = IntPtr.Zero;
            foreach (var name in new[] { "libmpi.so.40", "libmpi.so" })
            {
                // Open MPI's components resolve libmpi's symbols: load it RTLD_NOW | RTLD_GLOBAL before .NET binds it.
                if (!OpenGlobal(name)) continue;
                if (NativeLibrary.TryLoad(name, out lib)) break;
            }
            if (lib == IntPtr.Zero)
                throw new DllNotFoundException("Open MPI (libmpi.so.40) was not found. Install it (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) " +
                    "and launch with mpirun -np N; or use in-process ranks (InProcessGroup) to simulate ranks on one machine.");
            IntPtr F(string n) => NativeLibrary.TryGetExport(lib, n, out var p) ? p
                : throw new EntryPointNotFoundException($"{n} is not exported by the MPI library: Kiln's MPI engine needs Open MPI 4 or later (MPICH's handles differ).");
            return new Api
            {
                Init = (delegate* unmanaged<int*, byte***, int>)F("MPI_Init"),
                Initialized = (delegate* unmanaged<int*, int>)F("MPI_Initialized"),
                Finalized = (delegate* unmanaged<int*, int>)F("MPI_Finalized"),
                Finalize = (delegate* unmanaged<int>)F("MPI_Finalize"),
                CommRank = (delegate* unmanaged<void*, int*, int>)F("MPI_Comm_rank"),
                CommSize = (delegate* unmanaged<void*, int*, int>)F("MPI_Comm_size"),
                Iallreduce = (delegate* unmanaged<void*, void*, int, void*, void*, void*, void**, int>)F("MPI_Iallreduce"),
                IreduceScatterBlock = (delegate* unmanaged<void*, void*, int, void*, void*, void*, void**, int>)F("MPI_Ireduce_scatter_block"),
                Iallgather = (delegate* unmanaged<void*, int, void*, void*, int, void*, void*, void**, int>)F("MPI_Iallgather"),
                Ibcast = (delegate* unmanaged<void*, int, void*, int, void*, void**, int>)F("MPI_Ibcast"),
                Ibarrier = (delegate* unmanaged<void*, void**, int>)F("MPI_Ibarrier"),
                Test = (delegate* unmanaged<void**, int*, void*, int>)F("MPI_Test"),
                CommSplit = (delegate* unmanaged<void*, int, int, void**, int>)F("MPI_Comm_split"),
                Isend = (delegate* unmanaged<void*, int, void*, int, int, void*, void**, int>)F("MPI_Isend"),
                Irecv = (delegate* unmanaged<void*, int, void*, int, int, void*, void**, int>)F("MPI_Irecv"),
                World = (void*)F("ompi_mpi_comm_world"),
                Float = (void*)F("ompi_mpi_float"),
                Double = (void*)F("ompi_mpi_double"),
                Sum = (void*)F("ompi_mpi_op_sum"),
            };
        }
    }
}

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;

namespace Kiln.Runtime.Collectives;

/// <summary>
/// Ranks as threads of one process sharing memory: the default engine for tests and for simulating a cluster plan on one
/// machine. <see cref="Create"/> returns one communicator per rank; give each to its own thread. Reductions add the
/// ranks' values in rank order, so every rank gets the same bits and a run is deterministic. Each collective checks
/// that every rank called the same collective with the same size at the same sequence number, and a rank that waits
/// longer than the timeout gets a <see cref="CollectiveTimeoutException"/> naming the ranks that never arrived (the
/// others fail fast with the same message).
/// </summary>
public sealed class InProcessGroup
{
    private readonly object _gate = new();
    private readonly int _size;
    private readonly string _axis;
    private readonly TimeSpan _timeout;
    // The collective in progress: what each rank brought, and how many have arrived / left.
    private readonly Slot[] _slots;
    private int _arrived, _departed;
    private long _generation;
    private Exception? _failure;

    private sealed class Slot
    {
        public bool Present;
        public string Kind = "";
        public long Sequence;
        public long Length;
        public int Root;
        public object? Input;   // float[]-backed memory or double[] box
        public int InputOffset;
    }

    // Point-to-point messages in flight, per (from, to), oldest first.
    private readonly Queue<float[]>[,] _mail;

    private InProcessGroup(int size, string axis, TimeSpan timeout)
    {
        _size = size; _axis = axis; _timeout = timeout;
        _slots = Enumerable.Range(0, size).Select(_ => new Slot()).ToArray();
        _mail = new Queue<float[]>[size, size];
        for (int a = 0; a < size; a++) for (int b = 0; b < size; b++) _mail[a, b] = new Queue<float[]>();
    }

    private void Post(int from, int to, float[] message)
    {
        lock (_gate) { _mail[from, to].Enqueue(message); Monitor.PulseAll(_gate); }
    }

    private float[] Take(int from, int to, long sequence, int length)
    {
        var clock = Stopwatch.StartNew();
        lock (_gate)
        {
            while (_mail[from, to].Count == 0)
            {
                if (_failure is not null) throw Rethrow(_failure);
                var left = _timeout - clock.Elapsed;
                if (left <= TimeSpan.Zero)
                    throw new CollectiveTimeoutException("Receive", sequence, _axis, new[] { from }, _timeout,
                        $"Receive #{sequence} on axis '{_axis}' (rank {to} from rank {from}, {length} values) did not complete within {_timeout.TotalSeconds:0.###} s: rank {from} has not sent it. A rank skipped a send, crashed, or is stuck before it.");
                Monitor.Wait(_gate, left);
            }
            var message = _mail[from, to].Dequeue();
            if (message.Length != length)
                throw new CollectiveMismatchException($"Receive #{sequence} on axis '{_axis}': rank {to} expects {length} values from rank {from}, which sent {message.Length}.");
            return message;
        }
    }

    /// <summary>A group of <paramref name="size"/> ranks on mesh axis <paramref name="axis"/>; collectives wait at most <paramref name="timeout"/> (default 60 s).</summary>
    public static ICommunicator[] Create(int size, string axis = "data", TimeSpan? timeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        var group = new InProcessGroup(size, axis, timeout ?? TimeSpan.FromSeconds(60));
        return Enumerable.Range(0, size).Select(r => (ICommunicator)new RankCommunicator(group, r)).ToArray();
    }

    /// <summary>Runs <paramref name="body"/>(communicator) on <paramref name="size"/> threads, one per rank, and rethrows the first failure.</summary>
    public static void Run(int size, Action<ICommunicator> body, string axis = "data", TimeSpan? timeout = null)
    {
        var comms = Create(size, axis, timeout);
        var errors = new Exception?[size];
        var threads = comms.Select((c, r) => new Thread(() =>
        {
            try { body(c); }
            catch (Exception e) { errors[r] = e; }
        }) { IsBackground = true, Name = $"kiln rank {r}" }).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        var first = errors.FirstOrDefault(e => e is not null && e is not CollectiveTimeoutException) ?? errors.FirstOrDefault(e => e is not null);
        if (first is not null) throw new AggregateException($"rank {Array.IndexOf(errors, first)} failed: {first.Message}", errors.Where(e => e is not null)!);
    }

    private void Collective(int rank, string kind, long sequence, long length, int root, object? input, int offset, Action<Slot[]> compute)
    {
        lock (_gate)
        {
            if (_failure is not null) throw Rethrow(_failure);
            // No rank leaves a collective before all have read its inputs (see below), so the slots are free here.
            var deadline = Stopwatch.StartNew();
            var me = _slots[rank];
            me.Present = true; me.Kind = kind; me.Sequence = sequence; me.Length = length; me.Root = root; me.Input = input; me.InputOffset = offset;
            _arrived++;
            long generation = _generation;
            if (_arrived == _size)
            {
                var mismatch = Check();
                Monitor.PulseAll(_gate);
                if (mismatch is not null) throw mismatch;
            }
            else
            {
                while (_arrived < _size && _generation == generation && _failure is null)
                    if (!Monitor.Wait(_gate, Remaining(deadline))) { if (_arrived < _size) throw Fail(kind, sequence, rank); }
                if (_failure is not null) throw Rethrow(_failure);
            }
        }
        // Every rank computes its own result from the others' inputs (read-only) in rank order.
        compute(_slots);
        lock (_gate)
        {
            _departed++;
            if (_departed == _size)
            {
                foreach (var s in _slots) { s.Present = false; s.Input = null; }
                _arrived = 0; _departed = 0; _generation++;
                Monitor.PulseAll(_gate);
            }
            else
            {
                // Stay until everyone has read this rank's input.
                long generation = _generation;
                var deadline = Stopwatch.StartNew();
                while (_generation == generation && _failure is null)
                    if (!Monitor.Wait(_gate, Remaining(deadline))) throw Fail(kind, sequence, rank);
                if (_failure is not null) throw Rethrow(_failure);
            }
        }
    }

    private TimeSpan Remaining(Stopwatch clock)
    {
        var left = _timeout - clock.Elapsed;
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    private Exception? Check()
    {
        var first = _slots[0];
        for (int r = 1; r < _size; r++)
        {
            var s = _slots[r];
            if (s.Kind != first.Kind || s.Sequence != first.Sequence || s.Length != first.Length || s.Root != first.Root)
            {
                _failure = new CollectiveMismatchException(
                    $"ranks disagree on collective #{first.Sequence} on axis '{_axis}': rank 0 called {first.Kind}(#{first.Sequence}, {first.Length} values{(first.Kind == "Broadcast" ? $", root {first.Root}" : "")}) " +
                    $"but rank {r} called {s.Kind}(#{s.Sequence}, {s.Length} values{(s.Kind == "Broadcast" ? $", root {s.Root}" : "")}); every rank must run the same collectives in the same order.");
                return _failure;
            }
        }
        return null;
    }

    private Exception Fail(string kind, long sequence, int rank)
    {
        if (_failure is not null) return Rethrow(_failure);
        var missing = Enumerable.Range(0, _size).Where(r => !_slots[r].Present).ToArray();
        var waiting = Enumerable.Range(0, _size).Where(r => _slots[r].Present).ToArray();
        _failure = new CollectiveTimeoutException(kind, sequence, _axis, missing, _timeout,
            $"{kind} #{sequence} on axis '{_axis}' ({_size} ranks, in-process) did not complete within {_timeout.TotalSeconds:0.###} s: " +
            (missing.Length > 0
                ? $"rank{(missing.Length > 1 ? "s" : "")} {string.Join(", ", missing)} never arrived (rank{(waiting.Length > 1 ? "s" : "")} {string.Join(", ", waiting)} waited). A rank skipped this collective or is stuck before it."
                : "every rank arrived but one did not finish reading the others' buffers."));
        Monitor.PulseAll(_gate);
        return _failure;
    }

    private static Exception Rethrow(Exception e) => e switch
    {
        CollectiveTimeoutException t => new CollectiveTimeoutException(t.Collective, t.Sequence, t.Axis, t.MissingRanks, t.Timeout, t.Message),
        CollectiveMismatchException m => new CollectiveMismatchException(m.Message),
        _ => new InvalidOperationException(e.Message, e),
    };

    private sealed class RankCommunicator(InProcessGroup group, int rank) : ICommunicator
    {
        private long _sequence;
        private long _bytes;

        public int Rank => rank;
        public int Size => group._size;
        public string Axis => group._axis;
        public string Engine => "in-process";
        public TimeSpan Timeout => group._timeout;
        public long Sequence => _sequence;
        public long BytesSent => _bytes;

        public void AllReduceSum(Span<float> data)
        {
            // The inputs must stay readable while others sum them: work on a copy, write the result after.
            var input = data.ToArray();
            var result = new float[input.Length];
            group.Collective(rank, "AllReduce", _sequence++, input.Length, -1, input, 0, slots =>
            {
                Array.Copy((float[])slots[0].Input!, result, result.Length);
                for (int r = 1; r < slots.Length; r++)
                {
                    var x = (float[])slots[r].Input!;
                    for (int i = 0; i < result.Length; i++) result[i] += x[i];
                }
            });
            result.CopyTo(data);
            _bytes += 2L * (Size - 1) * input.Length * sizeof(float) / Size;
        }

        public double AllReduceSum(double value)
        {
            double result = 0;
            group.Collective(rank, "AllReduce(double)", _sequence++, 1, -1, new[] { value }, 0, slots =>
            {
                foreach (var s in slots) result += ((double[])s.Input!)[0];
            });
            _bytes += 2L * (Size - 1) * sizeof(double) / Size;
            return result;
        }

        public void ReduceScatterSum(ReadOnlySpan<float> input, Span<float> output)
        {
            if (input.Length != output.Length * Size)
                throw new ArgumentException($"ReduceScatter: the input holds {input.Length} values, not {Size} × the output's {output.Length}.", nameof(input));
            var mine = input.ToArray();
            var result = new float[output.Length];
            int n = output.Length, at = rank * n;
            group.Collective(rank, "ReduceScatter", _sequence++, input.Length, -1, mine, 0, slots =>
            {
                Array.Copy((float[])slots[0].Input!, at, result, 0, n);
                for (int r = 1; r < slots.Length; r++)
                {
                    var x = (float[])slots[r].Input!;
                    for (int i = 0; i < n; i++) result[i] += x[at + i];
                }
            });
            result.CopyTo(output);
            _bytes += (long)(Size - 1) * n * sizeof(float);
        }

        public void AllGather(ReadOnlySpan<float> shard, Span<float> output)
        {
            if (output.Length != shard.Length * Size)
                throw new ArgumentException($"AllGather: the output holds {output.Length} values, not {Size} × the shard's {shard.Length}.", nameof(output));
            var mine = shard.ToArray();
            var result = new float[output.Length];
            group.Collective(rank, "AllGather", _sequence++, shard.Length, -1, mine, 0, slots =>
            {
                for (int r = 0; r < slots.Length; r++) Array.Copy((float[])slots[r].Input!, 0, result, r * mine.Length, mine.Length);
            });
            result.CopyTo(output);
            _bytes += (long)(Size - 1) * mine.Length * sizeof(float);
        }

        public void Broadcast(Span<float> data, int root)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(root);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, Size);
            var mine = data.ToArray();
            var result = new float[mine.Length];
            group.Collective(rank, "Broadcast", _sequence++, mine.Length, root, mine, 0, slots => Array.Copy((float[])slots[root].Input!, result, result.Length));
            result.CopyTo(data);
            if (rank == root) _bytes += (long)mine.Length * sizeof(float);
        }

        public void Barrier() => group.Collective(rank, "Barrier", _sequence++, 0, -1, null, 0, _ => { });

        private readonly long[] _received = new long[group._size];

        public void Send(ReadOnlySpan<float> data, int to)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(to);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(to, Size);
            group.Post(rank, to, data.ToArray());
            _bytes += (long)data.Length * sizeof(float);
        }

        public void Receive(Span<float> data, int from)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(from);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(from, Size);
            group.Take(from, rank, _received[from]++, data.Length).CopyTo(data);
        }

        public void Dispose() { }
    }
}

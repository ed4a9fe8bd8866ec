using System;

namespace Kiln.Runtime.Collectives;

/// <summary>
/// One rank's view of a group of ranks (one mesh axis) and the collectives it takes part in. Every rank of the group
/// must call the same collectives in the same order with the same sizes; each call has a sequence number, and an
/// engine that can see the others (in-process ranks) checks both and names the first disagreement. A collective that
/// does not complete within <see cref="Timeout"/> ends with a <see cref="CollectiveTimeoutException"/> instead of a hang.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This rank, 0 … <see cref="Size"/> − 1.</summary>
    int Rank { get; }

    /// <summary>The number of ranks in the group.</summary>
    int Size { get; }

    /// <summary>The mesh axis the group spans (<c>data</c>, <c>tensor</c>, <c>pipeline</c>), for messages.</summary>
    string Axis { get; }

    /// <summary>The engine (<c>in-process</c>, <c>mpi</c>).</summary>
    string Engine { get; }

    /// <summary>How long a collective may wait for the other ranks.</summary>
    TimeSpan Timeout { get; }

    /// <summary>Collectives this rank has entered (the next one's sequence number).</summary>
    long Sequence { get; }

    /// <summary>Bytes this rank has sent into collectives so far (its share of the traffic, counted as a ring would send them).</summary>
    long BytesSent { get; }

    /// <summary>Replaces <paramref name="data"/> on every rank by the element-wise sum over ranks (the same bits on every rank).</summary>
    void AllReduceSum(Span<float> data);

    /// <summary>The sum over ranks of one number (a loss, a squared norm), the same on every rank.</summary>
    double AllReduceSum(double value);

    /// <summary>
    /// Sums <paramref name="input"/> (length <see cref="Size"/> × n) over ranks and leaves block <see cref="Rank"/> of the
    /// result (length n) in <paramref name="output"/>.
    /// </summary>
    void ReduceScatterSum(ReadOnlySpan<float> input, Span<float> output);

    /// <summary>Concatenates every rank's <paramref name="shard"/> (length n) in rank order into <paramref name="output"/> (length <see cref="Size"/> × n).</summary>
    void AllGather(ReadOnlySpan<float> shard, Span<float> output);

    /// <summary>Copies rank <paramref name="root"/>'s <paramref name="data"/> to every rank.</summary>
    void Broadcast(Span<float> data, int root);

    /// <summary>Waits until every rank has arrived.</summary>
    void Barrier();

    /// <summary>
    /// Point-to-point: hands <paramref name="data"/> to rank <paramref name="to"/>, whose matching <see cref="Receive"/>
    /// takes it (messages between two ranks arrive in order). May return before the receiver has it.
    /// </summary>
    void Send(ReadOnlySpan<float> data, int to);

    /// <summary>Point-to-point: waits (at most <see cref="Timeout"/>) for the next message from rank <paramref name="from"/>, which must hold <paramref name="data"/>.Length values.</summary>
    void Receive(Span<float> data, int from);
}

/// <summary>A collective did not complete in time: which one, its sequence number, the axis, and which ranks had not arrived.</summary>
public sealed class CollectiveTimeoutException : TimeoutException
{
    /// <summary>Creates the exception.</summary>
    public CollectiveTimeoutException(string collective, long sequence, string axis, int[] missing, TimeSpan timeout, string message) : base(message)
    {
        Collective = collective; Sequence = sequence; Axis = axis; MissingRanks = missing; Timeout = timeout;
    }

    /// <summary>The collective (<c>AllReduce</c>, …).</summary>
    public string Collective { get; }

    /// <summary>Its sequence number on the group (0-based).</summary>
    public long Sequence { get; }

    /// <summary>The mesh axis of the group.</summary>
    public string Axis { get; }

    /// <summary>Ranks that had not entered the collective when the wait ended (empty when the engine cannot tell).</summary>
    public int[] MissingRanks { get; }

    /// <summary>The time waited.</summary>
    public TimeSpan Timeout { get; }

    /// <summary>The same timeout, its message saying what the collective was for (a layer's all-reduce and its C# line, a gradient bucket).</summary>
    public CollectiveTimeoutException For(string what) =>
        new(Collective, Sequence, Axis, MissingRanks, Timeout, Message.TrimEnd('.') + $". It was {what}.");
}

/// <summary>Ranks called different collectives (or different sizes) at the same sequence number: a program bug, named.</summary>
public sealed class CollectiveMismatchException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public CollectiveMismatchException(string message) : base(message) { }
}

/// <summary>Where a process sits in a launch: its rank, the world size and its rank on this node, from the launcher's environment.</summary>
/// <param name="Rank">Global rank.</param>
/// <param name="WorldSize">Number of processes.</param>
/// <param name="LocalRank">Rank on this machine (selects the GPU).</param>
/// <param name="Launcher">Which launcher's variables were found: <c>torchrun</c>, <c>slurm</c>, <c>openmpi</c> or <c>none</c>.</param>
public readonly record struct RankEnvironment(int Rank, int WorldSize, int LocalRank, string Launcher)
{
    /// <summary>
    /// Reads torchrun's <c>RANK</c>/<c>WORLD_SIZE</c>/<c>LOCAL_RANK</c>, then SLURM's <c>SLURM_PROCID</c>/<c>SLURM_NTASKS</c>/
    /// <c>SLURM_LOCALID</c>, then Open MPI's <c>OMPI_COMM_WORLD_RANK</c>/<c>_SIZE</c>/<c>_LOCAL_RANK</c>; none: a single process.
    /// </summary>
    public static RankEnvironment Detect(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        foreach (var (launcher, rank, size, local) in new[]
        {
            ("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"),
            ("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
            ("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
        })
        {
            var r = environment(rank); var s = environment(size);
            if (r is null || s is null) continue;
            if (!int.TryParse(r, out int ri) || !int.TryParse(s, out int si) || si < 1 || ri < 0 || ri >= si)
                throw new InvalidOperationException($"{launcher}: {rank}={r} and {size}={s} do not describe a rank in a world (0 ≤ rank < size); check the launch command.");
            int li = int.TryParse(environment(local), out var l) ? l : 0;
            return new RankEnvironment(ri, si, li, launcher);
        }
        return new RankEnvironment(0, 1, 0, "none");
    }
}

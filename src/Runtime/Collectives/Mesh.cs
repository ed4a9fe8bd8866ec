using System;
using System.Linq;

namespace Kiln.Runtime.Collectives;

/// <summary>
/// One rank's place in a data × tensor × pipeline mesh and its communicator on each axis. World rank w is data rank
/// d = w / (T·P), stage s = (w / T) mod P and tensor rank t = w mod T: the tensor groups are consecutive ranks (on one
/// machine, where their frequent all-reduces are cheapest), then the stages, then the data replicas.
/// </summary>
/// <param name="World">All ranks.</param>
/// <param name="Data">The ranks with this rank's stage and tensor rank (gradients are averaged over them).</param>
/// <param name="Tensor">The ranks with this rank's data rank and stage (they split each layer).</param>
/// <param name="Pipeline">The ranks with this rank's data rank and tensor rank (they hold successive layers).</param>
public sealed record MeshRank(ICommunicator World, ICommunicator Data, ICommunicator Tensor, ICommunicator Pipeline)
{
    /// <summary>Sets this rank's program's tensor and pipeline groups (those of more than one rank).</summary>
    public void Attach(ModelProgram program)
    {
        ArgumentNullException.ThrowIfNull(program);
        if (Tensor.Size > 1) program.TensorGroup = Tensor;
        if (Pipeline.Size > 1) program.PipelineGroup = Pipeline;
    }

    /// <summary>World rank of (data rank, stage, tensor rank) in a mesh of <paramref name="tensor"/> × <paramref name="pipeline"/> per replica.</summary>
    public static int WorldRank(int data, int stage, int tensorRank, int tensor, int pipeline) => (data * pipeline + stage) * tensor + tensorRank;

    /// <summary>
    /// Runs <paramref name="body"/> on data × tensor × pipeline simulated ranks (threads, <see cref="InProcessGroup"/>),
    /// each with its communicators, and rethrows the first failure.
    /// </summary>
    public static void Simulate(int data, int tensor, int pipeline, Action<MeshRank> body, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(data);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tensor);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pipeline);
        var tensorGroups = Enumerable.Range(0, data * pipeline).Select(_ => InProcessGroup.Create(tensor, "tensor", timeout)).ToArray();
        var pipeGroups = Enumerable.Range(0, data * tensor).Select(_ => InProcessGroup.Create(pipeline, "pipeline", timeout)).ToArray();
        var dataGroups = Enumerable.Range(0, pipeline * tensor).Select(_ => InProcessGroup.Create(data, "data", timeout)).ToArray();
        InProcessGroup.Run(data * tensor * pipeline, world =>
        {
            int t = world.Rank % tensor, s = world.Rank / tensor % pipeline, d = world.Rank / (tensor * pipeline);
            body(new MeshRank(world, dataGroups[s * tensor + t][d], tensorGroups[d * pipeline + s][t], pipeGroups[d * tensor + t][s]));
        }, "world", timeout);
    }

    /// <summary>Splits an MPI world of data × tensor × pipeline processes into this process's communicators (every process must call it).</summary>
    public static MeshRank Split(MpiCommunicator world, int tensor, int pipeline)
    {
        ArgumentNullException.ThrowIfNull(world);
        if (world.Size % (tensor * pipeline) != 0)
            throw new ArgumentException($"{world.Size} processes do not divide into replicas of tensor {tensor} × pipeline {pipeline} ranks; launch a multiple of {tensor * pipeline}.");
        int t = world.Rank % tensor, s = world.Rank / tensor % pipeline, d = world.Rank / (tensor * pipeline);
        return new MeshRank(world, world.Split(s * tensor + t, d, "data"), world.Split(d * pipeline + s, t, "tensor"), world.Split(d * tensor + t, s, "pipeline"));
    }
}

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;

namespace Kiln;

public sealed partial class DataParallel
{
    private const string IndexFile = "index.json";
    private const string ParametersFile = "parameters.safetensors";

    private static string ShardFile(int rank, int world) => $"optimizer-rank-{rank}-of-{world}.safetensors";

    /// <summary>
    /// Writes a checkpoint into <paramref name="directory"/> (one per checkpoint): rank 0 the parameters
    /// (<c>parameters.safetensors</c>, by name), every rank its own shard of the optimizer state
    /// (<c>optimizer-rank-R-of-W.safetensors</c>; under <see cref="ZeroStage.None"/> rank 0 writes the whole state), each
    /// file atomically, and last — after a barrier — rank 0 the index (<c>index.json</c>: world size, ZeRO stage, step,
    /// the optimizer and which parameter range each shard file holds). A directory without an index is an interrupted
    /// save and is refused on load. Every rank must call this.
    /// </summary>
    public void SaveCheckpoint(string directory, long step)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string dir = Path.GetFullPath(directory);
        Directory.CreateDirectory(dir);
        if (_program.TensorGroup is { Size: > 1 } || _program.PipelineGroup is { Size: > 1 }) { SaveWhole(dir, step); return; }
        int rank = Communicator.Rank, world = Communicator.Size;
        if (rank == 0) _program.SaveParameters(Path.Combine(dir, ParametersFile), new Dictionary<string, string> { ["model"] = _program.ModelName });
        bool writesState = Zero != ZeroStage.None || rank == 0;
        var (start, length) = Zero == ZeroStage.None ? (0, _program.Params.Length) : (_start, _length);
        if (writesState)
        {
            var writer = new SafeTensorsWriter();
            var state = _optimizer.State;
            foreach (var name in _optimizer.StateNames)
                writer.Add("optimizer." + name, state.TryGetValue(name, out var slab) ? slab.AsMemory(0, length) : new float[length], length);
            writer.Metadata["start"] = start.ToString(CultureInfo.InvariantCulture);
            writer.Metadata["length"] = length.ToString(CultureInfo.InvariantCulture);
            writer.Save(Path.Combine(dir, ShardFile(rank, world)));
        }
        // The index goes last, once every rank's file is on disk.
        Communicator.Barrier();
        if (rank == 0)
        {
            var shards = Enumerable.Range(0, Zero == ZeroStage.None ? 1 : world).Select(r =>
            {
                var (s, l) = Zero == ZeroStage.None ? (0, _program.Params.Length) : ShardOf(r);
                return new ShardEntry(ShardFile(r, world), s, l);
            }).ToArray();
            var index = new CheckpointIndex(1, _program.ModelName, step, world, (int)Zero, _program.Params.Length, _optimizer.GetType().Name,
                _optimizer.StepCount, _optimizer.StateNames.ToArray(), ParametersFile, shards);
            AtomicFile.Write(Path.Combine(dir, IndexFile), stream => JsonSerializer.Serialize(stream, index, IndexJson.Default.CheckpointIndex));
        }
        Communicator.Barrier();
    }

    /// <summary>
    /// Loads a checkpoint written by <see cref="SaveCheckpoint"/> under any world size and ZeRO stage: the parameters,
    /// and this rank's part of the optimizer state gathered from whichever shard files cover it. Returns the step saved.
    /// </summary>
    /// <exception cref="InvalidDataException">The directory has no index (an interrupted save), or it describes another model or optimizer.</exception>
    public long LoadCheckpoint(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        string dir = Path.GetFullPath(directory);
        string indexPath = Path.Combine(dir, IndexFile);
        if (!File.Exists(indexPath))
            throw new InvalidDataException($"{dir} has no {IndexFile}: the save that wrote it did not finish (the index is written last). Load an earlier checkpoint.");
        CheckpointIndex index;
        using (var s = File.OpenRead(indexPath))
            index = JsonSerializer.Deserialize(s, IndexJson.Default.CheckpointIndex) ?? throw new InvalidDataException($"{indexPath} is empty.");
        long wholeCount = WholeTable().Sum(p => p.Length);
        if (index.Model != _program.ModelName || index.Parameters != wholeCount)
            throw new InvalidDataException($"{dir} holds {index.Model} with {index.Parameters} parameters, not {_program.ModelName} with {wholeCount}{(wholeCount != _program.Params.Length ? $" (the whole model of this rank's {_program.Params.Length})" : "")}.");
        if (index.Optimizer != _optimizer.GetType().Name || !index.Slabs.SequenceEqual(_optimizer.StateNames))
            throw new InvalidDataException($"{dir} holds {index.Optimizer} state ({string.Join(", ", index.Slabs)}), not {_optimizer.GetType().Name}'s.");
        if (_program.TensorGroup is { Size: > 1 } || _program.PipelineGroup is { Size: > 1 }) return LoadWhole(dir, index);
        _program.LoadParameters(Path.Combine(dir, index.ParametersFile));

        var (start, length) = Zero == ZeroStage.None ? (0, _program.Params.Length) : (_start, _length);
        var state = _optimizer.StateNames.ToDictionary(n => n, _ => new float[length]);
        foreach (var shard in index.Shards)
        {
            int lo = Math.Max(start, shard.Start), hi = Math.Min(start + length, shard.Start + shard.Length);
            if (hi <= lo) continue;
            using var file = SafeTensorsFile.Open(Path.Combine(dir, shard.File));
            foreach (var name in _optimizer.StateNames)
            {
                Array.Copy(ReadShard(file, shard, name), lo - shard.Start, state[name], lo - start, hi - lo);
            }
        }
        if (Zero == ZeroStage.None) _optimizer.LoadState(index.OptimizerSteps, state);
        else _optimizer.LoadShardState(index.OptimizerSteps, state, start);
        return index.Step;
    }

    /// <summary>Optimizer state <paramref name="name"/> of a shard file, checked against the length the index gives it.</summary>
    private static float[] ReadShard(SafeTensorsFile file, ShardEntry shard, string name)
    {
        var values = file.ReadFloats("optimizer." + name);
        if (values.Length != shard.Length) throw new InvalidDataException($"{shard.File}: optimizer.{name} holds {values.Length} values, the index says {shard.Length}.");
        return values;
    }

    /// <summary>The whole model's parameter table as this rank's program implies it (its tensor and pipeline groups undone).</summary>
    private IReadOnlyList<ParameterInfo> WholeTable() => PipelineParallel.WholeParameters(_program, _program.PipelineGroup?.Size ?? 1);

    private int TensorSize => _program.TensorGroup?.Size ?? 1;
    private int Stages => _program.PipelineGroup?.Size ?? 1;

    /// <summary>
    /// <paramref name="values"/> (a slab of this rank's program) gathered into the whole model's layout: over the tensor
    /// group, then the stages' layers over the pipeline group (all-gathers; every rank must call it).
    /// </summary>
    private float[] GatherWhole(float[] values, IReadOnlyList<ParameterInfo> whole)
    {
        var stageWhole = TensorParallel.WholeParameters(_program, TensorSize);
        float[] stage = values;
        if (_program.TensorGroup is { Size: > 1 } tensor)
        {
            stage = new float[stageWhole.Sum(p => p.Length)];
            TensorParallel.Gather(_program, values, tensor, stageWhole, stage);
        }
        var result = new float[whole.Sum(p => p.Length)];
        if (_program.PipelineGroup is { Size: > 1 } pipeline)
        {
            var all = new float[stage.Length * pipeline.Size];
            pipeline.AllGather(stage, all);
            var stages = Enumerable.Range(0, pipeline.Size).Select(r => all.AsSpan(r * stage.Length, stage.Length).ToArray()).ToList();
            PipelineParallel.Gather(_program, stages, whole, result, TensorSize);
        }
        else Array.Copy(stage, result, stage.Length);
        return result;
    }

    /// <summary>
    /// Under tensor or pipeline parallelism: the whole model's parameters and optimizer state (each rank's slab gathered
    /// over the tensor group and the stages, the ZeRO shards over the data group first), written by the first rank of
    /// every group as one parameters file and one state file in the whole model's layout, so any data × tensor ×
    /// pipeline layout (one rank included) loads it. Holds the whole model on every rank while it saves.
    /// </summary>
    private void SaveWhole(string dir, long step)
    {
        var whole = WholeTable();
        int wholeCount = checked((int)whole.Sum(p => p.Length));
        bool writer = Communicator.Rank == 0 && (_program.TensorGroup?.Rank ?? 0) == 0 && (_program.PipelineGroup?.Rank ?? 0) == 0;
        _program.SyncParametersToHost();
        var wholeParams = GatherWhole(_program.Params, whole);
        var states = _optimizer.StateNames.ToDictionary(name => name, name => GatherWhole(RankSlabState(name), whole));
        if (writer)
        {
            var parameters = new SafeTensorsWriter();
            foreach (var p in whole) parameters.Add(p.Name, wholeParams.AsMemory((int)p.Offset, (int)p.Length), p.Shape.Select(d => (long)d).ToArray());
            parameters.Metadata["model"] = _program.ModelName;
            parameters.Save(Path.Combine(dir, ParametersFile));
            var state = new SafeTensorsWriter();
            foreach (var name in _optimizer.StateNames) state.Add("optimizer." + name, states[name], wholeCount);
            state.Metadata["start"] = "0";
            state.Metadata["length"] = wholeCount.ToString(CultureInfo.InvariantCulture);
            state.Save(Path.Combine(dir, WholeStateFile));
        }
        MeshBarrier();
        if (writer)
        {
            var index = new CheckpointIndex(1, _program.ModelName, step, Communicator.Size, (int)Zero, wholeCount, _optimizer.GetType().Name,
                _optimizer.StepCount, _optimizer.StateNames.ToArray(), ParametersFile, new[] { new ShardEntry(WholeStateFile, 0, wholeCount) }, TensorSize, Stages);
            AtomicFile.Write(Path.Combine(dir, IndexFile), stream => JsonSerializer.Serialize(stream, index, IndexJson.Default.CheckpointIndex));
        }
        MeshBarrier();
    }

    private const string WholeStateFile = "optimizer-whole.safetensors";

    /// <summary>Every rank of the mesh has arrived (the tensor group, the pipeline group, then the data group: transitively all, the first rank included).</summary>
    private void MeshBarrier()
    {
        if (_program.TensorGroup is { Size: > 1 } tensor) tensor.Barrier();
        if (_program.PipelineGroup is { Size: > 1 } pipeline) pipeline.Barrier();
        Communicator.Barrier();
    }

    /// <summary>This rank's optimizer state <paramref name="name"/> over its whole slab (under ZeRO, the data ranks' shards all-gathered).</summary>
    private float[] RankSlabState(string name)
    {
        int n = _program.Params.Length;
        var state = _optimizer.State;
        if (Zero == ZeroStage.None) return state.TryGetValue(name, out var full) ? full : new float[n];
        var mine = new float[_shard];
        if (state.TryGetValue(name, out var shard)) Array.Copy(shard, 0, mine, 0, _length);
        var all = new float[_shard * Communicator.Size];
        Communicator.AllGather(mine, all);
        return all.AsSpan(0, n).ToArray();
    }

    /// <summary>Loads a checkpoint into a tensor-parallel rank or a pipeline stage: the whole model's values read by name, this rank's piece scattered out.</summary>
    private long LoadWhole(string dir, CheckpointIndex index)
    {
        var whole = WholeTable();
        int wholeCount = checked((int)whole.Sum(p => p.Length));
        int stage = _program.PipelineGroup?.Rank ?? 0, tensorRank = _program.TensorGroup?.Rank ?? 0;
        var wholeParams = new float[wholeCount];
        using (var file = SafeTensorsFile.Open(Path.Combine(dir, index.ParametersFile)))
            foreach (var p in whole)
            {
                if (!file.Contains(p.Name)) throw new InvalidDataException($"{index.ParametersFile} has no '{p.Name}'.");
                var shape = file[p.Name].Shape;
                if (!shape.SequenceEqual(p.Shape.Select(d => (long)d)))
                    throw new InvalidDataException($"{index.ParametersFile}: '{p.Name}' is [{string.Join(", ", shape)}], the whole model needs [{string.Join(", ", p.Shape)}].");
                file.ReadFloats(p.Name, wholeParams.AsSpan((int)p.Offset, (int)p.Length));
            }
        PipelineParallel.Scatter(whole, wholeParams, _program, _program.Params, stage, Stages, tensorRank, TensorSize);
        _program.ParametersChanged();

        var (start, length) = Zero == ZeroStage.None ? (0, _program.Params.Length) : (_start, _length);
        var wholeStates = _optimizer.StateNames.ToDictionary(name => name, _ => new float[wholeCount]);
        foreach (var shard in index.Shards)
        {
            using var file = SafeTensorsFile.Open(Path.Combine(dir, shard.File));
            foreach (var name in _optimizer.StateNames)
                Array.Copy(ReadShard(file, shard, name), 0, wholeStates[name], shard.Start, shard.Length);
        }
        var state = new Dictionary<string, float[]>();
        foreach (var name in _optimizer.StateNames)
        {
            var slab = new float[_program.Params.Length];
            PipelineParallel.Scatter(whole, wholeStates[name], _program, slab, stage, Stages, tensorRank, TensorSize);
            state[name] = slab.AsSpan(start, length).ToArray();
        }
        if (Zero == ZeroStage.None) _optimizer.LoadState(index.OptimizerSteps, state);
        else _optimizer.LoadShardState(index.OptimizerSteps, state, start);
        return index.Step;
    }
}

/// <summary>
/// The index of a sharded checkpoint (written last). <paramref name="Tensor"/> and <paramref name="Pipeline"/>: the tensor
/// degree and the stages it was saved at (its files hold the whole model either way; 0 in older indexes means 1).
/// </summary>
internal sealed record CheckpointIndex(int Version, string Model, long Step, int World, int Zero, int Parameters, string Optimizer, long OptimizerSteps,
    string[] Slabs, string ParametersFile, ShardEntry[] Shards, int Tensor = 1, int Pipeline = 1);

/// <summary>One optimizer-state file and the parameter range it covers.</summary>
internal sealed record ShardEntry(string File, int Start, int Length);

[System.Text.Json.Serialization.JsonSerializable(typeof(CheckpointIndex))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class IndexJson : System.Text.Json.Serialization.JsonSerializerContext;

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
        if (index.Model != _program.ModelName || index.Parameters != _program.Params.Length)
            throw new InvalidDataException($"{dir} holds {index.Model} with {index.Parameters} parameters, not {_program.ModelName} with {_program.Params.Length}.");
        if (index.Optimizer != _optimizer.GetType().Name || !index.Slabs.SequenceEqual(_optimizer.StateNames))
            throw new InvalidDataException($"{dir} holds {index.Optimizer} state ({string.Join(", ", index.Slabs)}), not {_optimizer.GetType().Name}'s.");
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
                var values = file.ReadFloats("optimizer." + name);
                if (values.Length != shard.Length) throw new InvalidDataException($"{shard.File}: optimizer.{name} holds {values.Length} values, the index says {shard.Length}.");
                Array.Copy(values, lo - shard.Start, state[name], lo - start, hi - lo);
            }
        }
        if (Zero == ZeroStage.None) _optimizer.LoadState(index.OptimizerSteps, state);
        else _optimizer.LoadShardState(index.OptimizerSteps, state, start);
        return index.Step;
    }
}

/// <summary>The index of a sharded checkpoint (written last).</summary>
internal sealed record CheckpointIndex(int Version, string Model, long Step, int World, int Zero, int Parameters, string Optimizer, long OptimizerSteps,
    string[] Slabs, string ParametersFile, ShardEntry[] Shards);

/// <summary>One optimizer-state file and the parameter range it covers.</summary>
internal sealed record ShardEntry(string File, int Start, int Length);

[System.Text.Json.Serialization.JsonSerializable(typeof(CheckpointIndex))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class IndexJson : System.Text.Json.Serialization.JsonSerializerContext;

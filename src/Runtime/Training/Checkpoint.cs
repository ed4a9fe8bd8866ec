using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

using Kiln.Runtime;
using Kiln.Runtime.Precision;

namespace Kiln;

public sealed partial class Trainer
{
    /// <summary>The value of the <c>format</c> metadata key of a Kiln checkpoint.</summary>
    public const string CheckpointFormat = "kiln.checkpoint";

    /// <summary>The checkpoint layout version this build writes and reads.</summary>
    public const int CheckpointVersion = 1;

    /// <summary>A data position read from a checkpoint, applied by the next <see cref="Fit"/>.</summary>
    private (int Examples, long Epoch, int Position)? _resumeData;

    /// <summary>
    /// Writes everything a run needs to continue exactly, as one safetensors file written atomically (a crash during
    /// the save leaves the previous file whole): the fp32 parameters (one tensor per parameter, by name), the optimizer
    /// state (<c>optimizer.{slab}.{parameter}</c>, downloaded from the device when the update runs there), and as
    /// metadata the step, the seed, the optimizer's step count, the data position, the loss scaler and the rounding key.
    /// The file is ordinary safetensors: other tools can read the parameters.
    /// </summary>
    /// <param name="path">The file; its directory is created if needed.</param>
    public void SaveCheckpoint(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Program.SyncParametersToHost();
        var writer = new SafeTensorsWriter();
        foreach (var p in Program.Parameters)
            writer.Add(p.Name, Program.Params.AsMemory((int)p.Offset, (int)p.Length), Shape(p));
        var state = Optimizer.State;
        foreach (var (slab, values) in state)
            foreach (var p in Program.Parameters)
                writer.Add($"optimizer.{slab}.{p.Name}", values.AsMemory((int)p.Offset, (int)p.Length), Shape(p));

        var m = writer.Metadata;
        m["format"] = CheckpointFormat;
        m["format_version"] = CheckpointVersion.ToString(CultureInfo.InvariantCulture);
        m["kiln_version"] = System.Reflection.CustomAttributeExtensions.GetCustomAttribute<System.Reflection.AssemblyInformationalVersionAttribute>(typeof(Trainer).Assembly)?.InformationalVersion ?? "";
        m["model"] = Program.ModelName;
        m["precision"] = Program.Precision.ToString();
        m["step"] = Text(Step);
        m["total_steps"] = Text(Options.Steps);
        m["seed"] = Options.Seed.ToString(CultureInfo.InvariantCulture);
        m["batch_size"] = Text(Options.BatchSize);
        m["gradient_accumulation"] = Text(Options.GradientAccumulation);
        m["optimizer"] = Optimizer.GetType().Name;
        m["optimizer_steps"] = Text(Optimizer.StepCount);
        m["optimizer_slabs"] = string.Join(",", state.Keys);
        m["rounding_step"] = Text(Program.RoundingKey.Step);
        var data = _resumeData ?? (_sampler is { } sampler ? (sampler.Count, sampler.Epoch, sampler.Position) : null);
        if (data is { } d)
        {
            m["data_examples"] = Text(d.Examples);
            m["data_epoch"] = Text(d.Epoch);
            m["data_position"] = Text(d.Position);
        }
        if (LossScaler is { } scaler)
        {
            var s = scaler.State;
            m["loss_scale"] = s.Scale.ToString("R", CultureInfo.InvariantCulture);
            m["loss_scale_growth_tracker"] = Text(s.GrowthTracker);
            m["loss_scale_skipped"] = Text(s.SkippedSteps);
        }

        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        writer.Save(full);
    }

    /// <summary>
    /// Restores a checkpoint written by <see cref="SaveCheckpoint"/> into this trainer, which must train the same model
    /// (the same parameter names and shapes) with the same seed and optimizer. The next <see cref="Fit"/> continues the
    /// run from the saved step: on the CPU the result is bit for bit that of a run never interrupted.
    /// </summary>
    /// <exception cref="InvalidFileFormatException">The file is not a valid checkpoint (a truncated or hostile file included).</exception>
    /// <exception cref="InvalidOperationException">The checkpoint belongs to another model, seed or optimizer (the message says which).</exception>
    public void LoadCheckpoint(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = SafeTensorsFile.Open(path);
        var m = file.Metadata;
        string Get(string key) => m.TryGetValue(key, out var v) ? v
            : throw new InvalidFileFormatException("not a Kiln checkpoint", 8, $"the metadata has no '{key}'", path);
        long Long(string key) => long.TryParse(Get(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
            : throw new InvalidFileFormatException("invalid checkpoint metadata", 8, $"'{key}' is '{Get(key)}', not an integer", path);
        if (!m.TryGetValue("format", out var format) || format != CheckpointFormat)
            throw new InvalidFileFormatException("not a Kiln checkpoint", 8,
                "its metadata has no format = kiln.checkpoint (a safetensors file of parameters only can be loaded with ModelProgram.LoadParameters)", path);
        if (Long("format_version") != CheckpointVersion)
            throw new InvalidFileFormatException("unsupported checkpoint version", 8, $"version {Get("format_version")}; this build reads version {CheckpointVersion}", path);

        if (Get("seed") != Options.Seed.ToString(CultureInfo.InvariantCulture))
            throw new InvalidOperationException(
                $"{path} was saved by a run with Seed = {Get("seed")}, but this trainer's TrainOptions.Seed is {Options.Seed}. The seed keys the data order and dropout, " +
                "so continuing the run needs the same seed: create the trainer with Seed = " + Get("seed") + ".");
        if (Get("optimizer") != Optimizer.GetType().Name)
            throw new InvalidOperationException(
                $"{path} holds {Get("optimizer")} state, but this trainer uses {Optimizer.GetType().Name}; set TrainOptions.Optimizer to match the saved run.");
        CheckParameters(file, path);

        // Parameters.
        foreach (var p in Program.Parameters)
            file.ReadFloats(p.Name, Program.Params.AsSpan((int)p.Offset, (int)p.Length));
        Program.ParametersChanged();
        Program.ZeroGrads();

        // Optimizer state: one full-length slab per name, filled parameter by parameter.
        var slabs = new Dictionary<string, float[]>(StringComparer.Ordinal);
        long optimizerSteps = Long("optimizer_steps");
        foreach (var name in Optimizer.StateNames)
        {
            if (!Program.Parameters.All(p => file.Contains($"optimizer.{name}.{p.Name}")))
            {
                if (optimizerSteps == 0) continue; // saved before the first update: no state yet
                throw new InvalidFileFormatException("incomplete checkpoint", 8, $"optimizer slab '{name}' is missing for some parameters", path);
            }
            var slab = new float[Program.Params.Length];
            foreach (var p in Program.Parameters)
                file.ReadFloats($"optimizer.{name}.{p.Name}", slab.AsSpan((int)p.Offset, (int)p.Length));
            slabs[name] = slab;
        }
        if (slabs.Count == Optimizer.StateNames.Count) Optimizer.LoadState(optimizerSteps, slabs);

        Step = Long("step");
        Program.RoundingKey = (Options.Seed, Long("rounding_step"));
        _resumeData = m.ContainsKey("data_examples") ? ((int)Long("data_examples"), Long("data_epoch"), (int)Long("data_position")) : null;
        if (_resumeData is null) _sampler = null;
        if (LossScaler is not null && m.ContainsKey("loss_scale"))
        {
            if (!float.TryParse(Get("loss_scale"), NumberStyles.Float, CultureInfo.InvariantCulture, out float scale))
                throw new InvalidFileFormatException("invalid checkpoint metadata", 8, $"loss_scale is '{Get("loss_scale")}'", path);
            LossScaler.Restore(new DynamicLossScalerState(scale, (int)Long("loss_scale_growth_tracker"), Long("loss_scale_skipped")));
        }
    }

    /// <summary>Forgets the data position a loaded checkpoint set: the next <see cref="Fit"/> starts a fresh data order on its data.</summary>
    public void ResetDataOrder()
    {
        _resumeData = null;
        _sampler = null;
        _samplerFor = null;
    }

    private void CheckParameters(SafeTensorsFile file, string path)
    {
        var problems = new List<string>();
        foreach (var p in Program.Parameters)
        {
            if (!file.Contains(p.Name)) { problems.Add($"'{p.Name}' is missing"); continue; }
            var t = file[p.Name];
            if (!t.Shape.SequenceEqual(Shape(p)))
                problems.Add($"'{p.Name}' is [{string.Join(", ", t.Shape)}] in the file but [{string.Join(", ", p.Shape)}] in {Program.ModelName}");
        }
        if (problems.Count > 0)
            throw new InvalidOperationException(
                $"{path} does not fit {Program.ModelName} as constructed ({problems.Count} parameter(s) differ): {string.Join("; ", problems.Take(5))}" +
                $"{(problems.Count > 5 ? "; …" : "")}. It was saved from model '{(file.Metadata.TryGetValue("model", out var model) ? model : "?")}'; construct the model with the hyperparameters of the saved run.");
    }

    private static long[] Shape(ParameterInfo p) => Array.ConvertAll(p.Shape, d => (long)d);

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}

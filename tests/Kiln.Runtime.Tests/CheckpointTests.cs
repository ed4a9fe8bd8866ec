using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using Kiln;
using Kiln.Runtime;

namespace Kiln.Runtime.Tests;

/// <summary>
/// Checkpoints in one process: a resumed run equals the uninterrupted one bit for bit (parameters, optimizer state and
/// every logged step), the file is plain safetensors with the run's state as metadata, and a checkpoint that does not
/// fit (another seed, model, optimizer or data) is refused with the reason.
/// </summary>
public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static InMemoryDataset Data(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n * 4];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)(rng.NextDouble() * 2 - 1);
            y[i] = 1.5f * x[i * 4] - 2f * x[i * 4 + 1] + 0.5f * x[i * 4 + 2] + 3f * x[i * 4 + 3] + 0.7f + (float)(rng.NextDouble() - 0.5) * 0.1f;
        }
        return new InMemoryDataset(("x", TensorData.Float(x, n, 4)), ("y", TensorData.Float(y, n)));
    }

    private TrainOptions Options(string tag) => new()
    {
        Steps = 30, BatchSize = 8, GradientAccumulation = 2, LearningRate = 0.05f, WarmupSteps = 5, WeightDecay = 0.1f,
        Progress = ProgressMode.None, Seed = 4242, CheckpointEvery = 12,
        CheckpointPath = Path.Combine(_dir, tag, "ck-{step}.safetensors"), MetricsLog = Path.Combine(_dir, tag + ".jsonl"),
    };

    /// <summary>The logged steps as (step, loss, lr, grad_norm), without the timing fields.</summary>
    private static (long Step, double Loss, double Lr, double GradNorm)[] Steps(string log) =>
        File.ReadAllLines(log).Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("loss", out _))
            .Select(e => (e.GetProperty("step").GetInt64(), e.GetProperty("loss").GetDouble(), e.GetProperty("lr").GetDouble(), e.GetProperty("grad_norm").GetDouble())).ToArray();

    [Theory]
    [InlineData(OptimizerKind.AdamW)]
    [InlineData(OptimizerKind.Sgd)]
    public void A_run_resumed_from_a_checkpoint_equals_the_uninterrupted_run_bit_for_bit(OptimizerKind optimizer)
    {
        var data = Data(52, 3); // 52 examples, 16 per step: epochs end mid-run, with a remainder dropped
        var full = new Trainer(new LinearRegressionProgram(4), Options("full") with { Optimizer = optimizer, Momentum = 0.9f });
        full.Fit(data);
        Assert.Equal(30, full.Step);
        Assert.Equal(new[] { "ck-12.safetensors", "ck-24.safetensors", "ck-30.safetensors" },
            Directory.GetFiles(Path.Combine(_dir, "full")).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        var resumed = new Trainer(new LinearRegressionProgram(4), Options("resumed") with { Optimizer = optimizer, Momentum = 0.9f });
        resumed.LoadCheckpoint(Path.Combine(_dir, "full", "ck-12.safetensors"));
        Assert.Equal(12, resumed.Step);
        var result = resumed.Fit(data);
        Assert.Equal(18, result.StepsRun);

        Assert.Equal(full.Program.Params, resumed.Program.Params);
        foreach (var name in full.Optimizer.StateNames) Assert.Equal(full.Optimizer.State[name], resumed.Optimizer.State[name]);
        Assert.Equal(full.Optimizer.StepCount, resumed.Optimizer.StepCount);
        var expected = Steps(Path.Combine(_dir, "full.jsonl")).Where(s => s.Step > 12).ToArray();
        Assert.Equal(expected, Steps(Path.Combine(_dir, "resumed.jsonl")));
        // Both runs end with the same checkpoint, byte for byte.
        Assert.Equal(File.ReadAllBytes(Path.Combine(_dir, "full", "ck-30.safetensors")), File.ReadAllBytes(Path.Combine(_dir, "resumed", "ck-30.safetensors")));
    }

    [Fact]
    public void A_checkpoint_is_plain_safetensors_with_the_run_state_as_metadata()
    {
        var trainer = new Trainer(new LinearRegressionProgram(4), Options("meta"));
        trainer.Fit(Data(52, 3));
        using var file = SafeTensorsFile.Open(Path.Combine(_dir, "meta", "ck-30.safetensors"));
        Assert.Equal(trainer.Program.Params.AsSpan(0, 4).ToArray(), file.ReadFloats("w"));
        Assert.Equal(new long[] { 4 }, file["w"].Shape);
        Assert.Equal(trainer.Optimizer.State["m"].AsSpan(4, 1).ToArray(), file.ReadFloats("optimizer.m.b"));
        var m = file.Metadata;
        Assert.Equal(Trainer.CheckpointFormat, m["format"]);
        Assert.Equal("1", m["format_version"]);
        Assert.Equal("LinearRegression", m["model"]);
        Assert.Equal("30", m["step"]);
        Assert.Equal("4242", m["seed"]);
        Assert.Equal("AdamW", m["optimizer"]);
        Assert.Equal("30", m["optimizer_steps"]);
        Assert.Equal("52", m["data_examples"]);
        // 60 micro-batches of 8 from epochs of 6 batches (52 = 6·8 + 4 dropped): epoch 9, 6 batches in.
        Assert.Equal("9", m["data_epoch"]);
        Assert.Equal("48", m["data_position"]);
    }

    [Fact]
    public void Fit_trains_only_up_to_the_run_length()
    {
        var trainer = new Trainer(new LinearRegressionProgram(4), Options("len") with { CheckpointEvery = 0 });
        Assert.Equal(30, trainer.Fit(Data(52, 3)).StepsRun);
        var again = trainer.Fit(Data(52, 3));
        Assert.Equal(0, again.StepsRun);
        Assert.Equal(30, trainer.Step);
    }

    [Fact]
    public void Checkpoints_of_another_seed_model_or_optimizer_or_data_are_refused_with_the_reason()
    {
        var data = Data(52, 3);
        new Trainer(new LinearRegressionProgram(4), Options("src")).Fit(data);
        var path = Path.Combine(_dir, "src", "ck-12.safetensors");

        var seed = Assert.Throws<InvalidOperationException>(() => new Trainer(new LinearRegressionProgram(4), Options("x") with { Seed = 1 }).LoadCheckpoint(path));
        Assert.Contains("Seed = 4242", seed.Message);
        var model = Assert.Throws<InvalidOperationException>(() => new Trainer(new LinearRegressionProgram(5), Options("x")).LoadCheckpoint(path));
        Assert.Contains("'w' is [4] in the file but [5]", model.Message);
        var optimizer = Assert.Throws<InvalidOperationException>(() => new Trainer(new LinearRegressionProgram(4), Options("x") with { Optimizer = OptimizerKind.Sgd }).LoadCheckpoint(path));
        Assert.Contains("AdamW state", optimizer.Message);

        var other = new Trainer(new LinearRegressionProgram(4), Options("x"));
        other.LoadCheckpoint(path);
        var e = Assert.Throws<ArgumentException>(() => other.Fit(Data(40, 3)));
        Assert.Contains("52 examples", e.Message);
        other.ResetDataOrder();
        Assert.Equal(18, other.Fit(Data(40, 3)).StepsRun);

        // Parameters-only files are not checkpoints; truncated checkpoints are format errors.
        var parameters = Path.Combine(_dir, "params.safetensors");
        other.Program.SaveParameters(parameters);
        Assert.Contains("not a Kiln checkpoint", Assert.Throws<InvalidFileFormatException>(() => new Trainer(new LinearRegressionProgram(4), Options("x")).LoadCheckpoint(parameters)).Message);
        var bytes = File.ReadAllBytes(path);
        var truncated = Path.Combine(_dir, "truncated.safetensors");
        File.WriteAllBytes(truncated, bytes[..^3]);
        Assert.Equal(SafeTensorsError.Truncated, Assert.Throws<SafeTensorsFormatException>(() => new Trainer(new LinearRegressionProgram(4), Options("x")).LoadCheckpoint(truncated)).Error);
    }

    private static TableProgram Table(params (string Name, int[] Shape)[] parameters)
    {
        long offset = 0;
        var table = new ParameterInfo[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
        {
            long length = parameters[i].Shape.Aggregate(1L, (a, d) => a * d);
            table[i] = new ParameterInfo(parameters[i].Name, parameters[i].Shape, offset, length, InitKind.Zeros, 0f, true);
            offset += length;
        }
        return new TableProgram(table);
    }

    [Fact]
    public void Parameters_save_and_load_by_name_or_through_a_layout_that_renames_and_transposes()
    {
        var program = Table(("layer.weight", new[] { 2, 3 }), ("layer.bias", new[] { 3 }));
        for (int i = 0; i < program.Params.Length; i++) program.Params[i] = i + 1;
        var plain = Path.Combine(_dir, "plain.safetensors");
        program.SaveParameters(plain, new System.Collections.Generic.Dictionary<string, string> { ["source"] = "test" });
        // A layout like Hugging Face GPT-2's: other names, the matrix stored transposed.
        ParameterSource Hf(ParameterInfo p) => p.Name == "layer.weight" ? new("h.0.c_fc.weight", Transposed: true) : new("h.0.c_fc.bias");
        var hf = Path.Combine(_dir, "hf.safetensors");
        program.SaveParameters(hf, layout: Hf);
        using (var file = SafeTensorsFile.Open(hf))
        {
            Assert.Equal(new long[] { 3, 2 }, file["h.0.c_fc.weight"].Shape);
            Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, file.ReadFloats("h.0.c_fc.weight"));
        }

        var copy = Table(("layer.weight", new[] { 2, 3 }), ("layer.bias", new[] { 3 }));
        copy.LoadParameters(hf, Hf);
        Assert.Equal(program.Params, copy.Params);
        Array.Clear(copy.Params);
        copy.LoadParameters(plain);
        Assert.Equal(program.Params, copy.Params);

        var wrong = Table(("layer.weight", new[] { 3, 2 }), ("other", new[] { 1 }));
        var e = Assert.Throws<InvalidOperationException>(() => wrong.LoadParameters(plain));
        Assert.Contains("'layer.weight' is [2, 3] but layer.weight needs [3, 2]", e.Message);
        Assert.Contains("'other' (for other) is missing", e.Message);
    }
}

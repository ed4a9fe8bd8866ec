using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using Kiln;
using Kiln.Runtime;

namespace Kiln.Runtime.Tests;

public class TrainerTests
{
    private static readonly float[] TrueWeights = { 1.5f, -2f, 0.5f, 3f };
    private const float TrueBias = 0.7f;

    /// <summary>n examples of y = w·x + b (+ optional slope change for the eval set) with x ~ U[−1, 1).</summary>
    private static InMemoryDataset Linear(int n, int seed, float[] weights, float bias)
    {
        var rng = new System.Random(seed);
        int f = weights.Length;
        var x = new float[n * f];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            double s = bias;
            for (int j = 0; j < f; j++)
            {
                x[i * f + j] = (float)(rng.NextDouble() * 2 - 1);
                s += weights[j] * x[i * f + j];
            }
            y[i] = (float)s;
        }
        return new InMemoryDataset(("x", TensorData.Float(x, n, f)), ("y", TensorData.Float(y, n)));
    }

    private static TrainOptions Quiet => new() { Progress = ProgressMode.None };

    [Fact]
    public void Training_drives_linear_regression_loss_to_near_zero()
    {
        int seed = TestSeed.Fresh();
        var data = Linear(256, seed, TrueWeights, TrueBias);
        var program = new LinearRegressionProgram(4);
        var trainer = new Trainer(program, Quiet with { Steps = 300, BatchSize = 32, LearningRate = 0.05f, WeightDecay = 0f, Seed = (ulong)seed });
        double before = trainer.Evaluate(data);
        var result = trainer.Fit(data);
        double after = trainer.Evaluate(data);
        Assert.True(before > 1, $"initial loss {before} (seed {seed})");
        // Noise-free data: the optimum is exact, so only the cosine tail's step size limits the fit.
        Assert.True(after < 1e-4, $"final eval loss {after} (seed {seed})");
        Assert.True(result.FinalTrainLoss < 1e-3, $"final train loss {result.FinalTrainLoss} (seed {seed})");
        Assert.Equal(300, result.StepsRun);
        Assert.Equal(300, trainer.Step);
        Assert.True(result.ExamplesPerSecond > 0);
        Assert.Null(result.TokensPerSecond);
        for (int j = 0; j < 4; j++) Assert.True(Math.Abs(program.Params[j] - TrueWeights[j]) < 0.02, $"w[{j}] = {program.Params[j]} (seed {seed})");
    }

    [Fact]
    public void Two_accumulated_half_batches_step_like_one_full_batch()
    {
        int seed = TestSeed.Fresh();
        var data = Linear(64, seed, TrueWeights, TrueBias);
        var options = Quiet with { Steps = 3, Optimizer = OptimizerKind.Sgd, LearningRate = 0.05f, Schedule = ScheduleKind.Constant, ClipGradNorm = 0f, Seed = (ulong)seed };
        var full = new LinearRegressionProgram(4);
        var halves = new LinearRegressionProgram(4);
        new Trainer(full, options with { BatchSize = 8 }).Fit(data);
        new Trainer(halves, options with { BatchSize = 4, GradientAccumulation = 2 }).Fit(data);
        // The same examples enter each step; only the float summation order differs (a few ulp of values ≈ 1).
        for (int i = 0; i < full.Params.Length; i++)
            Assert.True(Math.Abs(full.Params[i] - halves.Params[i]) < 1e-5, $"param {i}: {full.Params[i]} vs {halves.Params[i]} (seed {seed})");
        Assert.NotEqual(new float[5], full.Params);
        Assert.Equal(new[] { (0L, 0), (0L, 1), (1L, 0), (1L, 1), (2L, 0), (2L, 1) }, halves.Contexts.Select(c => (c.Step, c.MicroStep)));
        Assert.All(halves.Contexts, c => Assert.Equal((ulong)seed, c.Seed));
    }

    [Fact]
    public void Early_stopping_restores_the_parameters_of_the_best_evaluation()
    {
        int seed = TestSeed.Fresh();
        // Training pulls w from 0 towards 3; the eval data wants w = 1, so eval loss falls, then rises.
        var train = Linear(128, seed, new[] { 3f }, 0f);
        var eval = Linear(50, seed + 1, new[] { 1f }, 0f);
        var program = new LinearRegressionProgram(1);
        var trainer = new Trainer(program, Quiet with
        {
            Steps = 500, BatchSize = 16, Optimizer = OptimizerKind.Sgd, Momentum = 0f, LearningRate = 0.05f,
            Schedule = ScheduleKind.Constant, EvalEvery = 2, EarlyStoppingPatience = 3, Seed = (ulong)seed,
        });
        var result = trainer.Fit(train, eval);
        Assert.True(result.StoppedEarly, $"did not stop early (seed {seed})");
        Assert.True(result.StepsRun < 500);
        Assert.Equal(result.BestEvalStep + 3 * 2, result.StepsRun);
        Assert.True(result.EvalHistory[^1].Loss > result.BestEvalLoss);
        Assert.Equal(result.EvalHistory.Min(e => e.Loss), result.BestEvalLoss);
        // The restored parameters reproduce the best evaluation exactly (same data, same arithmetic).
        Assert.Equal(result.BestEvalLoss!.Value, trainer.Evaluate(eval));
    }

    [Fact]
    public void Non_finite_steps_are_skipped_and_counted_without_touching_the_parameters()
    {
        int seed = TestSeed.Fresh();
        var data = Linear(64, seed, TrueWeights, TrueBias);
        var program = new LinearRegressionProgram(4) { PoisonStep = s => s == 3, PoisonGradient = s => s == 5 };
        var result = new Trainer(program, Quiet with { Steps = 20, BatchSize = 8, Seed = (ulong)seed }).Fit(data);
        Assert.Equal(2, result.SkippedSteps);
        Assert.Equal(20, result.StepsRun);
        Assert.All(program.Params, p => Assert.True(float.IsFinite(p)));
        Assert.All(program.Grads, g => Assert.Equal(0f, g));
    }

    [Fact]
    public void Consecutive_non_finite_steps_stop_training_with_a_message_that_says_why()
    {
        int seed = TestSeed.Fresh();
        var data = Linear(64, seed, TrueWeights, TrueBias);
        var options = Quiet with { Steps = 50, BatchSize = 8, Schedule = ScheduleKind.Constant, MaxConsecutiveSkips = 3, Seed = (ulong)seed };
        var program = new LinearRegressionProgram(4) { PoisonStep = s => s >= 4 };
        var trainer = new Trainer(program, options);
        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Fit(data));
        Assert.Contains("3 consecutive steps had a non-finite loss or gradient norm", e.Message);
        Assert.Contains("MaxConsecutiveSkips = 3", e.Message);
        Assert.Contains("step 7", e.Message);
        Assert.Equal(7, e.Step);
        Assert.Equal(3, e.ConsecutiveSkips);
        // The parameters are those after the last good step (the fourth).
        var reference = new LinearRegressionProgram(4);
        new Trainer(reference, options with { Steps = 4 }).Fit(data);
        Assert.Equal(reference.Params, program.Params);
    }

    [Fact]
    public void Metrics_log_holds_one_valid_json_object_per_step_and_per_evaluation()
    {
        int seed = TestSeed.Fresh();
        var data = Linear(64, seed, TrueWeights, TrueBias);
        string dir = Path.Combine(Path.GetTempPath(), "kiln-tests-" + Guid.NewGuid().ToString("N"));
        string path = Path.Combine(dir, "metrics.jsonl");
        try
        {
            var program = new LinearRegressionProgram(4) { PoisonStep = s => s == 2 };
            new Trainer(program, Quiet with { Steps = 10, BatchSize = 8, EvalEvery = 5, MetricsLog = path, Seed = (ulong)seed }).Fit(data, data);
            var lines = File.ReadAllLines(path);
            Assert.Equal(12, lines.Length);
            var docs = lines.Select(l => JsonDocument.Parse(l)).ToArray();
            var steps = docs.Where(d => d.RootElement.TryGetProperty("loss", out _)).ToArray();
            var evals = docs.Where(d => d.RootElement.TryGetProperty("eval_loss", out _)).ToArray();
            Assert.Equal(Enumerable.Range(1, 10), steps.Select(d => d.RootElement.GetProperty("step").GetInt32()));
            Assert.Equal(new[] { 5, 10 }, evals.Select(d => d.RootElement.GetProperty("step").GetInt32()));
            foreach (var d in steps)
            {
                var r = d.RootElement;
                bool skipped = r.GetProperty("skipped").GetBoolean();
                Assert.Equal(r.GetProperty("step").GetInt32() == 3, skipped);
                // JSON has no NaN: the skipped step's loss is null.
                Assert.Equal(skipped ? JsonValueKind.Null : JsonValueKind.Number, r.GetProperty("loss").ValueKind);
                Assert.True(r.GetProperty("lr").GetDouble() > 0);
                Assert.Equal(JsonValueKind.Number, r.GetProperty("examples_per_s").ValueKind);
                Assert.True(r.TryGetProperty("grad_norm", out _));
            }
            Assert.All(evals, d => Assert.True(d.RootElement.GetProperty("eval_loss").GetDouble() >= 0));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Evaluate_weights_the_final_partial_batch_by_its_examples()
    {
        var data = Linear(10, 4, TrueWeights, TrueBias);
        var program = new LinearRegressionProgram(4);
        var trainer = new Trainer(program, Quiet with { BatchSize = 4 });
        program.Params[0] = 0.3f;
        var all = data.GetBatch(Enumerable.Range(0, 10).ToArray());
        var predicted = trainer.Predict(all).Floats!;
        double expected = predicted.Zip(all["y"].Floats!, (p, y) => (double)(p - y) * (p - y)).Average();
        // Per-batch means are float; re-weighting them costs a few float ulp of the loss.
        Assert.Equal(expected, trainer.Evaluate(data), 5);
    }

    [Fact]
    public void Plain_progress_prints_a_line_about_every_five_percent()
    {
        var data = Linear(64, 2, TrueWeights, TrueBias);
        var output = new StringWriter();
        var trainer = new Trainer(new LinearRegressionProgram(4), new TrainOptions { Steps = 40, BatchSize = 8, Progress = ProgressMode.Plain }) { PlainOutput = output };
        trainer.Fit(data);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(20, lines.Length);
        Assert.StartsWith("step 2/40  loss ", lines[0]);
        Assert.StartsWith("step 40/40", lines[^1]);
    }

    [Fact]
    public void Device_strings_are_parsed_and_a_malformed_one_names_the_accepted_forms()
    {
        new TrainOptions { Device = "CPU" }.Validate();
        new TrainOptions { Device = "cuda" }.Validate();
        new TrainOptions { Device = "cuda:3" }.Validate();
        new TrainOptions { Device = " auto " }.Validate();
        Assert.Equal(new Kiln.Runtime.Cuda.DeviceName(Kiln.Runtime.Cuda.DeviceKind.Cuda, 3), Kiln.Runtime.Cuda.DeviceName.Parse("CUDA:3"));
        foreach (var bad in new[] { "cuda:-1", "cuda:x", "tpu", "cuda:" })
        {
            var e = Assert.Throws<ArgumentException>(() => new TrainOptions { Device = bad }.Validate());
            Assert.Contains($"\"{bad}\"", e.Message);
            Assert.Contains("\"cuda:N\"", e.Message);
        }
    }

    [Theory]
    [InlineData(nameof(TrainOptions.BatchSize))]
    [InlineData(nameof(TrainOptions.Beta2))]
    [InlineData(nameof(TrainOptions.MinLearningRate))]
    [InlineData(nameof(TrainOptions.GradientAccumulation))]
    [InlineData(nameof(TrainOptions.EarlyStoppingPatience))]
    public void Bad_options_are_refused_naming_the_option(string option)
    {
        var bad = option switch
        {
            nameof(TrainOptions.BatchSize) => new TrainOptions { BatchSize = 0 },
            nameof(TrainOptions.Beta2) => new TrainOptions { Beta2 = 1f },
            nameof(TrainOptions.MinLearningRate) => new TrainOptions { MinLearningRate = 1f },
            nameof(TrainOptions.GradientAccumulation) => new TrainOptions { GradientAccumulation = 0 },
            _ => new TrainOptions { EarlyStoppingPatience = 2 },
        };
        var e = Assert.Throws<ArgumentException>(bad.Validate);
        Assert.Equal(option, e.ParamName);
        Assert.Contains("TrainOptions." + option, e.Message);
    }

    [Fact]
    public void Data_without_a_loss_input_is_refused_before_training()
    {
        var data = new InMemoryDataset(("x", TensorData.Float(new float[8], 8, 1)), ("target", TensorData.Float(new float[8], 8)));
        var trainer = new Trainer(new LinearRegressionProgram(1), Quiet with { BatchSize = 4 });
        var e = Assert.Throws<ArgumentException>(() => trainer.Fit(data));
        Assert.Contains("no tensor named 'y'", e.Message);
        Assert.Contains("x, target", e.Message);
    }
}

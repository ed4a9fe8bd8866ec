using System;
using System.Diagnostics;
using System.IO;
using Kiln;
using Kiln.Runtime;
using Spirals;

// Two interleaved noisy spirals (a classic non-linearly-separable task), split 80/20.
int points = 4000;
long steps = 1500;
string device = "cpu";
var precision = PrecisionMode.Auto;
foreach (var arg in args)
{
    if (arg.StartsWith("--steps=", StringComparison.Ordinal)) steps = long.Parse(arg.AsSpan(8));
    else if (arg.StartsWith("--points=", StringComparison.Ordinal)) points = int.Parse(arg.AsSpan(9));
    else if (arg.StartsWith("--device=", StringComparison.Ordinal)) device = arg[9..];
    else if (arg.StartsWith("--precision=", StringComparison.Ordinal) && Enum.TryParse(arg[12..], ignoreCase: true, out PrecisionMode p)) precision = p;
    else
    {
        Console.Error.WriteLine($"unknown argument '{arg}'; use --steps=N --points=N --device=cpu|cuda|cuda:N|auto --precision=Auto|Float32|BFloat16|Float16");
        return 2;
    }
}

var (x, y) = SpiralData.Generate(points, turns: 2.0, noise: 0.08, seed: 7);
var all = new InMemoryDataset(("x", TensorData.Float(x, points, 2)), ("label", TensorData.Int(y, points)));
var (train, heldOut) = all.Split(0.2, seed: 11);

var model = new SpiralClassifier();
Trainer trainer;
try
{
    trainer = model.CreateTrainer(new TrainOptions
    {
        Steps = steps,
        BatchSize = 64,
        LearningRate = 3e-3f,
        WarmupSteps = 50,
        WeightDecay = 0.01f,
        EvalEvery = 250,
        Device = device,          // the CPU by default: this model is far too small to gain from a GPU
        Precision = precision,
        MetricsLog = Path.Combine(AppContext.BaseDirectory, "spirals-metrics.jsonl"), // one JSON object per step and eval
    });
}
catch (Kiln.Runtime.Cuda.GpuUnavailableException e)
{
    Console.Error.WriteLine(e.Message); // what is missing and how to fix it
    return 2;
}
Console.WriteLine($"Kiln example: {model.GetType().Name}, {trainer.Program.Params.Length:N0} parameters, {train.Count} train / {heldOut.Count} held-out points, {trainer.Program.Device} ({trainer.Program.Precision})");

var clock = Stopwatch.StartNew();
var result = trainer.Fit(train, heldOut);
clock.Stop();

double accuracy = SpiralData.Accuracy(trainer, heldOut);
Console.WriteLine($"steps {result.StepsRun}, final train loss {result.FinalTrainLoss:F4}, held-out loss {trainer.Evaluate(heldOut):F4}");
Console.WriteLine($"held-out accuracy {accuracy:P2} ({clock.Elapsed.TotalSeconds:F1} s, {result.ExamplesPerSecond:N0} examples/s, {clock.Elapsed.TotalMilliseconds / Math.Max(1, result.StepsRun):F2} ms/step)");
Console.WriteLine(accuracy >= 0.98 ? "PASS: held-out accuracy ≥ 98%" : "BELOW TARGET: held-out accuracy < 98%");
return accuracy >= 0.98 ? 0 : 1;

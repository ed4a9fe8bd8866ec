using System.Diagnostics;
using System.Globalization;
using Kiln;
using Kiln.Runtime;
using KilnClassifier;

// Trains an MLP classifier on a CSV file and prints the held-out accuracy. Usage:
//   dotnet run -- [data.csv] [--label=COLUMN] [--steps=N] [--device=cpu|cuda|auto]
// The label column is the last one unless --label names it; every other column must be numeric. Without a file it
// writes sample.csv (three classes of points on overlapping rings) and trains on that.
string? path = null, label = null;
long steps = 1500;
string device = "cpu";   // an MLP this small runs fastest on the CPU; pass --device=cuda for a GPU
foreach (var arg in args)
{
    string Value() => arg[(arg.IndexOf('=') + 1)..];
    if (arg.StartsWith("--label=")) label = Value();
    else if (arg.StartsWith("--steps=")) steps = long.Parse(Value());
    else if (arg.StartsWith("--device=")) device = Value();
    else if (!arg.StartsWith("--")) path = arg;
    else { Console.Error.WriteLine($"unknown option {arg}"); return 2; }
}
if (path is null)
{
    path = "sample.csv";
    var rng = new Random(5);
    using var writer = new StreamWriter(path);
    writer.WriteLine("x,y,noise,ring");
    for (int i = 0; i < 3000; i++)
    {
        int ring = i % 3;
        double gaussian = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        double angle = rng.NextDouble() * 2 * Math.PI, radius = 1 + ring + 0.35 * gaussian;   // neighbouring rings overlap a little
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{radius * Math.Cos(angle):F4},{radius * Math.Sin(angle):F4},{rng.NextDouble():F4},{(char)('A' + ring)}"));
    }
    Console.WriteLine($"No CSV file given: wrote {path} (3,000 points on three overlapping rings, label column 'ring') to train on.");
}

var data = CsvData.Load(path, label);
data.Standardize();
int features = data.FeatureNames.Length, classes = data.Classes.Length;
var all = new InMemoryDataset(("x", TensorData.Float(data.Features, data.Rows, features)), ("label", TensorData.Int(data.Labels, data.Rows)));
var (train, heldOut) = all.Split(0.2, seed: 1);

var model = new Classifier(features: features, classes: classes);
var trainer = model.CreateTrainer(new TrainOptions { Steps = steps, BatchSize = 64, LearningRate = 3e-3f, WarmupSteps = 50, EvalEvery = Math.Max(1, steps / 5), Device = device });
Console.WriteLine($"{path}: {data.Rows:N0} rows, {features} features ({string.Join(", ", data.FeatureNames)}), {classes} classes ({string.Join(", ", data.Classes)}); {trainer.Program.Params.Length:N0} parameters on {trainer.Program.Device}");

var clock = Stopwatch.StartNew();
var result = trainer.Fit(train, heldOut);

// Accuracy: the arg-max of the logits against the label, over the held-out rows.
var rows = Enumerable.Range(0, heldOut.Count).ToArray();
var batch = heldOut.GetBatch(rows);
var logits = trainer.Predict(new Batch(("x", batch["x"]))).Floats!;
int correct = 0;
for (int r = 0; r < rows.Length; r++)
{
    var row = logits.AsSpan(r * classes, classes);
    int best = 0;
    for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
    if (best == batch["label"].Ints![r]) correct++;
}
Console.WriteLine($"{result.StepsRun} steps in {clock.Elapsed.TotalSeconds:F1} s; held-out loss {trainer.Evaluate(heldOut):F4}; held-out accuracy {(double)correct / rows.Length:P1} ({correct}/{rows.Length})");
return 0;

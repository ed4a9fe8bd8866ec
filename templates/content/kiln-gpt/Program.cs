using System.Diagnostics;
using System.Text;
using Kiln;
using Kiln.Runtime;
using KilnGpt;

// Trains a small GPT on a text file, one byte per token (no tokenizer files needed), and prints the held-out loss
// in bits per byte and a sample. Usage:
//   dotnet run -- [text-file] [--steps=N] [--layers=N] [--context=N] [--device=cpu|cuda|auto] [--precision=Auto|Float32|BFloat16]
// Without a file it writes sample.txt (generated sums such as "12+7=19") and trains on that.
string? path = null;
long steps = 600;
int layers = 2, context = 64, dim = 128, heads = 4, batch = 16;
string device = "auto";
var precision = PrecisionMode.Auto;
foreach (var arg in args)
{
    string Value() => arg[(arg.IndexOf('=') + 1)..];
    if (arg.StartsWith("--steps=")) steps = long.Parse(Value());
    else if (arg.StartsWith("--layers=")) layers = int.Parse(Value());
    else if (arg.StartsWith("--context=")) context = int.Parse(Value());
    else if (arg.StartsWith("--device=")) device = Value();
    else if (arg.StartsWith("--precision=")) precision = Enum.Parse<PrecisionMode>(Value(), ignoreCase: true);
    else if (!arg.StartsWith("--")) path = arg;
    else { Console.Error.WriteLine($"unknown option {arg}"); return 2; }
}
if (path is null)
{
    path = "sample.txt";
    var rng = new Random(3);
    var text = new StringBuilder();
    while (text.Length < 200_000) { int a = rng.Next(100), b = rng.Next(100); text.Append($"{a}+{b}={a + b}\n"); }
    File.WriteAllText(path, text.ToString());
    Console.WriteLine($"No text file given: wrote {path} ({text.Length:N0} bytes of sums) to train on.");
}

// Bytes are tokens; the last 10% of the file is held out.
var bytes = File.ReadAllBytes(path);
var ids = Array.ConvertAll(bytes, b => (int)b);
int split = ids.Length * 9 / 10;
var train = new TokenWindows(ids.AsMemory(0, split), context);
var heldOut = new TokenWindows(ids.AsMemory(split), context, stride: context);

var model = new Gpt(vocab: 256, context: context, dim: dim, heads: heads, layers: layers);
var trainer = model.CreateTrainer(new TrainOptions
{
    Steps = steps,
    BatchSize = batch,
    LearningRate = 2e-3f,
    MinLearningRate = 2e-4f,
    WarmupSteps = Math.Min(50, steps / 10),
    EvalEvery = Math.Max(1, steps / 4),
    EvalBatches = 8,
    Device = device,
    Precision = precision,
});
Console.WriteLine($"GPT: {layers} layers, dim {dim}, {heads} heads, context {context}, {trainer.Program.Params.Length:N0} parameters; {path}: {bytes.Length:N0} bytes; {trainer.Program.Device} ({trainer.Program.Precision})");

var clock = Stopwatch.StartNew();
var result = trainer.Fit(train, heldOut);
double loss = trainer.Evaluate(heldOut);
Console.WriteLine($"{result.StepsRun} steps in {clock.Elapsed.TotalSeconds:F1} s; held-out loss {loss:F3} nats/byte = {loss / Math.Log(2):F3} bits/byte (uniform: 8)");

// Sampling: feed the last `context` bytes, draw the next byte from the softmax of its logits, repeat.
var generated = ids.Skip(split).Take(16).ToList();   // the prompt: the first bytes of the held-out text
var sampler = new Random(42);
for (int i = 0; i < 120; i++)
{
    var window = generated.Skip(Math.Max(0, generated.Count - context)).ToArray();
    var logits = trainer.Predict(new Batch(("idx", TensorData.Int(window, 1, window.Length)))).Floats!;
    var last = logits.AsSpan((window.Length - 1) * 256, 256);
    float max = float.NegativeInfinity;
    foreach (var l in last) max = Math.Max(max, l);
    double total = 0;
    var p = new double[256];
    for (int v = 0; v < 256; v++) total += p[v] = Math.Exp((last[v] - max) / 0.8);   // temperature 0.8
    double r = sampler.NextDouble() * total;
    int next = 0;
    while (next < 255 && (r -= p[next]) > 0) next++;
    generated.Add(next);
}
Console.WriteLine("sample:");
Console.WriteLine(Encoding.UTF8.GetString(generated.Select(t => (byte)t).ToArray()));
return 0;

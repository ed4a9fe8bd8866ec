using System;
using System.Diagnostics;
using System.Linq;
using Adder;
using Kiln;
using Kiln.Runtime;

// A GPT learns n-digit addition from generated problems. A problem a + b is the digits of a and b (zero-padded to n)
// followed by the n + 1 digits of the sum, least significant first (the order a carry flows), so "12 + 39" with n = 2
// is the sequence 1 2 3 9 1 5 0. The model reads the first 2n digits and must produce the last n + 1; 10% of all
// problems (at most 10,000) are held out, and the result is the exact-match accuracy on them (every digit of the sum right).
int digits = 2;
long steps = 3000;
string device = "cpu";
var precision = PrecisionMode.Auto;
foreach (var arg in args)
{
    string Value() => arg[(arg.IndexOf('=') + 1)..];
    if (arg.StartsWith("--digits=", StringComparison.Ordinal)) digits = int.Parse(Value());
    else if (arg.StartsWith("--steps=", StringComparison.Ordinal)) steps = long.Parse(Value());
    else if (arg.StartsWith("--device=", StringComparison.Ordinal)) device = Value();
    else if (arg.StartsWith("--precision=", StringComparison.Ordinal) && Enum.TryParse(Value(), ignoreCase: true, out PrecisionMode p)) precision = p;
    else
    {
        Console.Error.WriteLine($"unknown argument '{arg}'; use --digits=N (1–4) --steps=N --device=cpu|cuda|auto --precision=Auto|Float32|BFloat16");
        return 2;
    }
}
if (digits is < 1 or > 4) { Console.Error.WriteLine("--digits must be 1 to 4 (all problems are enumerated)."); return 2; }

int n = digits, length = 3 * n + 1, count = (int)Math.Pow(10, 2 * n);
int[] Sequence(int a, int b)
{
    var s = new int[length];
    int sum = a + b;
    for (int i = 0; i < n; i++)
    {
        s[n - 1 - i] = a % 10; a /= 10;
        s[2 * n - 1 - i] = b % 10; b /= 10;
    }
    for (int i = 0; i <= n; i++) { s[2 * n + i] = sum % 10; sum /= 10; }
    return s;
}

// All problems in a fixed shuffled order; the first 10% (at most 10,000) are held out.
var order = Enumerable.Range(0, count).ToArray();
new Random(2024).Shuffle(order);
int heldOutCount = Math.Min(count / 10, 10_000);
(InMemoryDataset Data, int[][] Sequences) Problems(ReadOnlySpan<int> ids)
{
    var idx = new int[ids.Length * (length - 1)];
    var targets = new int[idx.Length];
    var sequences = new int[ids.Length][];
    for (int k = 0; k < ids.Length; k++)
    {
        var s = sequences[k] = Sequence(ids[k] / (int)Math.Pow(10, n), ids[k] % (int)Math.Pow(10, n));
        for (int t = 0; t < length - 1; t++)
        {
            idx[k * (length - 1) + t] = s[t];
            // Only the answer is predicted: positions before the last question digit are ignored (-100).
            targets[k * (length - 1) + t] = t >= 2 * n - 1 ? s[t + 1] : -100;
        }
    }
    return (new InMemoryDataset(("idx", TensorData.Int(idx, ids.Length, length - 1)), ("targets", TensorData.Int(targets, ids.Length, length - 1))), sequences);
}
var (train, _) = Problems(order.AsSpan(heldOutCount));
var (heldOut, heldOutSequences) = Problems(order.AsSpan(0, heldOutCount));

var model = new AdderGpt(context: length - 1);
var trainer = model.CreateTrainer(new TrainOptions
{
    Steps = steps, BatchSize = 64, LearningRate = 3e-3f, MinLearningRate = 1e-4f, WarmupSteps = 100, WeightDecay = 0.01f,
    EvalEvery = Math.Max(1, steps / 6), EvalBatches = 8, Device = device, Precision = precision,
});
Console.WriteLine($"Kiln example: {n}-digit addition, {count - heldOutCount:N0} training problems, {heldOutCount:N0} held out; " +
                  $"GPT with {trainer.Program.Params.Length:N0} parameters on {trainer.Program.Device} ({trainer.Program.Precision})");
var clock = Stopwatch.StartNew();
var result = trainer.Fit(train, heldOut);
double trainSeconds = clock.Elapsed.TotalSeconds;

// Greedy decoding of the n + 1 answer digits of the held-out problems, 1,000 at a time: one Forward per digit.
int rows = heldOutSequences.Length;
var prefix = heldOutSequences.Select(s => s.Take(2 * n).ToList()).ToArray();
for (int start = 0; start < rows; start += 1000)
{
    int chunk = Math.Min(1000, rows - start);
    for (int step = 0; step <= n; step++)
    {
        int t = 2 * n + step;
        var batch = new Batch(("idx", TensorData.Int(prefix.Skip(start).Take(chunk).SelectMany(p => p).ToArray(), chunk, t)));
        var logits = trainer.Predict(batch).Floats!;
        int vocab = logits.Length / (chunk * t);
        for (int r = 0; r < chunk; r++)
        {
            var last = logits.AsSpan((r * t + t - 1) * vocab, vocab);
            int best = 0;
            for (int v = 1; v < vocab; v++) if (last[v] > last[best]) best = v;
            prefix[start + r].Add(best);
        }
    }
}
int correct = Enumerable.Range(0, rows).Count(r => prefix[r].SequenceEqual(heldOutSequences[r]));
double accuracy = (double)correct / rows;
Console.WriteLine($"steps {result.StepsRun}, final train loss {result.FinalTrainLoss:F4}, held-out loss {trainer.Evaluate(heldOut):F4}, {trainSeconds:F1} s");
Console.WriteLine($"held-out exact match {accuracy:P2} ({correct}/{rows} sums with every digit right)");
var sample = heldOutSequences[0];
string Number(int[] s, int from, int count) => string.Concat(s.Skip(from).Take(count).Select(d => (char)('0' + d)));
Console.WriteLine($"for example {Number(sample, 0, n)} + {Number(sample, n, n)} = {new string(Number(prefix[0].ToArray(), 2 * n, n + 1).Reverse().ToArray())}");
Console.WriteLine(accuracy >= 0.99 ? "PASS: held-out exact match ≥ 99%" : "BELOW TARGET: held-out exact match < 99%");
return accuracy >= 0.99 ? 0 : 1;

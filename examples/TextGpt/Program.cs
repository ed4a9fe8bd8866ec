using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Kiln;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;
using Kiln.Text;
using TextGpt;

// TextGpt: train a GPT on any text file, resume it, sample from it.
//   TextGpt train [FILE] [--out DIR] [--tokenizer bytes|gpt2|r50k_base|cl100k_base|o200k_base] [--steps N] [--layers N]
//                 [--dim N] [--heads N] [--context N] [--batch N] [--lr X] [--every N] [--device D] [--precision P]
//                 [--ranks N]   data-parallel on N simulated ranks (threads); under mpirun -np N it runs one rank per process
//                 [--tensor T]  with tensor parallelism too: the N ranks are N / T data ranks × T tensor ranks (CPU)
//   TextGpt resume [--out DIR] [--steps N]           continues from DIR/checkpoint.safetensors up to N steps in all
//   TextGpt sample [--out DIR] [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
// Without FILE, train writes DIR/sample.txt (generated sentences) and trains on that. DIR (default runs/textgpt) gets
// the token files, config.json, checkpoint.safetensors, metrics.jsonl and loss.png.
const string Usage = "usage: TextGpt train [FILE] [options] [--ranks N] | TextGpt resume [--out DIR] [--steps N] | TextGpt sample [--out DIR] [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]";
if (args.Length == 0 || args[0] is not ("train" or "resume" or "sample"))
{
    Console.Error.WriteLine(Usage);
    return 2;
}
var options = new Dictionary<string, string>(StringComparer.Ordinal);
string? file = null;
for (int i = 1; i < args.Length; i++)
{
    if (args[i].StartsWith("--", StringComparison.Ordinal))
    {
        if (i + 1 >= args.Length) { Console.Error.WriteLine($"{args[i]} needs a value\n{Usage}"); return 2; }
        options[args[i][2..]] = args[++i];
    }
    else file = args[i];
}
// Under mpirun only rank 0 talks (every rank prepares the same token files, atomically).
if (RankEnvironment.Detect() is { Launcher: "openmpi", Rank: > 0 }) Console.SetOut(TextWriter.Null);
string Option(string name, string fallback) => options.TryGetValue(name, out var v) ? v : fallback;
int Int(string name, int fallback) => int.Parse(Option(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
float Float(string name, float fallback) => float.Parse(Option(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
string dir = Path.GetFullPath(Option("out", Path.Combine("runs", "textgpt")));
string configPath = Path.Combine(dir, "config.json"), checkpoint = Path.Combine(dir, "checkpoint.safetensors");

try
{
    switch (args[0])
    {
        case "train":
        {
            Directory.CreateDirectory(dir);
            if (file is null)
            {
                file = Path.Combine(dir, "sample.txt");
                File.WriteAllText(file, Sentences(400_000));
                Console.WriteLine($"No text file given: wrote {file} (generated sentences) to train on.");
            }
            var config = new RunConfig(
                Option("tokenizer", "bytes"), Int("context", 128), Int("dim", 128), Int("heads", 4), Int("layers", 4),
                Int("batch", 16), Float("lr", 2e-3f), Int("steps", 600), Int("every", 200), Option("device", "auto"), Option("precision", "Auto"));
            var tokenizer = TextTokenizer.Create(config.Tokenizer);
            var converted = TextToTokens.Convert(new[] { file }, Path.Combine(dir, "train.bin"), tokenizer, 0.1, Path.Combine(dir, "val.bin"));
            var sizes = new DataSizes(converted.Characters, converted.TrainTokens + converted.ValidationTokens);
            File.WriteAllText(configPath, JsonSerializer.Serialize(new SavedRun(config, sizes), new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"{file}: {converted.Characters:N0} characters → {converted.TrainTokens:N0} training and {converted.ValidationTokens:N0} validation tokens ({tokenizer.Name})");
            return TrainRanks(config, sizes, tokenizer, resume: false);
        }
        case "resume":
        {
            var saved = Load();
            var config = options.ContainsKey("steps") ? saved.Config with { Steps = Int("steps", saved.Config.Steps) } : saved.Config;
            if (config.Steps != saved.Config.Steps)
                File.WriteAllText(configPath, JsonSerializer.Serialize(saved with { Config = config }, new JsonSerializerOptions { WriteIndented = true }));
            return TrainRanks(config, saved.Sizes, TextTokenizer.Create(config.Tokenizer), resume: true);
        }
        default:
        {
            var saved = Load();
            var tokenizer = TextTokenizer.Create(saved.Config.Tokenizer);
            var program = NewModel(saved.Config, tokenizer).CreateProgram(saved.Config.Device, Enum.Parse<PrecisionMode>(saved.Config.Precision, true));
            program.LoadParameters(checkpoint);
            var sampling = new SamplingOptions
            {
                Temperature = Float("temperature", 0.8f), TopK = Int("top-k", 0), TopP = Float("top-p", 0.95f),
                Seed = ulong.Parse(Option("seed", "1"), CultureInfo.InvariantCulture),
            };
            Sample(program, tokenizer, saved.Config.Context, Option("prompt", "\n"), Int("tokens", 200), sampling);
            return 0;
        }
    }
}
catch (Exception e) when (e is IOException or InvalidOperationException or ArgumentException or FormatException or JsonException or AggregateException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

// One process, N simulated ranks (--ranks N, of which --tensor T per tensor group), or one rank of an mpirun launch:
// data-parallel (and tensor-parallel) training in every case, each data rank on its share of the same batches; rank 0
// prints, plots, samples and writes the checkpoint.
int TrainRanks(RunConfig config, DataSizes sizes, TextTokenizer tokenizer, bool resume)
{
    int tensor = Int("tensor", 1);
    if (tensor > 1 && resume) throw new ArgumentException("--tensor trains from the start: a tensor-parallel run saves the model's parameters (for sample), not a resumable checkpoint.");
    var launch = RankEnvironment.Detect();
    if (launch.Launcher == "openmpi" && launch.WorldSize > 1)
    {
        var mesh = MeshRank.Split(MpiCommunicator.World(), tensor, 1);
        if (mesh.World.Rank != 0) Console.SetOut(TextWriter.Null);
        return Train(config, sizes, tokenizer, resume, mesh);
    }
    int ranks = Math.Max(Int("ranks", 1), tensor);
    if (ranks % tensor != 0) throw new ArgumentException($"--ranks {ranks} does not divide into tensor groups of {tensor}.");
    if (ranks <= 1) return Train(config, sizes, tokenizer, resume, null);
    int code = 0;
    MeshRank.Simulate(ranks / tensor, tensor, 1, mesh =>
    {
        int c = Train(config, sizes, tokenizer, resume, mesh);
        if (mesh.World.Rank == 0) code = c;
    });
    return code;
}

int Train(RunConfig config, DataSizes sizes, TextTokenizer tokenizer, bool resume, MeshRank? mesh)
{
    bool lead = mesh is null || mesh.World.Rank == 0;
    int tensor = mesh?.Tensor.Size ?? 1;
    using var trainTokens = TokenFile.Open(Path.Combine(dir, "train.bin"));
    using var valTokens = TokenFile.Open(Path.Combine(dir, "val.bin"));
    var train = new TokenWindows(trainTokens, config.Context);
    var heldOut = new TokenWindows(valTokens, config.Context, stride: config.Context);
    var options = new TrainOptions
    {
        Steps = config.Steps, BatchSize = config.Batch, LearningRate = config.LearningRate, MinLearningRate = config.LearningRate / 10,
        WarmupSteps = Math.Clamp(config.Steps / 5, 1, 200), Beta2 = 0.95f, WeightDecay = 0.1f,
        EvalEvery = config.Every, EvalBatches = 20, CheckpointEvery = tensor > 1 ? 0 : config.Every, CheckpointPath = checkpoint,
        MetricsLog = Path.Combine(dir, "metrics.jsonl"), Device = tensor > 1 ? "cpu" : config.Device, Precision = Enum.Parse<PrecisionMode>(config.Precision, true),
        Communicator = mesh?.Data,
    };
    // A tensor rank starts as its piece of the whole model's initialisation (the same weights at every degree).
    ModelProgram? whole = null;
    Trainer trainer;
    if (tensor > 1)
    {
        whole = NewModel(config, tokenizer).CreateProgram();
        var program = NewModel(config, tokenizer, tensor).CreateProgram();
        TensorParallel.Initialize(program, whole, options.Seed, mesh!.Tensor.Rank, tensor);
        mesh.Attach(program);
        trainer = new Trainer(program, options, initializeParameters: false);
    }
    else trainer = NewModel(config, tokenizer).CreateTrainer(options);
    if (resume)
    {
        trainer.LoadCheckpoint(checkpoint);
        if (lead) Console.WriteLine($"Resuming {checkpoint} at step {trainer.Step} of {config.Steps}");
    }
    if (lead)
        Console.WriteLine($"GPT: {config.Layers} layers, dim {config.Dim}, {config.Heads} heads, context {config.Context}, vocabulary {tokenizer.VocabularySize:N0} ({tokenizer.Name}); " +
                          $"{trainer.Program.Params.Length:N0} parameters{(tensor > 1 ? " per tensor rank" : "")} on {trainer.Program.Device} ({trainer.Program.Precision})" +
                          (mesh is null ? "" : $"; {mesh.Data.Size} data-parallel ranks ({mesh.World.Engine}), {config.Batch / mesh.Data.Size} sequences each per step") +
                          (tensor > 1 ? $", each {tensor} tensor-parallel ranks" : ""));
    var result = trainer.Fit(train, heldOut);
    double loss = trainer.Evaluate(heldOut); // every rank: tensor ranks evaluate together
    var final = trainer.Program;
    if (whole is not null)
    {
        // The whole model from the tensor ranks' pieces (every rank takes part), saved for sampling.
        TensorParallel.Gather(final, final.Params, mesh!.Tensor, whole.Parameters, whole.Params);
        whole.ParametersChanged();
        final = whole;
        if (lead) whole.SaveParameters(checkpoint, new Dictionary<string, string> { ["step"] = trainer.Step.ToString(CultureInfo.InvariantCulture) });
    }
    if (!lead) return 0;
    double bitsPerByte = loss / Math.Log(2) * sizes.Tokens / sizes.Characters;
    Console.WriteLine($"{result.StepsRun} steps ({trainer.Step} in all), {result.TokensPerSecond ?? 0:N0} tokens/s; held-out loss {loss:F3} nats/token ≈ {bitsPerByte:F3} bits/character");
    string plot = PlotLoss(Path.Combine(dir, "metrics.jsonl"), Path.Combine(dir, "loss.png"));
    Console.WriteLine($"checkpoint: {checkpoint}{(whole is not null ? " (the whole model's parameters: for sample, not resume)" : "")}; loss curve: {plot}");
    var prompt = new int[Math.Min(8, (int)valTokens.Length)];
    valTokens.CopyTo(0, prompt);
    Sample(final, tokenizer, config.Context, tokenizer.Decode(prompt), 120, new SamplingOptions { Temperature = 0.8f, TopP = 0.95f });
    return 0;
}

void Sample(ModelProgram program, TextTokenizer tokenizer, int context, string prompt, int count, SamplingOptions sampling)
{
    var promptTokens = tokenizer.Encode(prompt);
    if (promptTokens.Length == 0) promptTokens = tokenizer.EndOfText is int eot ? new[] { eot } : tokenizer.Encode("\n");
    var clock = Stopwatch.StartNew();
    var generated = Generation.Generate(program, promptTokens, count, context, sampling, tokenizer.EndOfText);
    double seconds = clock.Elapsed.TotalSeconds;
    Console.WriteLine($"sample ({generated.Length} tokens, {generated.Length / seconds:F1} tokens/s {(program.SupportsDecode ? "with the KV cache" : "without a KV cache")}):");
    Console.WriteLine(tokenizer.Decode(promptTokens.Concat(generated).ToArray()));
}

Gpt NewModel(RunConfig c, TextTokenizer tokenizer, int tensor = 1) => new(vocab: tokenizer.VocabularySize, context: c.Context, dim: c.Dim, heads: c.Heads, layers: c.Layers, tensor: tensor);

SavedRun Load()
{
    if (!File.Exists(configPath)) throw new IOException($"{configPath} does not exist; run 'TextGpt train' first (or pass --out DIR).");
    if (!File.Exists(checkpoint)) throw new IOException($"{checkpoint} does not exist; the run saved no checkpoint yet.");
    return JsonSerializer.Deserialize<SavedRun>(File.ReadAllText(configPath)) ?? throw new IOException($"{configPath} is empty.");
}

// The training and eval losses by step, from the metrics log, as a PNG.
static string PlotLoss(string metrics, string png)
{
    var train = new List<(double Step, double Loss)>();
    var eval = new List<(double Step, double Loss)>();
    foreach (var line in File.ReadLines(metrics))
    {
        using var doc = JsonDocument.Parse(line);
        var e = doc.RootElement;
        double step = e.GetProperty("step").GetDouble();
        if (e.TryGetProperty("loss", out var l) && l.ValueKind == JsonValueKind.Number) train.Add((step, l.GetDouble()));
        if (e.TryGetProperty("eval_loss", out var v) && v.ValueKind == JsonValueKind.Number) eval.Add((step, v.GetDouble()));
    }
    var plot = new ScottPlot.Plot();
    var t = plot.Add.ScatterLine(train.Select(p => p.Step).ToArray(), train.Select(p => p.Loss).ToArray());
    t.LegendText = "train loss";
    if (eval.Count > 0)
    {
        var h = plot.Add.ScatterLine(eval.Select(p => p.Step).ToArray(), eval.Select(p => p.Loss).ToArray());
        h.LegendText = "held-out loss";
        h.MarkerSize = 6;
    }
    plot.Title("TextGpt");
    plot.XLabel("step");
    plot.YLabel("cross-entropy (nats/token)");
    plot.ShowLegend();
    plot.SavePng(png, 900, 500);
    return png;
}

// Sentences from a small grammar: text a character-level model learns to spell within minutes.
static string Sentences(int characters)
{
    string[] subjects = { "the old sailor", "a quiet child", "the baker", "my neighbour", "the tired horse", "a clever fox", "the young queen", "our teacher" };
    string[] verbs = { "walks to", "looks at", "sings about", "dreams of", "waits for", "paints", "remembers", "follows" };
    string[] objects = { "the river", "a small garden", "the northern hills", "an empty house", "the morning market", "a silver bell", "the long road", "the city gate" };
    string[] endings = { " every morning.", " in the rain.", " without a word.", " before the night falls.", ".", " with great care." };
    var rng = new Random(12);
    var text = new StringBuilder();
    while (text.Length < characters)
    {
        string s = $"{subjects[rng.Next(subjects.Length)]} {verbs[rng.Next(verbs.Length)]} {objects[rng.Next(objects.Length)]}{endings[rng.Next(endings.Length)]}";
        text.Append(char.ToUpperInvariant(s[0])).Append(s, 1, s.Length - 1).Append(rng.Next(4) == 0 ? "\n" : " ");
    }
    return text.ToString();
}

/// <summary>The settings of a run, kept in config.json so resume and sample rebuild the same model.</summary>
internal sealed record RunConfig(string Tokenizer, int Context, int Dim, int Heads, int Layers, int Batch, float LearningRate, int Steps, int Every, string Device, string Precision);

/// <summary>Characters and tokens of the text, to convert the loss per token to bits per character.</summary>
internal sealed record DataSizes(long Characters, long Tokens);

internal sealed record SavedRun(RunConfig Config, DataSizes Sizes);

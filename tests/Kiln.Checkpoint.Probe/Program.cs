using System;
using System.Globalization;
using System.IO;
using System.Security.Cryptography;
using Kiln;
using Kiln.Runtime;

// Commands (each prints its results on stdout):
//   train DIR STEPS EVERY PRECISION [CHECKPOINT]  trains STEPS steps of ProbeMlp (dropout, AdamW, cosine schedule),
//       saving DIR/ck-{step}.safetensors every EVERY steps and logging DIR/metrics.jsonl; resumes from CHECKPOINT when
//       given; prints "params <sha256>" of the final parameters.
//   save-loop PATH  trains one step at a time and saves PATH after each, printing "saving N" and "saved N", forever.
//   verify PATH     loads PATH into a fresh trainer and prints "ok step N".
try
{
    switch (args[0])
    {
        case "train":
        {
            var precision = Enum.Parse<PrecisionMode>(args[4]);
            var trainer = NewTrainer(long.Parse(args[2], CultureInfo.InvariantCulture), precision, args[1], long.Parse(args[3], CultureInfo.InvariantCulture));
            if (args.Length > 5) trainer.LoadCheckpoint(args[5]);
            trainer.Fit(Data());
            Console.WriteLine($"params {Convert.ToHexString(SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(trainer.Program.Params.AsSpan())))}");
            return 0;
        }
        case "save-loop":
        {
            var trainer = NewTrainer(long.MaxValue / 2, PrecisionMode.Float32, null, 0, dim: 256);
            if (File.Exists(args[1])) trainer.LoadCheckpoint(args[1]);
            var data = Data();
            for (long step = trainer.Step + 1; ; step++)
            {
                trainer.Fit(data, untilStep: step);
                Console.WriteLine($"saving {step}");
                trainer.SaveCheckpoint(args[1]);
                Console.WriteLine($"saved {step}");
            }
        }
        case "verify":
        {
            var trainer = NewTrainer(long.MaxValue / 2, PrecisionMode.Float32, null, 0, dim: 256);
            trainer.LoadCheckpoint(args[1]);
            Console.WriteLine($"ok step {trainer.Step}");
            return 0;
        }
        default:
            Console.Error.WriteLine($"unknown command {args[0]}");
            return 2;
    }
}
catch (Exception e)
{
    Console.Error.WriteLine(e);
    return 1;
}

static Trainer NewTrainer(long steps, PrecisionMode precision, string? dir, long every, int dim = 32)
{
    var model = new ProbeMlp(dim: dim);
    return model.CreateTrainer(new TrainOptions
    {
        Steps = steps, BatchSize = 16, LearningRate = 3e-3f, WarmupSteps = 5, Seed = 99, Device = "cpu", Precision = precision,
        StochasticRounding = precision != PrecisionMode.Float32, Progress = ProgressMode.None,
        CheckpointEvery = every, CheckpointPath = dir is null ? null : Path.Combine(dir, "ck-{step}.safetensors"),
        MetricsLog = dir is null ? null : Path.Combine(dir, "metrics.jsonl"),
    });
}

static InMemoryDataset Data()
{
    var rng = new Random(5);
    int n = 200;
    var x = new float[n * 6];
    var y = new int[n];
    for (int i = 0; i < n; i++)
    {
        for (int j = 0; j < 6; j++) x[i * 6 + j] = (float)(rng.NextDouble() * 2 - 1);
        y[i] = (x[i * 6] * x[i * 6 + 1] > 0 ? 1 : 0) + (x[i * 6 + 2] > 0.3 ? 2 : 0);
    }
    return new InMemoryDataset(("x", TensorData.Float(x, n, 6)), ("label", TensorData.Int(y, n)));
}

/// <summary>An MLP with layer norm and dropout, so a resume must restore the random streams as well as the weights.</summary>
[Model]
public partial class ProbeMlp(int features = 6, int dim = 32, int classes = 4)
{
    Linear input = new(features, dim);
    LayerNorm norm = new(dim);
    Dropout drop = new(0.2f);
    Linear hidden = new(dim, dim), head = new(dim, classes);

    public Tensor Forward([Shape("B", "features")] Tensor x)
    {
        var h = drop.Forward(Ops.Gelu(norm.Forward(input.Forward(x))));
        return head.Forward(h + drop.Forward(Ops.Gelu(hidden.Forward(h))));
    }

    [Loss] public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> label) => Ops.CrossEntropy(Forward(x), label);
}

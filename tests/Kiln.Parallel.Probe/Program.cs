using System;
using System.Globalization;
using System.Linq;
using Kiln;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;

// kiln-parallel-probe mpi|simulate N [--zero=0|1|2] [--tensor=T] [--steps=4]: data × tensor parallel training of a small
// MLP (its hidden layer split over T tensor ranks, Megatron-style) on a fixed global batch of 24 rows per step; world
// rank w is data rank w / T, tensor rank w % T. Rank 0 prints "step s loss L" lines and "params S" (the sum of squares
// of the whole model's parameters, gathered over the tensor ranks).
var mode = args.Length > 0 ? args[0] : "simulate";
int Option(string name, int fallback) => int.Parse(args.FirstOrDefault(a => a.StartsWith(name, StringComparison.Ordinal))?[name.Length..] ?? fallback.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
int zero = Option("--zero=", 0), steps = Option("--steps=", 4), tp = Option("--tensor=", 1);

void Train(ICommunicator world, ICommunicator data, ICommunicator tensor)
{
    const int global = 24;
    var program = new ProbeMlp(tensor: tp).CreateProgram();
    var whole = new ProbeMlp(tensor: 1).CreateProgram();
    TensorParallel.Initialize(program, whole, 3, tensor.Rank, tp);
    if (tp > 1) program.TensorGroup = tensor;
    var dp = new DataParallel(program, new AdamW(), data, (ZeroStage)zero);
    dp.SynchronizeParameters(); // the data ranks already agree; the broadcast is exercised anyway
    var rng = new Random(11);
    int rows = global / data.Size;
    for (int s = 0; s < steps; s++)
    {
        var x = Enumerable.Range(0, global * 6).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var y = Enumerable.Range(0, global * 3).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var mine = new Batch(("x", TensorData.Float(x.AsSpan(data.Rank * rows * 6, rows * 6).ToArray(), rows, 6)),
                             ("y", TensorData.Float(y.AsSpan(data.Rank * rows * 3, rows * 3).ToArray(), rows, 3)));
        var r = dp.Step(new[] { mine }, new StepContext(1, s, 0), 0.01f, maxGradNorm: 1.0);
        if (world.Rank == 0) Console.WriteLine(FormattableString.Invariant($"step {s} loss {r.Loss:R}"));
    }
    var parameters = new float[whole.Params.Length];
    TensorParallel.Gather(program, program.Params, tensor, whole.Parameters, parameters);
    if (world.Rank == 0)
    {
        Console.WriteLine(FormattableString.Invariant($"params {parameters.Sum(v => (double)v * v):R}"));
        Console.WriteLine($"engine {world.Engine} ranks {world.Size} (data {data.Size} × tensor {tensor.Size})");
    }
}

if (mode == "mpi")
{
    var world = MpiCommunicator.World(timeout: TimeSpan.FromSeconds(30));
    if (world.Size % tp != 0) throw new ArgumentException($"{world.Size} processes do not divide into tensor groups of {tp}.");
    int d = world.Rank / tp, t = world.Rank % tp;
    Train(world, world.Split(t, d, "data"), world.Split(d, t, "tensor"));
}
else
{
    int size = int.Parse(args[1], CultureInfo.InvariantCulture), dps = size / tp;
    var tensorGroups = Enumerable.Range(0, dps).Select(_ => InProcessGroup.Create(tp, "tensor")).ToArray();
    var dataGroups = Enumerable.Range(0, tp).Select(_ => InProcessGroup.Create(dps, "data")).ToArray();
    InProcessGroup.Run(size, world => Train(world, dataGroups[world.Rank % tp][world.Rank / tp], tensorGroups[world.Rank / tp][world.Rank % tp]), "world");
}
return 0;

[Model]
public partial class ProbeMlp(int din = 6, int hidden = 16, int dout = 3, int tensor = 1)
{
    [ColumnParallel] Linear fc1 = new(din, hidden / tensor);
    [RowParallel] Linear fc2 = new(hidden / tensor, dout);
    public Tensor Forward([Shape("B", "din")] Tensor x) =>
        Ops.TensorReduce(Ops.MatMul(Ops.Tanh(fc1.Forward(Ops.TensorReplicate(x))), fc2.Weight.T)) + fc2.Bias;
    [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

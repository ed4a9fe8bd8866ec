using System;
using System.Globalization;
using System.Linq;
using Kiln;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;

// kiln-parallel-probe mpi|simulate N [--zero=0|1|2] [--steps=4]: data-parallel training of a small MLP on a fixed global
// batch of 24 rows per step; rank 0 prints "step s loss L" lines and "params S" (the sum of squares of the parameters).
var mode = args.Length > 0 ? args[0] : "simulate";
int zero = int.Parse(args.FirstOrDefault(a => a.StartsWith("--zero=", StringComparison.Ordinal))?[7..] ?? "0", CultureInfo.InvariantCulture);
int steps = int.Parse(args.FirstOrDefault(a => a.StartsWith("--steps=", StringComparison.Ordinal))?[8..] ?? "4", CultureInfo.InvariantCulture);

void Train(ICommunicator comm)
{
    const int global = 24;
    var program = new ProbeMlp().CreateProgram();
    program.InitParameters(comm.Rank == 0 ? 3ul : 77ul);
    var dp = new DataParallel(program, new AdamW(), comm, (ZeroStage)zero);
    dp.SynchronizeParameters();
    var rng = new Random(11);
    int rows = global / comm.Size;
    for (int s = 0; s < steps; s++)
    {
        var x = Enumerable.Range(0, global * 6).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var y = Enumerable.Range(0, global * 3).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var mine = new Batch(("x", TensorData.Float(x.AsSpan(comm.Rank * rows * 6, rows * 6).ToArray(), rows, 6)),
                             ("y", TensorData.Float(y.AsSpan(comm.Rank * rows * 3, rows * 3).ToArray(), rows, 3)));
        var r = dp.Step(new[] { mine }, new StepContext(1, s, 0), 0.01f, maxGradNorm: 1.0);
        if (comm.Rank == 0) Console.WriteLine(FormattableString.Invariant($"step {s} loss {r.Loss:R}"));
    }
    if (comm.Rank == 0)
    {
        Console.WriteLine(FormattableString.Invariant($"params {program.Params.Sum(v => (double)v * v):R}"));
        Console.WriteLine($"engine {comm.Engine} ranks {comm.Size}");
    }
}

if (mode == "mpi") Train(MpiCommunicator.World(timeout: TimeSpan.FromSeconds(30)));
else InProcessGroup.Run(int.Parse(args[1], CultureInfo.InvariantCulture), Train);
return 0;

[Model]
public partial class ProbeMlp(int din = 6, int hidden = 16, int dout = 3)
{
    Linear fc1 = new(din, hidden), fc2 = new(hidden, dout);
    public Tensor Forward([Shape("B", "din")] Tensor x) => fc2.Forward(Ops.Tanh(fc1.Forward(x)));
    [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

using System;
using System.Globalization;
using System.Linq;
using Kiln;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;

// kiln-parallel-probe mpi|simulate N [--zero=0|1|2] [--tensor=T | --pipeline=P] [--steps=4]: data × tensor parallel
// training of a small MLP (its hidden layer split over T tensor ranks, Megatron-style), or data × pipeline parallel
// training of a deep residual MLP (its 4 blocks split over P stages), on a fixed global batch of 24 rows per step.
// World rank w is data rank w / T (or w / P) and tensor rank (or stage) w % T. The last stage of data rank 0 prints
// "step s loss L" lines and "params S" (the sum of squares of the whole model's parameters, gathered).
var mode = args.Length > 0 ? args[0] : "simulate";
int Option(string name, int fallback) => int.Parse(args.FirstOrDefault(a => a.StartsWith(name, StringComparison.Ordinal))?[name.Length..] ?? fallback.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
int zero = Option("--zero=", 0), steps = Option("--steps=", 4), tp = Option("--tensor=", 1), pp = Option("--pipeline=", 1);
bool staged = args.Any(a => a.StartsWith("--pipeline=", StringComparison.Ordinal)); // the deep model, on pp stages (1 included)

// The MLP split over the tensor ranks.
void Train(MeshRank mesh)
{
    const int global = 24;
    var program = new ProbeMlp(tensor: tp).CreateProgram();
    var whole = new ProbeMlp(tensor: 1).CreateProgram();
    TensorParallel.Initialize(program, whole, 3, mesh.Tensor.Rank, tp);
    mesh.Attach(program);
    Run(mesh, program, global, printer: mesh.World.Rank == 0);
    var parameters = new float[whole.Params.Length];
    TensorParallel.Gather(program, program.Params, mesh.Tensor, whole.Parameters, parameters);
    Report(mesh, parameters, mesh.World.Rank == 0, $"tensor {mesh.Tensor.Size}");
}

// The deep MLP's blocks split over the stages.
void TrainStages(MeshRank mesh)
{
    const int global = 24, layers = 4;
    var stage = new ProbeDeep(layers: layers / pp).CreateProgram();
    var whole = new ProbeDeep(layers: layers).CreateProgram();
    PipelineParallel.Initialize(stage, whole, 3, mesh.Pipeline.Rank, pp);
    mesh.Attach(stage);
    bool printer = mesh.Data.Rank == 0 && mesh.Pipeline.Rank == mesh.Pipeline.Size - 1; // the last stage has the loss
    Run(mesh, stage, global, printer);
    // Every stage's parameters to every rank of the pipeline group (an all-gather of the equal-length slabs), then the whole model.
    var all = new float[stage.Params.Length * mesh.Pipeline.Size];
    mesh.Pipeline.AllGather(stage.Params, all);
    var stages = Enumerable.Range(0, mesh.Pipeline.Size).Select(r => all.AsSpan(r * stage.Params.Length, stage.Params.Length).ToArray()).ToList();
    var parameters = new float[whole.Params.Length];
    PipelineParallel.Gather(stage, stages, whole.Parameters, parameters);
    Report(mesh, parameters, printer, $"pipeline {mesh.Pipeline.Size}");
}

void Run(MeshRank mesh, ModelProgram program, int global, bool printer)
{
    var dp = new DataParallel(program, new AdamW(), mesh.Data, (ZeroStage)zero);
    dp.SynchronizeParameters(); // the data ranks already agree; the broadcast is exercised anyway
    var rng = new Random(11);
    int rows = global / mesh.Data.Size;
    for (int s = 0; s < steps; s++)
    {
        var x = Enumerable.Range(0, global * 6).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var y = Enumerable.Range(0, global * 3).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var mine = new Batch(("x", TensorData.Float(x.AsSpan(mesh.Data.Rank * rows * 6, rows * 6).ToArray(), rows, 6)),
                             ("y", TensorData.Float(y.AsSpan(mesh.Data.Rank * rows * 3, rows * 3).ToArray(), rows, 3)));
        var r = dp.Step(new[] { mine }, new StepContext(1, s, 0), 0.01f, maxGradNorm: 1.0);
        if (printer) Console.WriteLine(FormattableString.Invariant($"step {s} loss {r.Loss:R}"));
    }
}

void Report(MeshRank mesh, float[] parameters, bool printer, string split)
{
    if (!printer) return;
    Console.WriteLine(FormattableString.Invariant($"params {parameters.Sum(v => (double)v * v):R}"));
    Console.WriteLine($"engine {mesh.World.Engine} ranks {mesh.World.Size} (data {mesh.Data.Size} × {split})");
}

int tensors = staged ? 1 : tp, stagesCount = staged ? pp : 1;
Action<MeshRank> body = staged ? TrainStages : Train;
if (mode == "mpi") body(MeshRank.Split(MpiCommunicator.World(timeout: TimeSpan.FromSeconds(30)), tensors, stagesCount));
else
{
    int size = int.Parse(args[1], CultureInfo.InvariantCulture);
    MeshRank.Simulate(size / (tensors * stagesCount), tensors, stagesCount, body);
}
return 0;

[Module]
public partial class ProbeResidual(int dim)
{
    Linear up = new(dim, 2 * dim), down = new(2 * dim, dim);
    public Tensor Forward(Tensor x) => x + down.Forward(Ops.Tanh(up.Forward(x)));
}

[Model, Parallel(Pipeline = 2, MicroBatches = 2)]
public partial class ProbeDeep(int din = 6, int dim = 8, int dout = 3, int layers = 4)
{
    Linear input = new(din, dim);
    ProbeResidual[] blocks = Module.Repeat(layers, _ => new ProbeResidual(dim));
    Linear head = new(dim, dout);
    public Tensor Forward([Shape("B", "din")] Tensor x)
    {
        var h = input.Forward(x);
        foreach (var block in blocks) h = block.Forward(h);
        return head.Forward(h);
    }
    [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

[Model]
public partial class ProbeMlp(int din = 6, int hidden = 16, int dout = 3, int tensor = 1)
{
    [ColumnParallel] Linear fc1 = new(din, hidden / tensor);
    [RowParallel] Linear fc2 = new(hidden / tensor, dout);
    public Tensor Forward([Shape("B", "din")] Tensor x) =>
        Ops.TensorReduce(Ops.MatMul(Ops.Tanh(fc1.Forward(Ops.TensorReplicate(x))), fc2.Weight.T)) + fc2.Bias;
    [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

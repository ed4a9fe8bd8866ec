using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;
using Xunit;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// Pipeline parallelism on simulated ranks: models declared with [Parallel(Pipeline = 2)] compile to stage programs;
/// two (and four) stages, each built with its share of the layers, compute the one-device loss and gradients, and
/// PP = 2, DP × PP and DP × TP × PP = 2 × 2 × 2 (ZeRO-1 and ZeRO-2, micro-batches, clipping on the global norm) train
/// like one device, for a residual MLP and a GPT.
/// </summary>
public sealed class PipelineParallelTests
{
    private readonly ITestOutputHelper _out;
    public PipelineParallelTests(ITestOutputHelper output) => _out = output;

    private const string Source = """
        using Kiln;
        namespace P;

        [Module]
        public partial class Residual(int dim, int tensor)
        {
            LayerNorm norm = new(dim);
            [ColumnParallel] Linear up = new(dim, 2 * dim / tensor);
            [RowParallel] Linear down = new(2 * dim / tensor, dim);
            public Tensor Forward(Tensor x) =>
                x + Ops.TensorReduce(Ops.MatMul(Ops.Gelu(up.Forward(Ops.TensorReplicate(norm.Forward(x)))), down.Weight.T)) + down.Bias;
        }

        [Model, Parallel(Pipeline = 2, MicroBatches = 2)]
        public partial class Deep(int din = 6, int dim = 16, int dout = 3, int layers = 4, int tensor = 1)
        {
            Linear input = new(din, dim);
            Residual[] blocks = Module.Repeat(layers, _ => new Residual(dim, tensor));
            Linear head = new(dim, dout);

            public Tensor Forward([Shape("B", "din")] Tensor x)
            {
                var h = input.Forward(x);
                foreach (var block in blocks) h = block.Forward(h);
                return head.Forward(h);
            }
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }
        """;

    private static readonly Lazy<Assembly> Models = new(() => GeneratorHarness.Build(Source,
        ParallelTestModels.Gpt("P", "Gpt", "Data = 2, Tensor = 2, Pipeline = 2, MicroBatches = 2, Batch = 8, Sequence = 8", vocab: 128, context: 8, dim: 32, heads: 4, layers: 4, tensor: true)));

    /// <summary>The model with <paramref name="layers"/> repeated blocks at tensor degree <paramref name="tensor"/>.</summary>
    private static ModelProgram New(string model, int layers, int tensor = 1) => model == "P.Deep"
        ? GeneratorHarness.CreateProgram(Models.Value, model, null, null, null, layers, tensor)
        : GeneratorHarness.CreateProgram(Models.Value, model, null, null, null, null, layers, tensor);

    private const int Global = 8, Layers = 4;

    private static Batch Rows(string model, int step, int from, int count)
    {
        var rng = new Random(1000 + step);
        if (model == "P.Deep")
        {
            var x = Enumerable.Range(0, Global * 6).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var y = Enumerable.Range(0, Global * 3).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            return new Batch(("x", TensorData.Float(x.AsSpan(from * 6, count * 6).ToArray(), count, 6)), ("y", TensorData.Float(y.AsSpan(from * 3, count * 3).ToArray(), count, 3)));
        }
        var tok = Enumerable.Range(0, Global * 8).Select(_ => rng.Next(128)).ToArray();
        var tgt = tok.Select(t => (t * 5 + 3) % 128).ToArray();
        return new Batch(("idx", TensorData.Int(tok.AsSpan(from * 8, count * 8).ToArray(), count, 8)), ("targets", TensorData.Int(tgt.AsSpan(from * 8, count * 8).ToArray(), count, 8)));
    }

    [Theory]
    [InlineData("P.Deep", 2)]
    [InlineData("P.Deep", 4)]
    [InlineData("P.Gpt", 2)]
    public void Pipeline_stages_compute_the_one_device_loss_and_gradients(string model, int stages)
    {
        var whole = New(model, Layers);
        Assert.True(whole.SupportsPipeline);
        Assert.Contains(whole.Parameters, p => p.Staged);
        whole.InitParameters(11);
        var batch = Rows(model, 0, 0, Global);
        whole.ZeroGrads();
        float expected = whole.TrainStep(batch, new StepContext(1, 0, 0));

        var programs = new ModelProgram[stages];
        var losses = new float[stages];
        InProcessGroup.Run(stages, comm =>
        {
            var stage = programs[comm.Rank] = New(model, Layers / stages);
            PipelineParallel.Initialize(stage, New(model, Layers), 11, comm.Rank, stages);
            stage.PipelineGroup = comm;
            stage.ZeroGrads();
            losses[comm.Rank] = stage.TrainStep(batch, new StepContext(1, 0, 0));
        }, axis: "pipeline");
        Assert.True(Math.Abs(losses[^1] - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"{model} PP={stages}: the last stage's loss {losses[^1]:R}, one device {expected:R}");

        // Staged parameters: each stage has its layers' gradients; the others: the stages' gradients sum to the one-device ones.
        for (int s = 0; s < stages; s++)
        {
            var want = new float[programs[s].Grads.Length];
            PipelineParallel.Scatter(whole.Parameters, whole.Grads, programs[s], want, s, stages);
            var got = (float[])programs[s].Grads.Clone();
            foreach (var p in programs[s].Parameters.Where(p => !p.Staged))
                for (long i = p.Offset; i < p.Offset + p.Length; i++)
                    got[i] = programs.Sum(x => x.Grads[i]);
            ParallelTestModels.AssertClose($"{model} PP={stages} stage {s} gradients", got, want, 1e-5, programs[s].Parameters);
        }
    }

    private const int Steps = 3;

    private static (double[] Losses, double[] Norms, float[] Params) Single(string model)
    {
        var program = New(model, Layers);
        program.InitParameters(5);
        var opt = new Sgd(momentum: 0.9f);
        var losses = new double[Steps]; var norms = new double[Steps];
        for (int s = 0; s < Steps; s++)
        {
            program.ZeroGrads();
            losses[s] = program.TrainStep(Rows(model, s, 0, Global), new StepContext(1, s, 0));
            norms[s] = GradientClipping.GlobalNorm(program.Grads);
            if (norms[s] > 0.5) program.ScaleGradients((float)(0.5 / (norms[s] + 1e-6)));
            opt.Step(program, 0.05f);
        }
        return (losses, norms, (float[])program.Params.Clone());
    }

    [Theory]
    [InlineData("P.Deep", 1, 1, 2, 1, ZeroStage.None)]
    [InlineData("P.Deep", 2, 1, 2, 2, ZeroStage.OptimizerState)]
    [InlineData("P.Deep", 2, 2, 2, 2, ZeroStage.Gradients)]
    [InlineData("P.Gpt", 1, 1, 2, 1, ZeroStage.None)]
    [InlineData("P.Gpt", 2, 2, 2, 2, ZeroStage.OptimizerState)]
    [InlineData("P.Gpt", 2, 1, 2, 2, ZeroStage.Gradients)]
    public void Data_tensor_and_pipeline_parallel_ranks_train_like_one_device(string model, int dp, int tp, int pp, int micro, ZeroStage zero)
    {
        var (l1, n1, p1) = Single(model);
        int world = dp * tp * pp;
        int W(int d, int s, int t) => MeshRank.WorldRank(d, s, t, tp, pp);
        var losses = new double[world][]; var norms = new double[world][];
        var programs = new ModelProgram[world];
        MeshRank.Simulate(dp, tp, pp, mesh =>
        {
            int w = mesh.World.Rank;
            var program = programs[w] = New(model, Layers / pp, tp);
            PipelineParallel.Initialize(program, New(model, Layers), 5, mesh.Pipeline.Rank, pp, mesh.Tensor.Rank, tp);
            mesh.Attach(program);
            var driver = new DataParallel(program, new Sgd(momentum: 0.9f), mesh.Data, zero);
            losses[w] = new double[Steps]; norms[w] = new double[Steps];
            int rows = Global / dp, each = rows / micro;
            for (int step = 0; step < Steps; step++)
            {
                var micros = Enumerable.Range(0, micro).Select(m => Rows(model, step, mesh.Data.Rank * rows + m * each, each)).ToList();
                var r = driver.Step(micros, new StepContext(1, step, 0), 0.05f, 0.5);
                losses[w][step] = r.Loss; norms[w][step] = r.GradientNorm;
            }
        });
        for (int rank = 0; rank < world; rank++)
            for (int step = 0; step < Steps; step++)
            {
                Assert.True(Math.Abs(losses[rank][step] - l1[step]) <= 1e-5 * (1 + Math.Abs(l1[step])), $"{model} DP={dp}×TP={tp}×PP={pp} rank {rank} step {step}: loss {losses[rank][step]:R}, one device {l1[step]:R}");
                Assert.True(Math.Abs(norms[rank][step] - n1[step]) <= 1e-4 * n1[step], $"{model} DP={dp}×TP={tp}×PP={pp} rank {rank} step {step}: gradient norm {norms[rank][step]:R}, one device {n1[step]:R}");
            }
        var whole = New(model, Layers);
        for (int d = 0; d < dp; d++)
        {
            var stageValues = Enumerable.Range(0, pp).Select(s =>
            {
                var stage = programs[W(d, s, 0)];
                var values = new float[TensorParallel.WholeParameters(stage, tp).Sum(p => p.Length)];
                TensorParallel.Gather(stage, Enumerable.Range(0, tp).Select(t => programs[W(d, s, t)].Params).ToList(), TensorParallel.WholeParameters(stage, tp), values);
                return values;
            }).ToList();
            var parameters = new float[p1.Length];
            PipelineParallel.Gather(programs[W(d, 0, 0)], stageValues, whole.Parameters, parameters, tp);
            ParallelTestModels.AssertClose($"{model} DP={dp}×TP={tp}×PP={pp} data rank {d}: parameters after {Steps} steps", parameters, p1, 2e-5, whole.Parameters);
        }
        _out.WriteLine($"{model} DP={dp}×TP={tp}×PP={pp}×{micro} {zero}: losses {string.Join(", ", l1.Select(v => v.ToString("F5")))}; norms {string.Join(", ", n1.Select(v => v.ToString("F4")))}");
    }

    /// <summary>Steps [from, to) of the GPT on a DP × TP × PP mesh (SGD, ZeRO-1 over the data ranks), from a checkpoint or the seed-5 start, saving one at the end when asked; the losses.</summary>
    private static double[] Mesh(int dp, int tp, int pp, int from, int to, string? load = null, string? save = null)
    {
        const string model = "P.Gpt";
        int world = dp * tp * pp;
        var losses = new double[world][];
        MeshRank.Simulate(dp, tp, pp, mesh =>
        {
            var program = New(model, Layers / pp, tp);
            mesh.Attach(program);
            var driver = new DataParallel(program, new Sgd(momentum: 0.9f), mesh.Data, dp > 1 ? ZeroStage.OptimizerState : ZeroStage.None);
            if (load is not null) Assert.Equal(from, driver.LoadCheckpoint(load));
            else PipelineParallel.Initialize(program, New(model, Layers), 5, mesh.Pipeline.Rank, pp, mesh.Tensor.Rank, tp);
            losses[mesh.World.Rank] = new double[to - from];
            int rows = Global / dp;
            for (int step = from; step < to; step++)
                losses[mesh.World.Rank][step - from] = driver.Step(new[] { Rows(model, step, mesh.Data.Rank * rows, rows) }, new StepContext(1, step, 0), 0.05f, 0.5).Loss;
            if (save is not null) driver.SaveCheckpoint(save, to);
        });
        for (int r = 1; r < world; r++) Assert.Equal(losses[0], losses[r]);
        return losses[0];
    }

    [Fact]
    public void A_checkpoint_saved_at_DP2_TP2_PP2_loads_on_one_rank_and_at_other_layouts_and_continues_with_the_same_loss()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("kiln-pp-ckpt-").FullName;
        try
        {
            var straight = Mesh(2, 2, 2, 0, 4);
            Assert.Equal(straight.Take(2), Mesh(2, 2, 2, 0, 2, save: dir));
            foreach (var (dp, tp, pp) in new[] { (1, 1, 1), (1, 1, 2), (2, 1, 1), (1, 2, 2), (2, 2, 2) })
            {
                var resumed = Mesh(dp, tp, pp, 2, 4, load: dir);
                for (int s = 0; s < 2; s++)
                    Assert.True(Math.Abs(resumed[s] - straight[2 + s]) <= 1e-5 * (1 + Math.Abs(straight[2 + s])), $"resumed at DP={dp}×TP={tp}×PP={pp}, step {2 + s}: loss {resumed[s]:R}, the run that went on {straight[2 + s]:R}");
            }
        }
        finally { System.IO.Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void A_program_that_is_not_a_stage_refuses_a_pipeline_group_and_stages_refuse_single_file_checkpoints()
    {
        var plain = GeneratorHarness.CreateProgram(TensorParallelTestsModels.Value, "T.Mlp");
        var e = Assert.Throws<NotSupportedException>(() => plain.PipelineGroup = InProcessGroup.Create(2, "pipeline")[0]);
        Assert.Contains("not a pipeline stage program", e.Message);
        InProcessGroup.Run(2, comm =>
        {
            var stage = New("P.Deep", 2);
            stage.PipelineGroup = comm;
            Assert.Throws<NotSupportedException>(() => new Trainer(stage, new TrainOptions(), initializeParameters: false));
        }, axis: "pipeline");
    }

    private static readonly Lazy<Assembly> TensorParallelTestsModels = new(() => GeneratorHarness.Build("""
        using Kiln;
        namespace T;
        [Model]
        public partial class Mlp(int din = 6, int dout = 3)
        {
            Linear fc = new(din, dout);
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(fc.Forward(x), y);
        }
        """));
}

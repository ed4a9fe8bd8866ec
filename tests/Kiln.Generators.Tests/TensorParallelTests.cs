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
/// Tensor parallelism (Megatron-style) on simulated ranks: an MLP written with [ColumnParallel]/[RowParallel] and
/// Ops.TensorReplicate/TensorReduce, and a GPT from the module library (attention heads and MLP units split), compiled
/// at tensor degree 2 (and 4 for the MLP), compute the one-device loss and — gathered — its gradients; TP = 2 and
/// DP × TP = 2 × 2 (with ZeRO-1 and ZeRO-2, gradient accumulation and clipping on the global norm) train like one
/// device on the whole batch.
/// </summary>
public sealed class TensorParallelTests
{
    private readonly ITestOutputHelper _out;
    public TensorParallelTests(ITestOutputHelper output) => _out = output;

    private const string Source = """
        using Kiln;
        namespace T;

        [Model]
        public partial class Mlp(int din = 6, int hidden = 24, int dout = 3, int tensor = 1)
        {
            [ColumnParallel] Linear up = new(din, hidden / tensor);
            [RowParallel] Linear down = new(hidden / tensor, dout);
            Linear head = new(dout, dout);

            public Tensor Forward([Shape("B", "din")] Tensor x) =>
                head.Forward(Ops.Tanh(Ops.TensorReduce(Ops.MatMul(Ops.Gelu(up.Forward(Ops.TensorReplicate(x))), down.Weight.T)) + down.Bias));
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }
        """;

    /// <summary>The MLP above and the library GPT (T.Gpt) with a tensor hyperparameter.</summary>
    private static readonly string[] Sources = { Source, ParallelTestModels.Gpt("T", "Gpt", null, vocab: 16, context: 8, dim: 32, heads: 4, layers: 2, tensor: true) };

    private static readonly Lazy<Assembly> Models = new(() => GeneratorHarness.Build(Sources));

    /// <summary>The model at tensor degree <paramref name="tensor"/> (every other hyperparameter at its default).</summary>
    private static ModelProgram New(string model, int tensor) =>
        GeneratorHarness.CreateProgram(Models.Value, model, model == "T.Mlp" ? new object?[] { null, null, null, tensor } : new object?[] { null, null, null, null, null, tensor });

    private const int Global = 8;

    private static Batch Rows(string model, int seed, int step, int from, int count)
    {
        var rng = new Random(seed * 1000 + step);
        if (model == "T.Mlp")
        {
            var x = Enumerable.Range(0, Global * 6).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var y = Enumerable.Range(0, Global * 3).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            return new Batch(("x", TensorData.Float(x.AsSpan(from * 6, count * 6).ToArray(), count, 6)), ("y", TensorData.Float(y.AsSpan(from * 3, count * 3).ToArray(), count, 3)));
        }
        var tok = Enumerable.Range(0, Global * 8).Select(_ => rng.Next(16)).ToArray();
        var tgt = tok.Select(t => (t * 5 + 3) % 16).ToArray();
        return new Batch(("idx", TensorData.Int(tok.AsSpan(from * 8, count * 8).ToArray(), count, 8)), ("targets", TensorData.Int(tgt.AsSpan(from * 8, count * 8).ToArray(), count, 8)));
    }

    [Theory]
    [InlineData("T.Mlp", 2)]
    [InlineData("T.Mlp", 4)]
    [InlineData("T.Gpt", 2)]
    [InlineData("T.Gpt", 4)]
    public void Tensor_parallel_ranks_compute_the_one_device_loss_and_gradients(string model, int tp)
    {
        var whole = New(model, 1);
        whole.InitParameters(11);
        var batch = Rows(model, 3, 0, 0, Global);
        whole.ZeroGrads();
        float expected = whole.TrainStep(batch, new StepContext(1, 0, 0));

        var ranks = Enumerable.Range(0, tp).Select(_ => New(model, tp)).ToArray();
        Assert.Contains(ranks[0].Parameters, p => p.Split is not null);
        Assert.True(ranks[0].Params.Length < whole.Params.Length, "a rank holds less than the whole model");
        var losses = new float[tp];
        InProcessGroup.Run(tp, comm =>
        {
            var program = ranks[comm.Rank];
            TensorParallel.Initialize(program, New(model, 1), 11, comm.Rank, tp);
            program.TensorGroup = comm;
            program.ZeroGrads();
            losses[comm.Rank] = program.TrainStep(batch, new StepContext(1, 0, 0));
        }, axis: "tensor");
        foreach (var l in losses)
            Assert.True(Math.Abs(l - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"{model} TP={tp}: loss {l:R}, one device {expected:R}");
        var grads = new float[whole.Grads.Length];
        TensorParallel.Gather(ranks[0], ranks.Select(r => r.Grads).ToList(), whole, grads);
        ParallelTestModels.AssertClose($"{model} TP={tp} gradients", grads, whole.Grads, 1e-5);
        // And the parameters went there and back unchanged.
        var parameters = new float[whole.Params.Length];
        TensorParallel.Gather(ranks[0], ranks.Select(r => r.Params).ToList(), whole, parameters);
        Assert.True(parameters.AsSpan().SequenceEqual(whole.Params), "scatter then gather changed the parameters");
    }

    private const int Steps = 3;

    /// <summary>
    /// SGD with momentum (its state is sharded under ZeRO like AdamW's). Not AdamW: the attention's key bias has an
    /// exactly zero gradient (softmax ignores a constant added to a query's scores), and AdamW turns the fp32 noise
    /// around that zero, which differs with the order of additions, into steps of the full learning rate.
    /// </summary>
    private static Optimizer NewOptimizer() => new Sgd(momentum: 0.9f);

    /// <summary>One device on the whole batch: losses, gradient norms and the final parameters.</summary>
    private static (double[] Losses, double[] Norms, float[] Params) Single(string model, double clip)
    {
        var program = New(model, 1);
        program.InitParameters(5);
        var opt = NewOptimizer();
        var losses = new double[Steps]; var norms = new double[Steps];
        for (int s = 0; s < Steps; s++)
        {
            program.ZeroGrads();
            losses[s] = program.TrainStep(Rows(model, 9, s, 0, Global), new StepContext(1, s, 0));
            norms[s] = GradientClipping.GlobalNorm(program.Grads);
            if (norms[s] > clip) program.ScaleGradients((float)(clip / (norms[s] + 1e-6)));
            opt.Step(program, 0.05f);
        }
        return (losses, norms, (float[])program.Params.Clone());
    }

    [Theory]
    [InlineData("T.Mlp", 1, 2, 1, ZeroStage.None)]
    [InlineData("T.Mlp", 2, 2, 2, ZeroStage.OptimizerState)]
    [InlineData("T.Gpt", 1, 2, 1, ZeroStage.None)]
    [InlineData("T.Gpt", 2, 2, 1, ZeroStage.OptimizerState)]
    [InlineData("T.Gpt", 2, 2, 2, ZeroStage.Gradients)]
    public void Data_and_tensor_parallel_ranks_train_like_one_device(string model, int dp, int tp, int micro, ZeroStage zero)
    {
        const double clip = 0.5; // small enough that some steps clip: the global norm must be the one-device norm
        var (l1, n1, p1) = Single(model, clip);
        var losses = new double[dp * tp][]; var norms = new double[dp * tp][];
        var programs = new ModelProgram[dp * tp];
        MeshRank.Simulate(dp, tp, 1, mesh =>
        {
            int d = mesh.Data.Rank, t = mesh.Tensor.Rank;
            var program = programs[mesh.World.Rank] = New(model, tp);
            TensorParallel.Initialize(program, New(model, 1), 5, t, tp);
            mesh.Attach(program);
            var dpDriver = new DataParallel(program, NewOptimizer(), mesh.Data, zero);
            losses[mesh.World.Rank] = new double[Steps]; norms[mesh.World.Rank] = new double[Steps];
            int rows = Global / dp, each = rows / micro;
            for (int s = 0; s < Steps; s++)
            {
                var micros = Enumerable.Range(0, micro).Select(m => Rows(model, 9, s, d * rows + m * each, each)).ToList();
                var r = dpDriver.Step(micros, new StepContext(1, s, 0), 0.05f, clip);
                losses[mesh.World.Rank][s] = r.Loss; norms[mesh.World.Rank][s] = r.GradientNorm;
            }
        });
        for (int rank = 0; rank < dp * tp; rank++)
            for (int s = 0; s < Steps; s++)
            {
                Assert.True(Math.Abs(losses[rank][s] - l1[s]) <= 1e-5 * (1 + Math.Abs(l1[s])), $"{model} DP={dp}×TP={tp} rank {rank} step {s}: loss {losses[rank][s]:R}, one device {l1[s]:R}");
                Assert.True(Math.Abs(norms[rank][s] - n1[s]) <= 1e-4 * n1[s], $"{model} DP={dp}×TP={tp} rank {rank} step {s}: gradient norm {norms[rank][s]:R}, one device {n1[s]:R}");
            }
        Assert.Contains(n1, n => n > clip);
        var whole = New(model, 1);
        for (int d = 0; d < dp; d++)
        {
            var parameters = new float[p1.Length];
            TensorParallel.Gather(programs[d * tp], Enumerable.Range(0, tp).Select(t => programs[d * tp + t].Params).ToList(), whole, parameters);
            ParallelTestModels.AssertClose($"{model} DP={dp}×TP={tp} data rank {d}: parameters after {Steps} steps", parameters, p1, 2e-5, whole.Parameters);
        }
        _out.WriteLine($"{model} DP={dp}×TP={tp}×{micro} {zero}: losses {string.Join(", ", l1.Select(v => v.ToString("F5")))}; norms {string.Join(", ", n1.Select(v => v.ToString("F4")))}");
    }

    /// <summary>
    /// Steps [<paramref name="from"/>, <paramref name="to"/>) on a DP × TP mesh (SGD, ZeRO <paramref name="zero"/>), starting
    /// from a checkpoint or from the seed-5 initialisation, saving one at the end when asked; rank 0's losses.
    /// </summary>
    private static double[] Mesh(string model, int dp, int tp, ZeroStage zero, int from, int to, string? load = null, string? save = null)
    {
        var losses = new double[dp * tp][];
        MeshRank.Simulate(dp, tp, 1, mesh =>
        {
            var program = New(model, tp);
            mesh.Attach(program);
            var driver = new DataParallel(program, NewOptimizer(), mesh.Data, zero);
            if (load is not null) Assert.Equal(from, driver.LoadCheckpoint(load));
            else TensorParallel.Initialize(program, New(model, 1), 5, mesh.Tensor.Rank, tp);
            losses[mesh.World.Rank] = new double[to - from];
            int rows = Global / dp;
            for (int s = from; s < to; s++)
                losses[mesh.World.Rank][s - from] = driver.Step(new[] { Rows(model, 9, s, mesh.Data.Rank * rows, rows) }, new StepContext(1, s, 0), 0.05f, 0.5).Loss;
            if (save is not null) driver.SaveCheckpoint(save, to);
        });
        for (int r = 1; r < dp * tp; r++) Assert.Equal(losses[0], losses[r]);
        return losses[0];
    }

    [Fact]
    public void A_checkpoint_saved_at_DP2_TP2_loads_at_TP1_at_DP4_and_at_TP2_and_continues_with_the_same_loss()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("kiln-tp-ckpt-").FullName;
        try
        {
            var straight = Mesh("T.Gpt", 2, 2, ZeroStage.OptimizerState, 0, 4);
            var first = Mesh("T.Gpt", 2, 2, ZeroStage.OptimizerState, 0, 2, save: dir);
            Assert.Equal(straight.Take(2), first);
            Assert.True(System.IO.File.Exists(System.IO.Path.Combine(dir, "index.json")));
            foreach (var (dp, tp, zero) in new[] { (1, 1, ZeroStage.None), (4, 1, ZeroStage.Gradients), (1, 2, ZeroStage.None), (2, 2, ZeroStage.OptimizerState) })
            {
                var resumed = Mesh("T.Gpt", dp, tp, zero, 2, 4, load: dir);
                _out.WriteLine($"DP={dp}×TP={tp} {zero}: {string.Join(", ", resumed.Select(v => v.ToString("R")))} vs {string.Join(", ", straight.Skip(2).Select(v => v.ToString("R")))}");
                for (int s = 0; s < 2; s++)
                    Assert.True(Math.Abs(resumed[s] - straight[2 + s]) <= 1e-5 * (1 + Math.Abs(straight[2 + s])), $"resumed at DP={dp}×TP={tp} ({zero}), step {2 + s}: loss {resumed[s]:R}, the run that went on {straight[2 + s]:R}");
            }
        }
        finally { System.IO.Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void The_trainer_on_data_times_tensor_parallel_ranks_follows_the_single_rank_run()
    {
        // The library GPT on 2 data × 2 tensor ranks through the Trainer (accumulation, clipping, evaluation) against
        // one rank training on the whole batch. Every rank evaluates (the tensor ranks together); rank (0, 0) leads.
        var rng = new Random(17);
        int n = 64;
        var tokens = Enumerable.Range(0, n * 8).Select(_ => rng.Next(16)).ToArray();
        var data = new InMemoryDataset(("idx", TensorData.Int(tokens, n, 8)), ("targets", TensorData.Int(tokens.Select(t => (t * 3 + 1) % 16).ToArray(), n, 8)));
        var evalSet = new InMemoryDataset(("idx", TensorData.Int(tokens.AsSpan(0, 16 * 8).ToArray(), 16, 8)), ("targets", TensorData.Int(tokens.Take(16 * 8).Select(t => (t * 3 + 1) % 16).ToArray(), 16, 8)));
        TrainOptions Options(ICommunicator? comm) => new()
        {
            Steps = 6, BatchSize = 8, GradientAccumulation = 2, LearningRate = 0.05f, Seed = 5, ClipGradNorm = 0.5f, WeightDecay = 0f,
            Optimizer = OptimizerKind.Sgd, // AdamW would turn fp32 noise around the key bias's exactly zero gradient into full steps (see NewOptimizer)
            Progress = ProgressMode.None, EvalEvery = 3, Communicator = comm, Zero = comm is null ? ZeroStage.None : ZeroStage.OptimizerState,
        };
        var single = New("T.Gpt", 1);
        var r1 = new Trainer(single, Options(null)).Fit(data, evalSet);

        var results = new TrainResult[4];
        var programs = new ModelProgram[4];
        MeshRank.Simulate(2, 2, 1, mesh =>
        {
            var program = programs[mesh.World.Rank] = New("T.Gpt", 2);
            TensorParallel.Initialize(program, New("T.Gpt", 1), 5, mesh.Tensor.Rank, 2);
            mesh.Attach(program);
            Assert.Throws<ArgumentException>(() => new Trainer(program, Options(mesh.Data)));   // it would initialise the rank by itself
            results[mesh.World.Rank] = new Trainer(program, Options(mesh.Data), initializeParameters: false).Fit(data, evalSet);
        });
        var whole = New("T.Gpt", 1);
        var parameters = new float[whole.Params.Length];
        TensorParallel.Gather(programs[0], new[] { programs[0].Params, programs[1].Params }, whole, parameters);
        for (int r = 0; r < 4; r++)
        {
            Assert.True(Math.Abs(results[r].FinalTrainLoss - r1.FinalTrainLoss) <= 1e-5 * (1 + r1.FinalTrainLoss), $"rank {r}: final loss {results[r].FinalTrainLoss:R} vs one rank {r1.FinalTrainLoss:R}");
            Assert.Equal(r1.EvalHistory.Count, results[r].EvalHistory.Count);
            for (int e = 0; e < r1.EvalHistory.Count; e++)
                Assert.True(Math.Abs(results[r].EvalHistory[e].Loss - r1.EvalHistory[e].Loss) <= 1e-5 * (1 + r1.EvalHistory[e].Loss), $"rank {r}: eval {e} {results[r].EvalHistory[e].Loss:R} vs {r1.EvalHistory[e].Loss:R}");
        }
        ParallelTestModels.AssertClose("T.Gpt trainer DP=2×TP=2: parameters", parameters, single.Params, 2e-5, whole.Parameters);
        // A tensor rank cannot write the trainer's single-file checkpoints.
        var rank = New("T.Gpt", 2);
        rank.TensorGroup = InProcessGroup.Create(2, "tensor")[0];
        var e2 = Assert.Throws<ArgumentException>(() => new Trainer(rank, new TrainOptions { CheckpointEvery = 2, CheckpointPath = "x" }, initializeParameters: false));
        Assert.Contains("DataParallel.SaveCheckpoint", e2.Message);
    }

    [Fact]
    public void A_hang_names_the_layer_and_C_sharp_line_of_the_tensor_all_reduce_or_what_the_data_parallel_step_was_doing()
    {
        var batch = Rows("T.Gpt", 1, 0, 0, 4);
        // A tensor rank that never runs its step: its partner waits in the first attention's all-reduce.
        var e = Assert.Throws<AggregateException>(() => MeshRank.Simulate(1, 2, 1, mesh =>
        {
            var program = New("T.Gpt", 2);
            mesh.Attach(program);
            if (mesh.Tensor.Rank == 1) return;
            program.TrainStep(batch, new StepContext(1, 0, 0));
        }, TimeSpan.FromSeconds(1)));
        var timeout = e.InnerExceptions.OfType<CollectiveTimeoutException>().First();
        _out.WriteLine(timeout.Message);
        Assert.Equal("tensor", timeout.Axis);
        Assert.Equal(new[] { 1 }, timeout.MissingRanks);
        Assert.Contains("Gpt's tensor-parallel all-reduce at %", timeout.Message);
        Assert.Contains("(TensorReduce), Kiln.Nn.g.cs:", timeout.Message);
        Assert.Contains("Ops.TensorReduce(", timeout.Message);

        // A data replica that never reduces: the other waits in DataParallel's first all-reduce, and says which.
        e = Assert.Throws<AggregateException>(() => MeshRank.Simulate(2, 1, 1, mesh =>
        {
            var program = New("T.Mlp", 1);
            var dp = new DataParallel(program, NewOptimizer(), mesh.Data);
            if (mesh.Data.Rank == 1) return;
            dp.Step(new[] { Rows("T.Mlp", 1, 0, 0, 4) }, new StepContext(1, 0, 0), 0.01f);
        }, TimeSpan.FromSeconds(1)));
        timeout = e.InnerExceptions.OfType<CollectiveTimeoutException>().First();
        _out.WriteLine(timeout.Message);
        Assert.Equal("data", timeout.Axis);
        Assert.Contains("It was DataParallel's all-reduce of the step's loss (data rank 0 of 2)", timeout.Message);
    }

    [Fact]
    public void A_rank_program_built_for_another_degree_is_refused_when_laid_out()
    {
        var whole = New("T.Mlp", 1);
        var rank = New("T.Mlp", 2);
        var e = Assert.Throws<InvalidOperationException>(() => TensorParallel.Scatter(whole, whole.Params, rank, rank.Params, 0, 4));
        Assert.Contains("up.weight", e.Message);
        Assert.Contains("tensor degree 4", e.Message);
    }

    [Fact]
    public void On_one_rank_the_all_reduce_sums_in_place_and_the_replicate_is_a_view()
    {
        // The library GPT has the collectives but no copies for them: each TensorReduce's result is planned at its
        // input's offset (the matmul's output), and TensorReplicate has no kernel.
        var (output, _, _) = GeneratorHarness.Run(Sources);
        var generated = string.Join("\n", output.SyntaxTrees.Select(t => t.ToString()).Where(t => t.Contains("class Gpt", StringComparison.Ordinal) && t.Contains("TensorReduceInto(", StringComparison.Ordinal)));
        var offsets = System.Text.RegularExpressions.Regex.Matches(generated, @"long (?<name>\w+) = (?<value>[^;]+);")
            .GroupBy(m => m.Groups["name"].Value).ToDictionary(x => x.Key, x => x.Select(m => m.Groups["value"].Value).Distinct().ToList());
        var calls = System.Text.RegularExpressions.Regex.Matches(generated, @"TensorReduceInto\((?<a>\w+), (?<o>\w+), (?<b>\w+), (?<p>\w+), ").ToList();
        Assert.True(calls.Count >= 4, $"expected the forward and backward all-reduces of attention and MLP in the generated GPT, found {calls.Count}");
        foreach (var call in calls)
        {
            Assert.Equal(call.Groups["a"].Value, call.Groups["b"].Value);
            var (o, p) = (call.Groups["o"].Value, call.Groups["p"].Value);
            Assert.True(offsets.ContainsKey(o) && offsets.ContainsKey(p) && offsets[o].SequenceEqual(offsets[p]), $"{call.Value}: {o} = {string.Join("|", offsets.GetValueOrDefault(o) ?? new())}, {p} = {string.Join("|", offsets.GetValueOrDefault(p) ?? new())}");
        }
        Assert.DoesNotContain("tensorreplicate", generated.Split('\n').Where(l => l.Contains("// k", StringComparison.Ordinal)).Select(l => l.Split('=')[1]));
    }
}

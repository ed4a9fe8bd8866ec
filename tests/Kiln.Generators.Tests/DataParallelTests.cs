using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using Kiln.Runtime;
using Kiln.Runtime.Collectives;
using Xunit;

namespace Kiln.Generators.Tests;

/// <summary>
/// Data parallelism on simulated (in-process) ranks: DP = 2 and 4, with gradient accumulation, against one device
/// training on the whole batch; ZeRO-1 and ZeRO-2 against plain data parallelism; the collectives' checks (a rank
/// that skips a collective, ranks that disagree) and rank discovery from launcher environments.
/// </summary>
public sealed class DataParallelTests
{
    private const string Source = """
        using Kiln;
        namespace P;

        [Model]
        public partial class Mlp(int din = 6, int hidden = 24, int dout = 3)
        {
            Linear fc1 = new(din, hidden), fc2 = new(hidden, hidden), fc3 = new(hidden, dout);
            public Tensor Forward([Shape("B", "din")] Tensor x) => fc3.Forward(Ops.Gelu(fc2.Forward(Ops.Tanh(fc1.Forward(x)))));
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }
        """;

    private static readonly Lazy<Assembly> Models = new(() => GeneratorHarness.Build(Source));

    /// <summary>P.Mlp, or "P.Gpt": the library's GPT (L.GptModel) with vocabulary 13, context 8, dim 32, 2 heads, 2 layers.</summary>
    private static ModelProgram New(string model) => model == "P.Gpt"
        ? GeneratorHarness.CreateProgram(LibraryModuleTests.Models, "L.GptModel", 13, 8, 32, 2, 2)
        : GeneratorHarness.CreateProgram(Models.Value, model);

    private const int Global = 24, Steps = 4;

    /// <summary>The global batches of every step: rows [0, Global) of random data for the model.</summary>
    private static List<(string Name, float[]? F, int[]? I, int Cols)[]> Data(string model, int seed, int count = Steps)
    {
        var rng = new Random(seed);
        var steps = new List<(string, float[]?, int[]?, int)[]>();
        for (int s = 0; s < count; s++)
        {
            if (model == "P.Mlp")
                steps.Add(new (string, float[]?, int[]?, int)[]
                {
                    ("x", Enumerable.Range(0, Global * 6).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), null, 6),
                    ("y", Enumerable.Range(0, Global * 3).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), null, 3),
                });
            else
            {
                var tok = Enumerable.Range(0, Global * 8).Select(_ => rng.Next(13)).ToArray();
                steps.Add(new (string, float[]?, int[]?, int)[] { ("idx", null, tok, 8), ("targets", null, tok.Select(t => (t * 7 + 3) % 13).ToArray(), 8) });
            }
        }
        return steps;
    }

    /// <summary>Rows [from, from + count) of a step's global batch.</summary>
    private static Batch Rows((string Name, float[]? F, int[]? I, int Cols)[] step, int from, int count) =>
        new(step.Select(t => (t.Name, t.F is not null
            ? TensorData.Float(t.F.AsSpan(from * t.Cols, count * t.Cols).ToArray(), count, t.Cols)
            : TensorData.Int(t.I!.AsSpan(from * t.Cols, count * t.Cols).ToArray(), count, t.Cols))).ToArray());

    private static Optimizer NewOptimizer(bool adam) => adam ? new AdamW(weightDecay: 0.1f) : new Sgd(momentum: 0.9f);

    /// <summary>One device on the whole batch: per-step losses and the final parameters.</summary>
    private static (double[] Losses, float[] Params) Single(string model, bool adam, int seed)
    {
        var program = New(model);
        program.InitParameters(3);
        var opt = NewOptimizer(adam);
        var losses = new double[Steps];
        var data = Data(model, seed);
        for (int s = 0; s < Steps; s++)
        {
            program.ZeroGrads();
            losses[s] = program.TrainStep(Rows(data[s], 0, Global), new StepContext(1, s, 0));
            opt.Step(program, 0.05f);
        }
        return (losses, (float[])program.Params.Clone());
    }

    /// <summary>W simulated ranks, each with Global/W rows split into <paramref name="micro"/> micro-batches.</summary>
    private static (double[] Losses, float[][] Params, long[] Bytes) Parallel(string model, bool adam, int seed, int world, int micro, ZeroStage zero, double? clip = null)
    {
        var losses = new double[world][];
        var parameters = new float[world][];
        var bytes = new long[world];
        var data = Data(model, seed);
        InProcessGroup.Run(world, comm =>
        {
            var program = New(model);
            program.InitParameters(comm.Rank == 0 ? 3ul : 99ul); // other ranks start elsewhere: the broadcast must fix that
            var dp = new DataParallel(program, NewOptimizer(adam), comm, zero, bucketValues: 257);
            dp.SynchronizeParameters();
            losses[comm.Rank] = new double[Steps];
            int rows = Global / world, each = rows / micro;
            for (int s = 0; s < Steps; s++)
            {
                var micros = Enumerable.Range(0, micro).Select(m => Rows(data[s], comm.Rank * rows + m * each, each)).ToList();
                var r = dp.Step(micros, new StepContext(1, s, 0), 0.05f, clip);
                losses[comm.Rank][s] = r.Loss;
                bytes[comm.Rank] += r.BytesSent;
            }
            parameters[comm.Rank] = (float[])program.Params.Clone();
        });
        for (int r = 1; r < world; r++)
        {
            Assert.Equal(losses[0], losses[r]);
            Assert.True(parameters[0].AsSpan().SequenceEqual(parameters[r]), $"rank {r}'s parameters differ from rank 0's");
        }
        return (losses[0], parameters, bytes);
    }

    [Theory]
    [InlineData("P.Mlp", 2, 1)]
    [InlineData("P.Mlp", 4, 1)]
    [InlineData("P.Mlp", 2, 3)]
    [InlineData("P.Gpt", 2, 1)]
    [InlineData("P.Gpt", 4, 2)]
    public void Data_parallel_ranks_train_like_one_device_on_the_whole_batch(string model, int world, int micro)
    {
        var (l1, p1) = Single(model, adam: false, seed: 5);
        var (ln, pn, _) = Parallel(model, adam: false, seed: 5, world, micro, ZeroStage.None);
        for (int s = 0; s < Steps; s++)
            Assert.True(Math.Abs(ln[s] - l1[s]) <= 1e-5 * (1 + Math.Abs(l1[s])), $"{model} DP={world}×{micro} step {s}: loss {ln[s]:R} vs one device {l1[s]:R}");
        double norm = p1.Max(v => Math.Abs(v));
        for (int i = 0; i < p1.Length; i++)
            Assert.True(Math.Abs(pn[0][i] - p1[i]) <= 1e-5 * (1 + norm), $"{model} DP={world}×{micro}: parameter {i} is {pn[0][i]:R}, one device {p1[i]:R}");
        // Losses went down: this is training, not a no-op.
        Assert.True(ln[^1] < ln[0], $"{model}: loss {ln[0]} → {ln[^1]}");
    }

    [Theory]
    [InlineData("P.Mlp", 2)]
    [InlineData("P.Mlp", 3)]
    [InlineData("P.Gpt", 2)]
    [InlineData("P.Gpt", 3)]
    public void Zero_1_and_zero_2_give_the_same_bits_as_plain_data_parallelism(string model, int world)
    {
        var (l0, p0, b0) = Parallel(model, adam: true, seed: 8, world, 2, ZeroStage.None, clip: 0.5);
        var (l1, p1, b1) = Parallel(model, adam: true, seed: 8, world, 2, ZeroStage.OptimizerState, clip: 0.5);
        var (l2, p2, b2) = Parallel(model, adam: true, seed: 8, world, 2, ZeroStage.Gradients, clip: 0.5);
        Assert.Equal(l0, l1);
        Assert.Equal(l0, l2);
        Assert.True(p0[0].AsSpan().SequenceEqual(p1[0]), "ZeRO-1 parameters differ from plain data parallelism");
        Assert.True(p0[0].AsSpan().SequenceEqual(p2[0]), "ZeRO-2 parameters differ from plain data parallelism");
        // ZeRO-2 moves less than an all-reduce (reduce-scatter + all-gather of parameters ≈ all-reduce, minus nothing):
        // at least it must not send more than ZeRO-1, which adds an all-gather to the all-reduce.
        Assert.True(b2[0] < b1[0], $"bytes sent: ZeRO-2 {b2[0]}, ZeRO-1 {b1[0]}");
    }

    /// <summary>Trains steps [from, to) on <paramref name="world"/> ranks, loading <paramref name="load"/> first and saving into <paramref name="save"/> at the end; the losses.</summary>
    private static double[] Segment(string model, int world, ZeroStage zero, int from, int to, string? load, string? save)
    {
        var data = Data(model, 21, 6);
        double[] losses = new double[to - from];
        InProcessGroup.Run(world, comm =>
        {
            var program = New(model);
            program.InitParameters(load is null ? 3ul : 1234ul);
            var dp = new DataParallel(program, new AdamW(weightDecay: 0.1f), comm, zero, bucketValues: 1000);
            if (load is not null) Assert.Equal(from, dp.LoadCheckpoint(load));
            else dp.SynchronizeParameters();
            int rows = Global / world;
            for (int s = from; s < to; s++)
            {
                var r = dp.Step(new[] { Rows(data[s], comm.Rank * rows, rows) }, new StepContext(1, s, 0), 0.02f, 1.0);
                if (comm.Rank == 0) losses[s - from] = r.Loss;
            }
            if (save is not null) dp.SaveCheckpoint(save, to);
        });
        return losses;
    }

    [Theory]
    [InlineData("P.Gpt", 2, ZeroStage.OptimizerState, 4, ZeroStage.OptimizerState)]
    [InlineData("P.Gpt", 2, ZeroStage.Gradients, 1, ZeroStage.None)]
    [InlineData("P.Mlp", 2, ZeroStage.None, 3, ZeroStage.Gradients)]
    [InlineData("P.Mlp", 4, ZeroStage.OptimizerState, 2, ZeroStage.OptimizerState)]
    public void A_checkpoint_saved_at_one_world_size_loads_at_another_and_continues_with_the_same_loss(string model, int w1, ZeroStage z1, int w2, ZeroStage z2)
    {
        var dir = Directory.CreateTempSubdirectory("kiln-dp-ckpt-").FullName;
        try
        {
            var straight = Segment(model, w1, z1, 0, 6, null, null);
            var first = Segment(model, w1, z1, 0, 3, null, Path.Combine(dir, "step-3"));
            Assert.Equal(straight.Take(3), first);
            var files = Directory.GetFiles(Path.Combine(dir, "step-3")).Select(Path.GetFileName).OrderBy(f => f).ToArray();
            Assert.Contains("index.json", files);
            Assert.Contains("parameters.safetensors", files);
            Assert.Equal(z1 == ZeroStage.None ? 1 : w1, files.Count(f => f!.StartsWith("optimizer-rank-", StringComparison.Ordinal)));
            var resumed = Segment(model, w2, z2, 3, 6, Path.Combine(dir, "step-3"), null);
            for (int i = 0; i < 3; i++)
                Assert.True(Math.Abs(resumed[i] - straight[3 + i]) <= 1e-5 * (1 + Math.Abs(straight[3 + i])),
                    $"{model} saved at DP={w1} {z1}, resumed at DP={w2} {z2}: step {3 + i} loss {resumed[i]:R} vs uninterrupted {straight[3 + i]:R}");

            // A save interrupted before its index is refused with the reason.
            File.Delete(Path.Combine(dir, "step-3", "index.json"));
            var e = Assert.Throws<AggregateException>(() => Segment(model, w2, z2, 3, 4, Path.Combine(dir, "step-3"), null));
            Assert.Contains("did not finish", e.InnerExceptions.First(x => x is InvalidDataException).Message, StringComparison.Ordinal);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData(2, ZeroStage.None, 1)]
    [InlineData(4, ZeroStage.OptimizerState, 2)]
    [InlineData(3, ZeroStage.Gradients, 1)]
    public void The_trainer_on_data_parallel_ranks_follows_the_single_device_run(int world, ZeroStage zero, int accumulation)
    {
        var rng = new Random(31);
        int n = 96;
        var x = Enumerable.Range(0, n * 6).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var y = Enumerable.Range(0, n * 3).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var data = new InMemoryDataset(("x", TensorData.Float(x, n, 6)), ("y", TensorData.Float(y, n, 3)));
        var evalSet = new InMemoryDataset(("x", TensorData.Float(x.AsSpan(0, 24 * 6).ToArray(), 24, 6)), ("y", TensorData.Float(y.AsSpan(0, 24 * 3).ToArray(), 24, 3)));
        TrainOptions Options(Kiln.Runtime.Collectives.ICommunicator? comm) => new()
        {
            Steps = 12, BatchSize = 12, GradientAccumulation = accumulation, LearningRate = 0.01f, Seed = 5, ClipGradNorm = 1.0f,
            Progress = ProgressMode.None, EvalEvery = 6, Communicator = comm, Zero = comm is null ? ZeroStage.None : zero,
        };
        var single = New("P.Mlp");
        var r1 = new Trainer(single, Options(null)).Fit(data, evalSet);

        var results = new TrainResult[world];
        var finals = new float[world][];
        InProcessGroup.Run(world, comm =>
        {
            var program = New("P.Mlp");
            var trainer = new Trainer(program, Options(comm));
            results[comm.Rank] = trainer.Fit(data, evalSet);
            finals[comm.Rank] = (float[])program.Params.Clone();
        });
        for (int r = 0; r < world; r++)
        {
            Assert.True(Math.Abs(results[r].FinalTrainLoss - r1.FinalTrainLoss) <= 1e-5 * (1 + r1.FinalTrainLoss), $"rank {r}: final loss {results[r].FinalTrainLoss:R} vs one device {r1.FinalTrainLoss:R}");
            Assert.Equal(r1.EvalHistory.Count, results[r].EvalHistory.Count);
            for (int e = 0; e < r1.EvalHistory.Count; e++)
                Assert.True(Math.Abs(results[r].EvalHistory[e].Loss - r1.EvalHistory[e].Loss) <= 1e-5 * (1 + r1.EvalHistory[e].Loss), $"rank {r}: eval {e}");
            double norm = single.Params.Max(v => Math.Abs(v));
            for (int i = 0; i < single.Params.Length; i++)
                Assert.True(Math.Abs(finals[r][i] - single.Params[i]) <= 1e-5 * (1 + norm), $"rank {r}: parameter {i} {finals[r][i]:R} vs {single.Params[i]:R}");
        }
        var bad = Assert.Throws<ArgumentException>(() => new TrainOptions { BatchSize = 10, Communicator = InProcessGroup.Create(3)[0] }.Validate());
        Assert.Contains("divisible by the 3 data-parallel ranks", bad.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rank_that_skips_a_collective_ends_the_wait_within_the_timeout_with_the_collective_named()
    {
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<AggregateException>(() => InProcessGroup.Run(3, comm =>
        {
            var data = new float[16];
            comm.AllReduceSum(data);
            comm.AllReduceSum(data);
            if (comm.Rank == 1) return; // rank 1 skips the third all-reduce and leaves
            comm.AllReduceSum(data);
        }, axis: "data", timeout: TimeSpan.FromSeconds(1)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        var timeout = e.InnerExceptions.OfType<CollectiveTimeoutException>().First();
        Assert.Equal("AllReduce", timeout.Collective);
        Assert.Equal(2, timeout.Sequence);
        Assert.Equal("data", timeout.Axis);
        Assert.Equal(new[] { 1 }, timeout.MissingRanks);
        Assert.Contains("AllReduce #2 on axis 'data'", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("rank 1 never arrived", timeout.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ranks_that_call_different_collectives_are_told_which()
    {
        var e = Assert.Throws<AggregateException>(() => InProcessGroup.Run(2, comm =>
        {
            var data = new float[8];
            if (comm.Rank == 0) comm.AllReduceSum(data);
            else comm.AllGather(data.AsSpan(0, 4), data);
        }, timeout: TimeSpan.FromSeconds(5)));
        var m = e.InnerExceptions.OfType<CollectiveMismatchException>().First();
        Assert.Contains("rank 0 called AllReduce(#0, 8 values) but rank 1 called AllGather(#0, 4 values)", m.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Collectives_compute_sums_gathers_and_broadcasts()
    {
        InProcessGroup.Run(3, comm =>
        {
            int r = comm.Rank;
            var a = new float[] { r, 10 * r, 1 };
            comm.AllReduceSum(a);
            Assert.Equal(new float[] { 3, 30, 3 }, a);
            Assert.Equal(3.0, comm.AllReduceSum(r));
            var shard = new float[2];
            comm.ReduceScatterSum(Enumerable.Range(0, 6).Select(i => (float)(i + r)).ToArray(), shard);
            Assert.Equal(new float[] { 2 * r * 3 + 3, (2 * r + 1) * 3 + 3 }, shard);
            var all = new float[6];
            comm.AllGather(new float[] { r, -r }, all);
            Assert.Equal(new float[] { 0, 0, 1, -1, 2, -2 }, all);
            var b = new float[] { r, r };
            comm.Broadcast(b, root: 2);
            Assert.Equal(new float[] { 2, 2 }, b);
            comm.Barrier();
            Assert.Equal(6, comm.Sequence);
        });
    }

    [Fact]
    public void Rank_discovery_reads_torchrun_slurm_and_open_mpi()
    {
        RankEnvironment Of(params (string K, string V)[] vars) => RankEnvironment.Detect(k => vars.FirstOrDefault(v => v.K == k).V);
        Assert.Equal(new RankEnvironment(3, 8, 1, "torchrun"), Of(("RANK", "3"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "1")));
        Assert.Equal(new RankEnvironment(5, 6, 2, "slurm"), Of(("SLURM_PROCID", "5"), ("SLURM_NTASKS", "6"), ("SLURM_LOCALID", "2")));
        Assert.Equal(new RankEnvironment(1, 2, 1, "openmpi"), Of(("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1")));
        Assert.Equal(new RankEnvironment(0, 1, 0, "none"), Of());
        var bad = Assert.Throws<InvalidOperationException>(() => Of(("RANK", "4"), ("WORLD_SIZE", "4")));
        Assert.Contains("RANK=4 and WORLD_SIZE=4", bad.Message, StringComparison.Ordinal);
    }
}

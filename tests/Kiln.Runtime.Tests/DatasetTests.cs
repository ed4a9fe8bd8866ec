using System;
using System.Linq;
using Kiln.Runtime;

namespace Kiln.Runtime.Tests;

public class DatasetTests
{
    private static InMemoryDataset Numbered(int n) => new(
        ("x", TensorData.Float(Enumerable.Range(0, n * 2).Select(i => (float)i).ToArray(), n, 2)),
        ("label", TensorData.Int(Enumerable.Range(0, n).ToArray(), n)));

    [Fact]
    public void GetBatch_stacks_the_requested_rows_of_every_tensor()
    {
        var batch = Numbered(10).GetBatch(new[] { 7, 2 });
        Assert.Equal(new[] { 2, 2 }, batch["x"].Shape);
        Assert.Equal(new[] { 14f, 15f, 4f, 5f }, batch["x"].Floats);
        Assert.Equal(new[] { 7, 2 }, batch["label"].Ints);
        Assert.Equal(2, batch.Count);
    }

    [Fact]
    public void Tensors_with_different_example_counts_are_refused_with_their_names_and_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => new InMemoryDataset(
            ("x", TensorData.Float(new float[20], 10, 2)),
            ("y", TensorData.Float(new float[9], 9))));
        Assert.Contains("x: f32[10, 2]", e.Message);
        Assert.Contains("y: f32[9]", e.Message);
        Assert.Contains("first dimension", e.Message);
    }

    [Fact]
    public void Empty_repeated_or_scalar_inputs_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new InMemoryDataset());
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => new InMemoryDataset(
            ("x", TensorData.Float(new float[2], 2)), ("x", TensorData.Float(new float[2], 2)))).Message);
        Assert.Contains("scalar", Assert.Throws<ArgumentException>(() => new InMemoryDataset(("x", TensorData.Float(new float[1])))).Message);
        Assert.Contains("outside", Assert.Throws<ArgumentOutOfRangeException>(() => Numbered(4).GetBatch(new[] { 4 })).Message);
    }

    [Fact]
    public void Split_is_deterministic_per_seed_and_partitions_the_examples()
    {
        var data = Numbered(100);
        var (train, held) = data.Split(0.2, seed: 5);
        var (train2, held2) = data.Split(0.2, seed: 5);
        var (_, held3) = data.Split(0.2, seed: 6);
        int[] Labels(InMemoryDataset d) => d.GetBatch(Enumerable.Range(0, d.Count).ToArray())["label"].Ints!;

        Assert.Equal(80, train.Count);
        Assert.Equal(20, held.Count);
        Assert.Equal(Labels(held), Labels(held2));
        Assert.Equal(Labels(train), Labels(train2));
        Assert.NotEqual(Labels(held), Labels(held3));
        Assert.Equal(Enumerable.Range(0, 100), Labels(train).Concat(Labels(held)).OrderBy(i => i));
        // A split of a split still addresses the original rows.
        var (_, inner) = held.Split(0.5, seed: 1);
        Assert.All(Labels(inner), l => Assert.Contains(l, Labels(held)));
        Assert.Equal(Labels(inner).Select(l => new[] { 2f * l, 2f * l + 1 }).SelectMany(r => r),
            inner.GetBatch(Enumerable.Range(0, inner.Count).ToArray())["x"].Floats!);
    }

    [Fact]
    public void Split_fractions_that_leave_a_side_empty_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Numbered(10).Split(1.0, 1));
        Assert.Contains("nothing held out", Assert.Throws<ArgumentException>(() => Numbered(10).Split(0.01, 1)).Message);
    }

    [Fact]
    public void Epoch_sampler_visits_every_example_once_per_epoch_and_reshuffles_each_epoch()
    {
        var sampler = new EpochSampler(10, seed: 3);
        var batch = new int[3];
        var epoch0 = new System.Collections.Generic.List<int>();
        for (int i = 0; i < 3; i++) { sampler.Next(batch); epoch0.AddRange(batch); }
        Assert.Equal(9, epoch0.Distinct().Count());
        sampler.Next(batch);
        Assert.Equal(1, sampler.Epoch);
        var epoch1 = new System.Collections.Generic.List<int>(batch);
        for (int i = 0; i < 2; i++) { sampler.Next(batch); epoch1.AddRange(batch); }
        Assert.Equal(9, epoch1.Distinct().Count());
        Assert.NotEqual(epoch0, epoch1);
        Assert.Equal(Shuffling.Permutation(10, 3, RandomStreams.EpochShuffle(1)).Take(9), epoch1);
    }

    [Fact]
    public void Token_windows_pair_each_window_with_the_next_tokens()
    {
        var tokens = Enumerable.Range(100, 10).ToArray(); // 100..109
        var every = new TokenWindows(tokens, context: 4);
        Assert.Equal(6, every.Count); // starts 0..5: the last window 105..108 has target 106..109
        Assert.Equal(4, every.TokensPerExample);
        var batch = every.GetBatch(new[] { 5, 0 });
        Assert.Equal(new[] { 2, 4 }, batch["idx"].Shape);
        Assert.Equal(new[] { 105, 106, 107, 108, 100, 101, 102, 103 }, batch["idx"].Ints);
        Assert.Equal(new[] { 106, 107, 108, 109, 101, 102, 103, 104 }, batch["targets"].Ints);

        var disjoint = new TokenWindows(tokens, context: 4, stride: 4, inputName: "x", targetName: "y");
        Assert.Equal(2, disjoint.Count); // 100..103 → 101..104 and 104..107 → 105..108
        Assert.Equal(new[] { 104, 105, 106, 107 }, disjoint.GetBatch(new[] { 1 })["x"].Ints);
        Assert.Throws<ArgumentOutOfRangeException>(() => disjoint.GetBatch(new[] { 2 }));
    }

    [Fact]
    public void Token_windows_refuse_too_little_data_and_bad_settings()
    {
        Assert.Contains("shorter context", Assert.Throws<ArgumentException>(() => new TokenWindows(new int[4], context: 4)).Message);
        Assert.Equal(1, new TokenWindows(new int[5], context: 4).Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenWindows(new int[9], context: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenWindows(new int[9], context: 2, stride: 0));
        Assert.Throws<ArgumentException>(() => new TokenWindows(new int[9], context: 2, inputName: "x", targetName: "x"));
    }
}

using System;
using System.Collections.Generic;
using System.Linq;
using Kiln;

namespace Kiln.Runtime.Tests;

/// <summary>Token sampling: greedy, temperature, top-k, top-p, −∞ logits, reproducibility; and the generation loop.</summary>
public class SamplingTests
{
    private static readonly float[] Logits = { 1f, 3f, float.NegativeInfinity, 2f, 0f, float.NegativeInfinity };

    private static double[] Softmax(float[] logits, double temperature, IEnumerable<int>? keep = null)
    {
        var allowed = keep?.ToHashSet() ?? Enumerable.Range(0, logits.Length).ToHashSet();
        var w = logits.Select((l, i) => allowed.Contains(i) && float.IsFinite(l) ? Math.Exp(l / temperature) : 0).ToArray();
        return w.Select(x => x / w.Sum()).ToArray();
    }

    private static double[] Frequencies(TokenSampler sampler, float[] logits, int draws = 40_000)
    {
        var counts = new double[logits.Length];
        for (long p = 0; p < draws; p++) counts[sampler.Next(logits, p)]++;
        return counts.Select(c => c / draws).ToArray();
    }

    [Fact]
    public void Greedy_and_top_1_pick_the_largest_logit()
    {
        Assert.Equal(1, new TokenSampler(new SamplingOptions { Temperature = 0 }).Next(Logits, 5));
        Assert.Equal(1, new TokenSampler(new SamplingOptions { TopK = 1 }).Next(Logits, 5));
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.5)]
    [InlineData(2.0)]
    public void Sampling_follows_the_softmax_at_the_temperature_and_never_picks_minus_infinity(double temperature)
    {
        var f = Frequencies(new TokenSampler(new SamplingOptions { Temperature = (float)temperature, Seed = 11 }), Logits);
        var p = Softmax(Logits, temperature);
        for (int i = 0; i < p.Length; i++) Assert.True(Math.Abs(f[i] - p[i]) < 0.01, $"token {i}: {f[i]:F4} drawn, {p[i]:F4} expected");
        Assert.Equal(0, f[2]);
        Assert.Equal(0, f[5]);
    }

    [Fact]
    public void Top_k_and_top_p_keep_only_the_head_of_the_distribution()
    {
        var topK = Frequencies(new TokenSampler(new SamplingOptions { TopK = 2, Seed = 3 }), Logits);
        var pk = Softmax(Logits, 1, new[] { 1, 3 });
        for (int i = 0; i < pk.Length; i++) Assert.True(Math.Abs(topK[i] - pk[i]) < 0.01, $"top-k token {i}: {topK[i]:F4} vs {pk[i]:F4}");

        // Probabilities 0.644, 0.237, 0.087, 0.032: top-p 0.8 keeps the first two (0.881 ≥ 0.8).
        var topP = Frequencies(new TokenSampler(new SamplingOptions { TopP = 0.8f, Seed = 4 }), Logits);
        Assert.Equal(0, topP[0]);
        Assert.Equal(0, topP[4]);
        Assert.True(Math.Abs(topP[1] - 0.644 / 0.881) < 0.01, $"top-p token 1: {topP[1]:F4}");
    }

    [Fact]
    public void Draws_depend_only_on_seed_and_position()
    {
        var a = new TokenSampler(new SamplingOptions { Seed = 9 });
        var b = new TokenSampler(new SamplingOptions { Seed = 9 });
        var c = new TokenSampler(new SamplingOptions { Seed = 10 });
        var flat = new float[50];
        var first = Enumerable.Range(0, 100).Select(p => a.Next(flat, p)).ToArray();
        Assert.Equal(first, Enumerable.Range(0, 100).Select(p => b.Next(flat, p)).ToArray());
        Assert.Equal(first.Reverse(), Enumerable.Range(0, 100).Reverse().Select(p => b.Next(flat, p)).ToArray());
        Assert.NotEqual(first, Enumerable.Range(0, 100).Select(p => c.Next(flat, p)).ToArray());
        Assert.Throws<ArgumentException>(() => a.Next(new[] { float.NegativeInfinity, float.NaN }, 0));
        Assert.Throws<ArgumentException>(() => new TokenSampler(new SamplingOptions { TopP = 0 }));
    }

    /// <summary>A "model" whose logits favour (last token + 1) mod 7 at every position.</summary>
    private sealed class CountingModel() : ModelProgram(Array.Empty<ParameterInfo>(), 0)
    {
        public List<int> Lengths { get; } = new();
        public override string ModelName => "Counting";
        public override IReadOnlyList<InputInfo> LossInputs => Array.Empty<InputInfo>();
        public override IReadOnlyList<InputInfo> ForwardInputs => new[] { new InputInfo("idx", ElementType.Int32, new[] { "B", "T" }) };
        public override IReadOnlyList<ProgramInfo> Programs => Array.Empty<ProgramInfo>();
        public override string IrText => "";
        public override string Report => "";
        public override long ArenaBytes => 0;
        public override float TrainStep(Batch batch, StepContext context) => throw new NotSupportedException();
        public override float EvalLoss(Batch batch) => throw new NotSupportedException();
        public override TensorData Forward(Batch batch)
        {
            var idx = batch["idx"];
            int t = idx.Shape[1];
            Lengths.Add(t);
            var logits = new float[t * 7];
            for (int i = 0; i < t; i++) logits[i * 7 + (idx.Ints![i] + 1) % 7] = 10f;
            return TensorData.Float(logits, 1, t, 7);
        }
    }

    [Fact]
    public void Generation_extends_the_prompt_within_the_context_and_stops_at_the_stop_token()
    {
        var model = new CountingModel();
        var greedy = new SamplingOptions { Temperature = 0 };
        Assert.Equal(new[] { 3, 4, 5, 6, 0, 1 }, Generation.Generate(model, new[] { 1, 2 }, 6, context: 4, greedy));
        Assert.Equal(new[] { 2, 3, 4, 4, 4, 4 }, model.Lengths); // the window grows to the context and stays there
        Assert.Equal(new[] { 3, 4, 5 }, Generation.Generate(model, new[] { 2 }, 10, context: 4, greedy, stopToken: 5));
        Assert.Throws<ArgumentException>(() => Generation.Generate(model, Array.Empty<int>(), 3, 4, greedy));
    }
}

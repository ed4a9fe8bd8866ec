using System;
using System.Linq;
using Kiln.Runtime;

namespace Kiln.Runtime.Tests;

public class OptimizerTests
{
    // Lengths that are not multiples of any vector width, so both the vector body and the scalar tail run;
    // decay alternates so the decay mask is exercised on neighbouring runs.
    private static TableProgram MixedTable() => new(
        new ParameterInfo("w1", new[] { 37 }, 0, 37, InitKind.Normal, 1f, WeightDecay: true),
        new ParameterInfo("b1", new[] { 5 }, 37, 5, InitKind.Zeros, 0f, WeightDecay: false),
        new ParameterInfo("w2", new[] { 7, 10 }, 42, 70, InitKind.Normal, 1f, WeightDecay: true),
        new ParameterInfo("b2", new[] { 3 }, 112, 3, InitKind.Zeros, 0f, WeightDecay: false));

    private static bool[] DecayMask(ModelProgram program)
    {
        var mask = new bool[program.Params.Length];
        foreach (var p in program.Parameters)
            for (long i = p.Offset; i < p.Offset + p.Length; i++) mask[i] = p.WeightDecay;
        return mask;
    }

    private static void FillRandom(float[] values, System.Random rng, double scale)
    {
        for (int i = 0; i < values.Length; i++) values[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
    }

    // float32 arithmetic against a float64 reference: each step adds a few float32 roundings of |p| and
    // of the update, ~1e-7 relative, so after 6 steps 2e-6 absolute + 1e-5 relative has ample margin
    // while any formula slip (a missing bias correction, decay on the wrong parameters) is far larger.
    private static void AssertClose(double expected, float actual, int seed, int index)
    {
        double tol = 2e-6 + 1e-5 * Math.Abs(expected);
        Assert.True(Math.Abs(expected - actual) <= tol, $"element {index}: expected {expected}, got {actual} (tol {tol}, seed {seed})");
    }

    [Fact]
    public void AdamW_matches_float64_reference_with_decay_mask()
    {
        int seed = TestSeed.Fresh();
        var rng = new System.Random(seed);
        var program = MixedTable();
        FillRandom(program.Params, rng, 1.0);
        var decay = DecayMask(program);
        int n = program.Params.Length;
        double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, wd = 0.1;
        var optimizer = new AdamW(0.9f, 0.95f, 1e-8f, 0.1f);
        var p = program.Params.Select(x => (double)x).ToArray();
        var m = new double[n];
        var v = new double[n];
        float[] rates = { 1e-2f, 3e-2f, 2e-2f, 1e-2f, 5e-3f, 1e-3f };
        for (int t = 1; t <= rates.Length; t++)
        {
            FillRandom(program.Grads, rng, 0.5);
            double lr = rates[t - 1];
            double bc1 = 1 - Math.Pow(beta1, t), bc2 = 1 - Math.Pow(beta2, t);
            for (int i = 0; i < n; i++)
            {
                double g = program.Grads[i];
                if (decay[i]) p[i] *= 1 - lr * wd;
                m[i] = beta1 * m[i] + (1 - beta1) * g;
                v[i] = beta2 * v[i] + (1 - beta2) * g * g;
                p[i] -= lr / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps);
            }
            optimizer.Step(program, rates[t - 1]);
        }
        Assert.Equal(rates.Length, optimizer.StepCount);
        for (int i = 0; i < n; i++) AssertClose(p[i], program.Params[i], seed, i);
        for (int i = 0; i < n; i++) AssertClose(m[i], optimizer.State["m"][i], seed, i);
    }

    [Fact]
    public void AdamW_decays_only_parameters_marked_for_decay()
    {
        var program = MixedTable();
        Array.Fill(program.Params, 2f);
        new AdamW(weightDecay: 0.5f).Step(program, 0.1f);
        var decay = DecayMask(program);
        // Zero gradients leave m = v = 0, so the only change is the decoupled decay 2·(1 − 0.1·0.5).
        for (int i = 0; i < program.Params.Length; i++)
            Assert.Equal(decay[i] ? 2f * (1f - 0.05f) : 2f, program.Params[i]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Sgd_momentum_matches_float64_reference(bool nesterov)
    {
        int seed = TestSeed.Fresh();
        var rng = new System.Random(seed);
        var program = MixedTable();
        FillRandom(program.Params, rng, 1.0);
        var decay = DecayMask(program);
        int n = program.Params.Length;
        double mu = 0.9, wd = 0.05;
        var optimizer = new Sgd(0.9f, nesterov, 0.05f);
        var p = program.Params.Select(x => (double)x).ToArray();
        var buf = new double[n];
        float[] rates = { 0.1f, 0.05f, 0.05f, 0.02f, 0.01f };
        for (int t = 1; t <= rates.Length; t++)
        {
            FillRandom(program.Grads, rng, 0.5);
            double lr = rates[t - 1];
            for (int i = 0; i < n; i++)
            {
                double d = program.Grads[i] + (decay[i] ? wd * p[i] : 0);
                // PyTorch: the buffer is d on the first step, μ·buf + d after; with a zero start both agree.
                buf[i] = t == 1 ? d : mu * buf[i] + d;
                d = nesterov ? d + mu * buf[i] : buf[i];
                p[i] -= lr * d;
            }
            optimizer.Step(program, rates[t - 1]);
        }
        for (int i = 0; i < n; i++) AssertClose(p[i], program.Params[i], seed, i);
        for (int i = 0; i < n; i++) AssertClose(buf[i], optimizer.State["momentum"][i], seed, i);
    }

    [Fact]
    public void Plain_sgd_keeps_no_state_and_steps_against_the_gradient()
    {
        var program = MixedTable();
        Array.Fill(program.Params, 1f);
        Array.Fill(program.Grads, 0.5f);
        var optimizer = new Sgd(momentum: 0f);
        optimizer.Step(program, 0.1f);
        Assert.Empty(optimizer.State);
        Assert.All(program.Params, x => Assert.Equal(1f - 0.05f, x));
    }

    [Fact]
    public void Loaded_state_continues_exactly_where_the_saved_optimizer_was()
    {
        int seed = TestSeed.Fresh();
        var rng = new System.Random(seed);
        var a = MixedTable();
        FillRandom(a.Params, rng, 1.0);
        var first = new AdamW();
        for (int t = 0; t < 3; t++)
        {
            FillRandom(a.Grads, rng, 1.0);
            first.Step(a, 0.01f);
        }
        var b = MixedTable();
        Array.Copy(a.Params, b.Params, a.Params.Length);
        var second = new AdamW();
        second.LoadState(first.StepCount, first.State);
        FillRandom(a.Grads, rng, 1.0);
        Array.Copy(a.Grads, b.Grads, a.Grads.Length);
        first.Step(a, 0.01f);
        second.Step(b, 0.01f);
        Assert.Equal(a.Params, b.Params);
        Assert.Equal(4, second.StepCount);

        var wrongLength = new System.Collections.Generic.Dictionary<string, float[]> { ["m"] = new float[3], ["v"] = new float[3] };
        second.LoadState(1, wrongLength);
        var e = Assert.Throws<InvalidOperationException>(() => second.Step(b, 0.01f));
        Assert.Contains("holds 3 values", e.Message);
        var missing = new System.Collections.Generic.Dictionary<string, float[]> { ["m"] = new float[3] };
        Assert.Contains("'v'", Assert.Throws<ArgumentException>(() => second.LoadState(1, missing)).Message);
    }
}

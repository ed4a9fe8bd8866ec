using System;
using System.Collections.Generic;
using Kiln.Runtime;

namespace Kiln.Runtime.Tests;

/// <summary>
/// A hand-written program for y ≈ w·x + b with mean squared error and analytic gradients, standing in
/// for a generated one. <c>w</c> decays, <c>b</c> does not.
/// </summary>
internal sealed class LinearRegressionProgram : ModelProgram
{
    private readonly int _features;

    public LinearRegressionProgram(int features)
        : base(Table(features), features + 1)
    {
        _features = features;
    }

    /// <summary>Returns NaN from <see cref="TrainStep"/> for the steps it names (adding no gradient), to simulate divergence.</summary>
    public Func<long, bool> PoisonStep { get; set; } = _ => false;

    /// <summary>Adds NaN to the gradient (but returns a finite loss) on the steps it names.</summary>
    public Func<long, bool> PoisonGradient { get; set; } = _ => false;

    /// <summary>Every <see cref="StepContext"/> seen, in order.</summary>
    public List<StepContext> Contexts { get; } = new();

    public override string ModelName => "LinearRegression";

    public override IReadOnlyList<InputInfo> LossInputs { get; } = new[]
    {
        new InputInfo("x", ElementType.Float32, new[] { "B", "F" }),
        new InputInfo("y", ElementType.Float32, new[] { "B" }),
    };

    public override IReadOnlyList<InputInfo> ForwardInputs { get; } = new[] { new InputInfo("x", ElementType.Float32, new[] { "B", "F" }) };
    public override IReadOnlyList<ProgramInfo> Programs => new[] { new ProgramInfo("train", "TrainStep", LossInputs), new ProgramInfo("eval", "EvalLoss", LossInputs), new ProgramInfo("predict", "Forward", ForwardInputs) };

    public override string IrText => "";

    public override string Report => "";

    public override long ArenaBytes => 0;

    public override float TrainStep(Batch batch, StepContext context)
    {
        Contexts.Add(context);
        if (PoisonStep(context.Step)) return float.NaN;
        float loss = Loss(batch, withGradients: true);
        if (PoisonGradient(context.Step)) Grads[0] += float.NaN;
        return loss;
    }

    public override float EvalLoss(Batch batch) => Loss(batch, withGradients: false);

    public override TensorData Forward(Batch batch)
    {
        var x = batch["x"];
        int n = x.Shape[0];
        var y = new float[n];
        for (int i = 0; i < n; i++) y[i] = Predict(x.Floats!, i);
        return TensorData.Float(y, n);
    }

    private float Predict(float[] x, int row)
    {
        double s = Params[_features];
        for (int f = 0; f < _features; f++) s += (double)Params[f] * x[row * _features + f];
        return (float)s;
    }

    private float Loss(Batch batch, bool withGradients)
    {
        var x = batch["x"].Floats!;
        var y = batch["y"].Floats!;
        int n = y.Length;
        double loss = 0;
        for (int i = 0; i < n; i++)
        {
            double r = Predict(x, i) - y[i];
            loss += r * r;
            if (withGradients)
            {
                // d/dθ of mean(r²) = 2r/n · ∂r/∂θ.
                float g = (float)(2 * r / n);
                for (int f = 0; f < _features; f++) Grads[f] += g * x[i * _features + f];
                Grads[_features] += g;
            }
        }
        return (float)(loss / n);
    }

    private static ParameterInfo[] Table(int features) => new[]
    {
        new ParameterInfo("w", new[] { features }, 0, features, InitKind.Zeros, 0f, WeightDecay: true),
        new ParameterInfo("b", new[] { 1 }, features, 1, InitKind.Zeros, 0f, WeightDecay: false),
    };
}

/// <summary>A program that is only a parameter table, for optimizer tests that set gradients by hand.</summary>
internal sealed class TableProgram : ModelProgram
{
    public TableProgram(params ParameterInfo[] table) : base(table, Total(table)) { }

    public override string ModelName => "Table";
    public override IReadOnlyList<InputInfo> LossInputs => Array.Empty<InputInfo>();
    public override IReadOnlyList<InputInfo> ForwardInputs => Array.Empty<InputInfo>();
    public override IReadOnlyList<ProgramInfo> Programs => Array.Empty<ProgramInfo>();
    public override string IrText => "";
    public override string Report => "";
    public override long ArenaBytes => 0;
    public override float TrainStep(Batch batch, StepContext context) => throw new NotSupportedException();
    public override float EvalLoss(Batch batch) => throw new NotSupportedException();
    public override TensorData Forward(Batch batch) => throw new NotSupportedException();

    private static long Total(ParameterInfo[] table)
    {
        long n = 0;
        foreach (var p in table) n = Math.Max(n, p.Offset + p.Length);
        return n;
    }
}

/// <summary>Fresh randomness per run, with the seed in every failure message so a failure can be replayed.</summary>
internal static class TestSeed
{
    public static int Fresh() => System.Random.Shared.Next();
}

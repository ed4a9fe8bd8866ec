using System;
using Kiln;
using Kiln.Runtime;

namespace Spirals;

/// <summary>The two-spirals data set and the accuracy metric.</summary>
public static class SpiralData
{
    /// <summary>n points on two interleaved spirals with Gaussian noise; labels 0 and 1.</summary>
    public static (float[] X, int[] Y) Generate(int n, double turns, double noise, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n * 2];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            int cls = i % 2;
            double t = Math.Sqrt(rng.NextDouble()) * turns * 2 * Math.PI; // denser toward the outside
            double r = t / (turns * 2 * Math.PI) * 2.0 + 0.1;
            double angle = t + cls * Math.PI;
            x[2 * i] = (float)(r * Math.Cos(angle) + noise * Gaussian(rng));
            x[2 * i + 1] = (float)(r * Math.Sin(angle) + noise * Gaussian(rng));
            y[i] = cls;
        }
        return (x, y);
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>Fraction of points whose arg-max logit is the label.</summary>
    public static double Accuracy(Trainer trainer, Dataset data)
    {
        int correct = 0;
        var indices = new int[data.Count];
        for (int i = 0; i < indices.Length; i++) indices[i] = i;
        var batch = data.GetBatch(indices);
        var logits = trainer.Predict(batch).Floats!;
        var labels = batch["label"].Ints!;
        int classes = logits.Length / labels.Length;
        for (int i = 0; i < labels.Length; i++)
        {
            int best = 0;
            for (int c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
            if (best == labels[i]) correct++;
        }
        return (double)correct / labels.Length;
    }
}

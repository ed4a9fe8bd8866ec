using System;
using System.IO;
using System.Linq;
using System.Reflection;
using Kiln.Runtime;

namespace Kiln.Generators.Tests;

/// <summary>
/// The README's main job, end to end: the example's own model and data sources are generated, compiled
/// and trained here, so a regression in any part of the pipeline that costs accuracy fails CI.
/// </summary>
public class ExampleTrainingTests
{
    private static string ExampleFile(string name) => RepoFiles.Read("examples/Spirals/" + name);

    [Fact]
    public void Spirals_example_model_trains_to_98_percent_held_out_accuracy()
    {
        var asm = GeneratorHarness.Build(ExampleFile("SpiralClassifier.cs"), ExampleFile("SpiralData.cs"));
        var data = asm.GetType("Spirals.SpiralData", throwOnError: true)!;
        var (x, y) = ((float[], int[]))data.GetMethod("Generate")!.Invoke(null, new object[] { 4000, 2.0, 0.08, 7 })!;
        var all = new InMemoryDataset(("x", TensorData.Float(x, 4000, 2)), ("label", TensorData.Int(y, 4000)));
        var (train, heldOut) = all.Split(0.2, 11);

        var program = GeneratorHarness.CreateProgram(asm, "Spirals.SpiralClassifier");
        var trainer = new Trainer(program, new TrainOptions
        {
            Steps = 1500, BatchSize = 64, LearningRate = 3e-3f, WarmupSteps = 50, WeightDecay = 0.01f,
            Progress = ProgressMode.None, Device = "cpu",
        });
        double before = trainer.Evaluate(heldOut);
        var result = trainer.Fit(train, heldOut);
        double accuracy = (double)data.GetMethod("Accuracy")!.Invoke(null, new object[] { trainer, heldOut })!;

        Assert.True(before > 0.5, $"an untrained classifier should be near chance (held-out loss {before:F3})");
        Assert.True(result.FinalTrainLoss < 0.05, $"final train loss {result.FinalTrainLoss:F4}");
        Assert.True(accuracy >= 0.98, $"held-out accuracy {accuracy:P2} is below the example's 98% target");
    }
}

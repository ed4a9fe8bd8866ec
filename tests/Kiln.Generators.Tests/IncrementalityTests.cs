using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Kiln.Generators.Tests;

/// <summary>
/// The incremental pipeline does no work it does not have to: edits that cannot change a model's program leave
/// the tracked steps cached, and edits that do change it flow through. Also checks KilnDumpIr output.
/// </summary>
public class IncrementalityTests
{
    private const string ModelPath = "Model0.cs";
    private const string OtherPath = "Other.cs";

    private const string Model = """
        using Kiln;
        namespace Inc;

        // A small regressor whose activation the tests swap.
        [Model]
        public partial class Mlp(int dim = 3, int hidden = 8)
        {
            Linear fc1 = new(dim, hidden), fc2 = new(hidden, 1);
            public Tensor Forward([Shape("B", "dim")] Tensor x) => fc2.Forward(Ops.Tanh(fc1.Forward(x)));
            [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }
        """;

    private const string Other = """
        namespace Inc;

        // Unrelated code in the same project.
        public static class Helpers
        {
            public static int Twice(int x) => x * 2;
        }
        """;

    private static SyntaxTree Parse(string text, string path) => CSharpSyntaxTree.ParseText(text, GeneratorHarness.ParseOptions, path: path);

    /// <summary>Runs the driver over the original sources, then over the compilation with <paramref name="path"/> replaced.</summary>
    private static (GeneratorDriverRunResult First, GeneratorDriverRunResult Second) RunTwice(string path, string newText)
    {
        var compilation = GeneratorHarness.Compilation(Model, Other);
        compilation = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.ElementAt(1), Parse(Other, OtherPath));
        var driver = GeneratorHarness.Driver().RunGenerators(compilation);
        var first = driver.GetRunResult();

        var old = compilation.SyntaxTrees.Single(t => t.FilePath == path);
        var edited = compilation.ReplaceSyntaxTree(old, Parse(newText, path));
        var second = driver.RunGenerators(edited).GetRunResult();
        return (first, second);
    }

    private static IReadOnlyList<IncrementalStepRunReason> OutputReasons(GeneratorDriverRunResult run, string step)
    {
        var result = run.Results.Single();
        Assert.True(result.TrackedSteps.TryGetValue(step, out var steps), $"step '{step}' was not tracked; tracked: {string.Join(", ", result.TrackedSteps.Keys)}");
        var reasons = steps.SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
        Assert.NotEmpty(reasons);
        return reasons;
    }

    private static string GeneratedModelText(GeneratorDriverRunResult run) =>
        run.Results.Single().GeneratedSources.Single(s => s.HintName == "Inc.Mlp.g.cs").SourceText.ToString();

    private static void AssertAllCachedOrUnchanged(GeneratorDriverRunResult run, string step)
    {
        var reasons = OutputReasons(run, step);
        Assert.True(reasons.All(r => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged),
            $"{step} outputs should be Cached or Unchanged but were: {string.Join(", ", reasons)}");
    }

    [Fact]
    public void Editing_a_comment_in_another_file_leaves_compile_and_source_steps_cached()
    {
        var (first, second) = RunTwice(OtherPath, Other.Replace("// Unrelated code in the same project.", "// Unrelated code, edited."));

        AssertAllCachedOrUnchanged(second, KilnGenerator.CompileStep);
        AssertAllCachedOrUnchanged(second, KilnGenerator.SourceStep);
        Assert.Equal(GeneratedModelText(first), GeneratedModelText(second));
    }

    [Fact]
    public void Editing_a_comment_in_the_model_file_without_moving_lines_leaves_the_source_step_unchanged()
    {
        var edited = Model.Replace("// A small regressor whose activation the tests swap.", "// A regressor; this comment was edited and is longer now.");
        Assert.NotEqual(Model, edited);
        Assert.Equal(Model.Split('\n').Length, edited.Split('\n').Length);

        var (first, second) = RunTwice(ModelPath, edited);

        AssertAllCachedOrUnchanged(second, KilnGenerator.SourceStep);
        Assert.Equal(GeneratedModelText(first), GeneratedModelText(second));
    }

    [Fact]
    public void Changing_the_forward_method_modifies_the_source_step_and_the_generated_text()
    {
        var edited = Model.Replace("Ops.Tanh(", "Ops.Relu(");
        Assert.NotEqual(Model, edited);

        var (first, second) = RunTwice(ModelPath, edited);

        Assert.Contains(IncrementalStepRunReason.Modified, OutputReasons(second, KilnGenerator.SourceStep));
        Assert.NotEqual(GeneratedModelText(first), GeneratedModelText(second));
        Assert.Contains("relu", GeneratedModelText(second), StringComparison.Ordinal);
        Assert.DoesNotContain("tanh", GeneratedModelText(second), StringComparison.Ordinal);
    }

    [Fact]
    public void KilnDumpIr_adds_one_IR_dump_per_pass_of_each_program()
    {
        var compilation = GeneratorHarness.Compilation(Model);
        var plain = GeneratorHarness.Driver().RunGenerators(compilation).GetRunResult().Results.Single().GeneratedSources;
        var dumped = GeneratorHarness.Driver(dumpIr: true).RunGenerators(compilation).GetRunResult().Results.Single().GeneratedSources;

        Assert.DoesNotContain(plain, s => s.HintName.Contains(".ir.", StringComparison.Ordinal));
        var dumps = dumped.Where(s => s.HintName.StartsWith("Inc.Mlp.ir.", StringComparison.Ordinal)).ToList();
        Assert.Equal(dumped.Length - 3, dumps.Count); // everything but the program, its CUDA source carrier and the module library

        // Header line 2 reads "// Kiln IR of Mlp, <program> after <pass>".
        var headers = dumps.Select(d => d.SourceText.Lines[1].ToString()).ToList();
        string[] passes = { "lowering", "shape inference", "simplify", "mixed precision", "fusion", "memory plan" };
        foreach (var program in new[] { "train", "eval", "predict" })
        {
            var expected = program == "train" ? passes.Take(2).Append("autodiff").Concat(passes.Skip(2)) : passes;
            var actual = headers.Where(h => h.StartsWith($"// Kiln IR of Mlp, {program} after ", StringComparison.Ordinal))
                .Select(h => h.Substring($"// Kiln IR of Mlp, {program} after ".Length)).ToList();
            Assert.Equal(expected, actual);
        }
        Assert.Equal(7 + 6 + 6, dumps.Count);
        Assert.All(dumps, d => Assert.StartsWith("// <auto-generated/>", d.SourceText.ToString(), StringComparison.Ordinal));
        Assert.All(dumps, d => Assert.Contains("graph ", d.SourceText.ToString(), StringComparison.Ordinal));
    }
}

using System;
using System.IO;
using System.Linq;
using Microsoft.Build.Framework;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Kiln.Build.Tasks.Tests;

/// <summary>WritePlanReports run in-process on an assembly compiled here with the generator's plan constants.</summary>
public sealed class WritePlanReportsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-plan-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Markdown = "# Kiln plan: Gpt\n\nMesh: data 2 × tensor 1 × pipeline 1 = 2 ranks; 1 micro-batch(es) per step; ZeRO off.\n\n| what | bytes |\n|---|---|\n| **total** | **289.3 KiB (296,192 B)** |\n";

    private string Carrier(params string[] types)
    {
        static string Lit(string s) => "@\"" + s.Replace("\"", "\"\"") + "\"";
        var code = "namespace Zoo {\n" + string.Concat(types.Select(t =>
            $"public partial class {t} {{ public const string KilnPlanReport = {Lit(Markdown.Replace("Gpt", t))}; public const string KilnPlanJson = {Lit("{ \"model\": \"" + t + "\" }\n")}; }}\n")) + "}";
        var compilation = CSharpCompilation.Create("Carrier" + Guid.NewGuid().ToString("N"), new[] { CSharpSyntaxTree.ParseText(code) },
            new[] { MetadataReference.CreateFromFile(typeof(object).Assembly.Location) }, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        string path = Path.Combine(_dir, compilation.AssemblyName + ".dll");
        var emitted = compilation.Emit(path);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        return path;
    }

    private (WritePlanReports Task, RecordingBuildEngine Engine, bool Ok) Run(string assembly, string output)
    {
        var engine = new RecordingBuildEngine();
        var task = new WritePlanReports { BuildEngine = engine, Assembly = new Microsoft.Build.Utilities.TaskItem(assembly), OutputDirectory = output };
        return (task, engine, task.Execute());
    }

    [Fact]
    public void Writes_each_models_plan_as_Markdown_and_JSON_and_logs_its_ranks_and_memory()
    {
        var output = Path.Combine(_dir, "kiln-plan");
        var (task, engine, ok) = Run(Carrier("Gpt", "Mlp"), output);
        Assert.True(ok, string.Join("\n", engine.Errors.Select(e => e.Message)));
        Assert.Equal(new[] { "Zoo.Gpt.plan.json", "Zoo.Gpt.plan.md", "Zoo.Mlp.plan.json", "Zoo.Mlp.plan.md" },
            Directory.GetFiles(output).Select(Path.GetFileName).OrderBy(f => f, StringComparer.Ordinal));
        Assert.Equal(Markdown, File.ReadAllText(Path.Combine(output, "Zoo.Gpt.plan.md")));
        Assert.Equal("{ \"model\": \"Mlp\" }\n", File.ReadAllText(Path.Combine(output, "Zoo.Mlp.plan.json")));
        Assert.Equal(4, task.PlanFiles.Length);
        var line = Assert.Single(engine.Messages, m => m.Message!.StartsWith("Kiln: plan of Zoo.Gpt", StringComparison.Ordinal));
        Assert.Equal(MessageImportance.High, line.Importance);
        Assert.Contains("data 2 × tensor 1 × pipeline 1 = 2 ranks; 1 micro-batch(es) per step; ZeRO off; 289.3 KiB (296,192 B) per rank", line.Message);
    }

    [Fact]
    public void An_unchanged_plan_is_not_rewritten_and_the_files_of_a_removed_model_are_deleted()
    {
        var output = Path.Combine(_dir, "kiln-plan");
        Assert.True(Run(Carrier("Gpt", "Mlp"), output).Ok);
        var md = Path.Combine(output, "Zoo.Gpt.plan.md");
        var old = DateTime.UtcNow.AddHours(-1);
        File.SetLastWriteTimeUtc(md, old);
        Assert.True(Run(Carrier("Gpt"), output).Ok);
        Assert.Equal(old, File.GetLastWriteTimeUtc(md));
        Assert.Equal(new[] { "Zoo.Gpt.plan.json", "Zoo.Gpt.plan.md" }, Directory.GetFiles(output).Select(Path.GetFileName).OrderBy(f => f, StringComparer.Ordinal));
    }

    [Fact]
    public void A_total_that_is_still_a_formula_is_not_printed_in_the_log()
    {
        var md = "Mesh: data 1 × tensor 1 × pipeline 1 = 1 ranks; 1 micro-batch(es) per step; ZeRO off.\n| **total** | **`4·(B*T*dim + 7/8)` B** |\n";
        Assert.Equal("data 1 × tensor 1 × pipeline 1 = 1 ranks; 1 micro-batch(es) per step; ZeRO off; memory per rank is a formula of the unbound sizes (give Batch and Sequence in [Parallel])",
            WritePlanReports.Summary(md));
    }

    [Fact]
    public void A_file_that_is_not_an_assembly_is_KILNB004()
    {
        var bogus = Path.Combine(_dir, "bogus.dll");
        File.WriteAllText(bogus, "not a PE file");
        var (_, engine, ok) = Run(bogus, Path.Combine(_dir, "kiln-plan"));
        Assert.False(ok);
        Assert.Equal(BuildCodes.AssemblyUnreadable, Assert.Single(engine.Errors).Code);
    }
}

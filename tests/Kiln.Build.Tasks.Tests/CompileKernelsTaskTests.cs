using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Kiln.Build.Tasks.Tests;

/// <summary>Records what a task logs, in place of MSBuild.</summary>
internal sealed class RecordingBuildEngine : IBuildEngine
{
    public List<BuildErrorEventArgs> Errors { get; } = new();
    public List<BuildWarningEventArgs> Warnings { get; } = new();
    public List<BuildMessageEventArgs> Messages { get; } = new();

    public bool ContinueOnError => false;
    public int LineNumberOfTaskNode => 0;
    public int ColumnNumberOfTaskNode => 0;
    public string ProjectFileOfTaskNode => "test.csproj";

    public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) => throw new NotSupportedException();
    public void LogCustomEvent(CustomBuildEventArgs e) { }
    public void LogErrorEvent(BuildErrorEventArgs e) => Errors.Add(e);
    public void LogMessageEvent(BuildMessageEventArgs e) => Messages.Add(e);
    public void LogWarningEvent(BuildWarningEventArgs e) => Warnings.Add(e);
}

/// <summary>CompileKernels run in-process on an assembly compiled here, whose kernel has a known NVRTC warning at a known C# line.</summary>
public sealed class CompileKernelsTaskTests : IDisposable
{
    private const string ModelPath = "/models/Warned.cs";

    // The unused variable makes NVRTC warn (#177-D) at the line the #line directive names: Warned.cs line 12.
    private const string Cuda = "// header\nextern \"C\" __global__ void warned_k0_fwd(float* __restrict__ out, long long n)\n{\n" +
                                "    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n#line 12 \"" + ModelPath + "\"\n    long long rem = i;\n" +
                                "#line 7 \"Warned.cu\"\n    if (i < n) out[i] = (float)i;\n}\n";

    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-task-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string CarrierAssembly()
    {
        string literal = "@\"" + Cuda.Replace("\"", "\"\"") + "\"";
        var compilation = CSharpCompilation.Create("Carrier",
            new[] { CSharpSyntaxTree.ParseText("namespace Zoo { public partial class Warned { public const string KilnCudaSource = " + literal + "; } }") },
            new[] { MetadataReference.CreateFromFile(typeof(object).Assembly.Location) },
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        string path = Path.Combine(_dir, "Carrier.dll");
        var emitted = compilation.Emit(path);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        return path;
    }

    private (CompileKernels Task, RecordingBuildEngine Engine) NewTask(string assembly, string architectures = "sm_80", string precisions = "f32")
    {
        var engine = new RecordingBuildEngine();
        var task = new CompileKernels
        {
            BuildEngine = engine,
            Assembly = new TaskItem(assembly),
            CacheDirectory = Path.Combine(_dir, "kiln-kernels"),
            Architectures = architectures,
            Precisions = precisions,
            BundleListFile = Path.Combine(_dir, "bundle.txt"),
            StampFile = Path.Combine(_dir, "kernels.stamp"),
            ReportFile = Path.Combine(_dir, "report.md"),
        };
        return (task, engine);
    }

    [NvrtcFact]
    public void NVRTC_warning_is_KILNB003_at_the_CSharp_line_and_the_kernels_are_still_written_then_reused()
    {
        var (task, engine) = NewTask(CarrierAssembly());
        Assert.True(task.Execute(), string.Join("\n", engine.Errors.Select(e => e.Message)));
        var w = Assert.Single(engine.Warnings);
        Assert.Equal("KILNB003", w.Code);
        Assert.Equal(ModelPath, w.File);
        Assert.Equal(12, w.LineNumber);
        Assert.Contains("\"rem\"", w.Message);
        Assert.Contains("Zoo.Warned, f32, sm_80", w.Message);
        Assert.Equal(2, task.KernelFiles.Length); // sm_80 CUBIN and compute_80 PTX
        Assert.All(task.KernelFiles, f => Assert.True(File.Exists(f.ItemSpec), f.ItemSpec));
        Assert.True(File.Exists(Path.Combine(_dir, "kernels.stamp")));
        Assert.Contains("| warned_k0_fwd |", File.ReadAllText(Path.Combine(_dir, "report.md")));
        Assert.Contains(engine.Messages, m => m.Importance == MessageImportance.High && m.Message!.Contains("2 files compiled, 0 cached"));

        var (again, engine2) = NewTask(CarrierAssembly());
        Assert.True(again.Execute());
        Assert.Empty(engine2.Warnings); // nothing compiled, so NVRTC had nothing to say
        Assert.Contains(engine2.Messages, m => m.Importance == MessageImportance.High && m.Message!.Contains("0 files compiled, 2 cached"));
    }

    [Fact]
    public void A_file_that_is_not_an_assembly_is_KILNB004_naming_it()
    {
        string path = Path.Combine(_dir, "NotAnAssembly.dll");
        File.WriteAllText(path, "plain text");
        var (task, engine) = NewTask(path);
        Assert.False(task.Execute());
        var e = Assert.Single(engine.Errors);
        Assert.Equal("KILNB004", e.Code);
        Assert.Equal(path, e.File);
        Assert.Contains(path, e.Message);
        Assert.False(File.Exists(Path.Combine(_dir, "kernels.stamp")));
    }

    [NvrtcFact]
    public void An_architecture_NVRTC_cannot_build_is_KILNB005_listing_what_it_can()
    {
        var (task, engine) = NewTask(CarrierAssembly(), architectures: "sm_80;sm_990");
        Assert.False(task.Execute());
        var e = Assert.Single(engine.Errors);
        Assert.Equal("KILNB005", e.Code);
        Assert.Contains("'sm_990' is not supported by NVRTC", e.Message);
        Assert.Contains("sm_80", e.Message);
        Assert.False(File.Exists(Path.Combine(_dir, "kernels.stamp")));
    }

    [Fact]
    public void Bad_precision_and_architecture_entries_are_each_one_KILNB005_and_nothing_is_read()
    {
        var (task, engine) = NewTask(Path.Combine(_dir, "missing.dll"), architectures: "sm_8", precisions: "bf16;tf32");
        Assert.False(task.Execute());
        Assert.Equal(new[] { "KILNB005", "KILNB005" }, engine.Errors.Select(e => e.Code));
        Assert.Contains(engine.Errors, e => e.Message!.Contains("'sm_8'"));
        Assert.Contains(engine.Errors, e => e.Message!.Contains("'tf32'"));
    }
}

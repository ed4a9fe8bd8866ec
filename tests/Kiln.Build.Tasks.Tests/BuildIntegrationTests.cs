using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using System.Text.RegularExpressions;
using Kiln.Runtime.Cuda;

namespace Kiln.Build.Tasks.Tests;

/// <summary>
/// Builds one small temporary project (a two-layer MLP model referencing the repository's projects and importing
/// Kiln.props/targets) with <c>dotnet build</c>, in a fixed order, once per test run: skip, no NVRTC, first build,
/// unchanged rebuild, bad architecture, broken kernel. Each fact checks one of those builds.
/// </summary>
public sealed class TinyProjectBuilds : IDisposable
{
    public const string ModelFile = "TinyMlp.cs";

    public const string ModelSource = """
        using Kiln;

        namespace TinyKernels;

        /// <summary>A two-layer MLP classifier: the smallest model with forward, loss and backward kernels.</summary>
        [Model]
        public partial class TinyMlp(int features = 2, int hidden = 8, int classes = 2)
        {
            Linear fc1 = new(features, hidden);
            Linear fc2 = new(hidden, classes);

            public Tensor Forward([Shape("B", "features")] Tensor x) => fc2.Forward(Ops.Gelu(fc1.Forward(x)));

            [Loss]
            public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> label) =>
                Ops.CrossEntropy(Forward(x), label);
        }
        """;

    public sealed record BuildRun(string Name, int ExitCode, string Output, TimeSpan Elapsed)
    {
        public override string ToString() => $"build '{Name}' exited {ExitCode} after {Elapsed.TotalSeconds:0.0} s:\n{Output}";
    }

    public string Root { get; }
    public string ProjectDir => Path.Combine(Root, "Tiny");
    public string ObjKernels => Path.Combine(ProjectDir, "obj", "Release", "net10.0", "kiln-kernels");
    public string BinKernels => Path.Combine(ProjectDir, "bin", "Release", "net10.0", "kiln-kernels");
    public string BinAssembly => Path.Combine(ProjectDir, "bin", "Release", "net10.0", "Tiny.dll");
    public string? Skip { get; }

    public BuildRun Skipped { get; } = null!;
    public string[] KernelFilesAfterSkip { get; } = Array.Empty<string>();
    public BuildRun NoNvrtc { get; } = null!;
    public string[] KernelFilesAfterNoNvrtc { get; } = Array.Empty<string>();
    public BuildRun First { get; } = null!;
    public string[] ObjFilesAfterFirst { get; } = Array.Empty<string>();
    public string[] BinFilesAfterFirst { get; } = Array.Empty<string>();
    public BuildRun Second { get; } = null!;
    public BuildRun BadArchitecture { get; } = null!;
    public BuildRun Broken { get; } = null!;

    public TinyProjectBuilds()
    {
        Root = Directory.CreateTempSubdirectory("kiln-buildtask-").FullName;
        Skip = NvrtcAvailability.SkipReason;
        if (Skip is not null) return;
        Directory.CreateDirectory(ProjectDir);
        // Stop MSBuild from picking up Directory.Build.* or central package management from folders above the temp dir.
        File.WriteAllText(Path.Combine(Root, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(Root, "Directory.Build.targets"), "<Project />\n");
        File.WriteAllText(Path.Combine(Root, "Directory.Packages.props"), "<Project />\n");
        string src = RepoFiles.Path("src");
        File.WriteAllText(Path.Combine(ProjectDir, "Tiny.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <Import Project="{src}/Build.Tasks/build/Kiln.props" />
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>disable</ImplicitUsings>
                <SatelliteResourceLanguages>en</SatelliteResourceLanguages>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{src}/Runtime/Kiln.Runtime.csproj" />
                <ProjectReference Include="{src}/Generators/Kiln.Generators.csproj" OutputItemType="Analyzer" ReferenceOutputAssembly="false" />
                <ProjectReference Include="{src}/Build.Tasks/Kiln.Build.Tasks.csproj" ReferenceOutputAssembly="false" />
              </ItemGroup>
              <Import Project="{src}/Build.Tasks/build/Kiln.targets" />
            </Project>
            """);
        File.WriteAllText(Path.Combine(ProjectDir, ModelFile), ModelSource);

        string emptyCuda = Directory.CreateDirectory(Path.Combine(Root, "empty-cuda")).FullName;
        Skipped = Build("skip", restore: true, "-p:KilnSkipKernelCompile=true");
        KernelFilesAfterSkip = KernelFiles();
        NoNvrtc = Build("no NVRTC", restore: false, new[] { "-p:KilnNvrtcPath=/nonexistent/libnvrtc.so" }, ("KILN_CUDA_PATH", emptyCuda));
        KernelFilesAfterNoNvrtc = KernelFiles();
        First = Build("first", restore: false);
        ObjFilesAfterFirst = Files(ObjKernels);
        BinFilesAfterFirst = Files(BinKernels);
        Second = Build("second", restore: false, "-v:n");
        BadArchitecture = Build("bad architecture", restore: false, "-p:KilnCudaArchitectures=sm_7x");
        Broken = Build("broken kernel", restore: false, "-p:KilnTestBreakKernel=true");
    }

    private string[] KernelFiles() => Files(ObjKernels).Concat(Files(BinKernels)).Where(f => f.EndsWith(".cubin") || f.EndsWith(".ptx")).ToArray();

    private static string[] Files(string dir) =>
        Directory.Exists(dir) ? Directory.GetFiles(dir).Select(f => Path.GetFileName(f)).OrderBy(f => f, StringComparer.Ordinal).ToArray() : Array.Empty<string>();

    private BuildRun Build(string name, bool restore, params string[] args) => Build(name, restore, args, Array.Empty<(string, string)>());

    private BuildRun Build(string name, bool restore, string[] args, params (string Name, string Value)[] environment)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = ProjectDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "build", "Tiny.csproj", "-c", "Release", "-nodeReuse:false", "-tl:off", "-p:UseSharedCompilation=false" }) psi.ArgumentList.Add(a);
        // The first build restores and builds the referenced Kiln projects; the later ones only need this project.
        if (!restore) { psi.ArgumentList.Add("--no-restore"); psi.ArgumentList.Add("-p:BuildProjectReferences=false"); }
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment.Remove("KILN_CUDA_PATH");
        foreach (var (n, v) in environment) psi.Environment[n] = v;
        var output = new StringBuilder();
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(300_000)) { process.Kill(entireProcessTree: true); output.AppendLine("(killed after 300 s)"); }
        process.WaitForExit();
        return new BuildRun(name, process.ExitCode, output.ToString(), clock.Elapsed);
    }

    /// <summary>The model's CUDA source, read by reflection from the built assembly in its own load context.</summary>
    public string CudaSourceByReflection()
    {
        var context = new AssemblyLoadContext("tiny-" + Guid.NewGuid().ToString("N"), isCollectible: true);
        string dir = Path.GetDirectoryName(BinAssembly)!;
        context.Resolving += (ctx, name) => File.Exists(Path.Combine(dir, name.Name + ".dll")) ? ctx.LoadFromAssemblyPath(Path.Combine(dir, name.Name + ".dll")) : null;
        try
        {
            var assembly = context.LoadFromAssemblyPath(BinAssembly);
            var field = assembly.GetType("TinyKernels.TinyMlp", throwOnError: true)!.GetField("KilnCudaSource", BindingFlags.Public | BindingFlags.Static)!;
            return (string)field.GetRawConstantValue()!;
        }
        finally { context.Unload(); }
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

public class BuildIntegrationTests(TinyProjectBuilds builds, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<TinyProjectBuilds>
{
    private static readonly string[] Precisions = { KernelCacheKey.BFloat16Define, KernelCacheKey.Float16Define, KernelCacheKey.Float32Define };

    [NvrtcFact]
    public void First_build_writes_a_cubin_per_architecture_and_PTX_per_precision_under_the_runtime_key_to_obj_and_bin()
    {
        Assert.True(builds.First.ExitCode == 0, builds.First.ToString());
        string source = builds.CudaSourceByReflection();
        var expected = Precisions.Select(d => KernelCacheKey.Compute(source, new[] { d }))
            .SelectMany(k => new[] { KernelCacheKey.CubinFile(k, 80), KernelCacheKey.CubinFile(k, 90), KernelCacheKey.PtxFile(k, 90) })
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
        Assert.Equal(expected, builds.BinFilesAfterFirst);
        Assert.Equal(expected, builds.ObjFilesAfterFirst.Where(f => f.EndsWith(".cubin") || f.EndsWith(".ptx")));
        Assert.Contains("kernels-report.md", builds.ObjFilesAfterFirst);
        Assert.Matches(@"Kiln: 1 model, \d+ kernels × bf16/f16/f32: 9 files compiled, 0 cached \(sm_80, sm_90, compute_90\)", builds.First.Output);
        string report = File.ReadAllText(Path.Combine(builds.ObjKernels, "kernels-report.md"));
        Assert.Contains("## TinyKernels.TinyMlp · bf16 · sm_90", report);
        Assert.Matches(@"\| TinyMlp_train_\w+ \| \d+ \| \d+ \| \d+ \| \d+ \| \d+ \|", report);
        foreach (var cubin in expected.Where(f => f.EndsWith(".cubin")))
            Assert.Equal(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }, File.ReadAllBytes(Path.Combine(builds.BinKernels, cubin)).Take(4));
    }

    [NvrtcFact]
    public void The_build_writes_the_plan_report_and_logs_it_and_an_unchanged_rebuild_skips_it()
    {
        Assert.True(builds.First.ExitCode == 0, builds.First.ToString());
        // The plan is written by the project's first build (the one that skips kernels: the plan does not need NVRTC).
        Assert.True(builds.Skipped.Output.Contains("Kiln: plan of TinyKernels.TinyMlp: data 1 × tensor 1 × pipeline 1 = 1 ranks", StringComparison.Ordinal), builds.Skipped.ToString());
        var dir = Path.Combine(builds.ProjectDir, "obj", "Release", "net10.0", "kiln-plan");
        var markdown = File.ReadAllText(Path.Combine(dir, "TinyKernels.TinyMlp.plan.md"));
        Assert.StartsWith("# Kiln plan: TinyMlp", markdown);
        Assert.Contains("\"mesh\": { \"data\": 1, \"tensor\": 1, \"pipeline\": 1 }", File.ReadAllText(Path.Combine(dir, "TinyKernels.TinyMlp.plan.json")));
        Assert.Contains("Skipping target \"KilnWritePlanReports\" because all output files are up-to-date", builds.Second.Output);
    }

    [NvrtcFact]
    public void Unchanged_rebuild_skips_the_kernel_target_and_keeps_the_bundle()
    {
        foreach (var run in new[] { builds.Skipped, builds.NoNvrtc, builds.First, builds.Second, builds.BadArchitecture, builds.Broken })
            output.WriteLine($"build '{run.Name}': {run.Elapsed.TotalSeconds:0.0} s, exit code {run.ExitCode}");
        Assert.True(builds.Second.ExitCode == 0, builds.Second.ToString());
        Assert.Contains("Skipping target \"KilnCompileKernels\" because all output files are up-to-date", builds.Second.Output);
        Assert.DoesNotContain("files compiled", builds.Second.Output);
        Assert.Equal(9, Directory.GetFiles(builds.BinKernels).Length);
    }

    [NvrtcFact]
    public void Broken_kernel_fails_the_build_with_KILNB002_at_a_line_of_the_model()
    {
        Assert.True(builds.Broken.ExitCode != 0, builds.Broken.ToString());
        var m = Regex.Match(builds.Broken.Output, @"(?<file>\S+)\((?<line>\d+)\): error KILNB002: (?<msg>[^\n]*)");
        Assert.True(m.Success, builds.Broken.ToString());
        Assert.Equal(Path.Combine(builds.ProjectDir, TinyProjectBuilds.ModelFile), m.Groups["file"].Value);
        int line = int.Parse(m.Groups["line"].Value);
        var lines = TinyProjectBuilds.ModelSource.Split('\n');
        int classLine = Array.FindIndex(lines, l => l.Contains("public partial class TinyMlp")) + 1;
        Assert.InRange(line, classLine, lines.Length);
        Assert.Contains("kiln_test_break_kernel_undefined", m.Groups["msg"].Value);
    }

    [NvrtcFact]
    public void Skipping_kernel_compile_builds_without_kernel_files()
    {
        Assert.True(builds.Skipped.ExitCode == 0, builds.Skipped.ToString());
        Assert.Empty(builds.KernelFilesAfterSkip);
        Assert.DoesNotContain("KILNB", builds.Skipped.Output);
    }

    [NvrtcFact]
    public void Missing_NVRTC_is_one_KILNB001_warning_and_the_build_succeeds()
    {
        Assert.True(builds.NoNvrtc.ExitCode == 0, builds.NoNvrtc.ToString());
        // MSBuild repeats every warning in its closing summary; the summary's count says how many were logged.
        var warnings = Regex.Matches(builds.NoNvrtc.Output, @"warning KILNB\d+: [^\n]*").Select(w => w.Value).Distinct().ToList();
        Assert.True(warnings.Count == 1 && warnings[0].Contains("warning KILNB001"), builds.NoNvrtc.ToString());
        Assert.Contains("1 Warning(s)", builds.NoNvrtc.Output);
        Assert.Contains("kernels will be compiled by the runtime on first use", warnings[0]);
        Assert.Contains("/nonexistent/libnvrtc.so", warnings[0]);
        Assert.Empty(builds.KernelFilesAfterNoNvrtc);
    }

    [NvrtcFact]
    public void Malformed_architecture_is_KILNB005_naming_the_entry()
    {
        Assert.True(builds.BadArchitecture.ExitCode != 0, builds.BadArchitecture.ToString());
        var error = Regex.Match(builds.BadArchitecture.Output, @"error KILNB005: [^\n]*");
        Assert.True(error.Success, builds.BadArchitecture.ToString());
        Assert.Contains("'sm_7x'", error.Value);
        Assert.Contains("sm_XX", error.Value);
    }
}

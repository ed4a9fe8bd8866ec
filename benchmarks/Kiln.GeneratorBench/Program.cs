using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Kiln.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

// Times the Kiln source generator on the GPT-shaped benchmark model at several depths and widths, as the compiler
// runs it in a build (a fresh driver each time, so nothing is cached), and reports the generated C# and CUDA sizes.
// Repeated blocks are loop regions, so time and sizes should not grow with the number of layers.
int runs = args.FirstOrDefault(a => a.StartsWith("--runs=", StringComparison.Ordinal)) is { } r ? int.Parse(r[7..]) : 7;
string source;
using (var stream = typeof(KilnGenerator).Assembly.GetManifestResourceStream("Gpt.cs") ?? System.Reflection.Assembly.GetExecutingAssembly().GetManifestResourceStream("Gpt.cs")!)
using (var reader = new StreamReader(stream)) source = reader.ReadToEnd();

var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
    .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
    .Append(typeof(Kiln.Tensor).Assembly.Location).Append(typeof(Kiln.Runtime.ModelProgram).Assembly.Location)
    .Distinct().Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToArray();

var configs = new (string Name, int Vocab, int Context, int Dim, int Heads, int Layers)[]
{
    ("benchmark GPT, 2 layers", 128, 256, 384, 6, 2),
    ("benchmark GPT, 12 layers", 128, 256, 384, 6, 12),
    ("benchmark GPT, 48 layers", 128, 256, 384, 6, 48),
    ("GPT-2 124M widths, 12 layers", 50304, 1024, 768, 12, 12),
    ("GPT-2 124M widths, 48 layers", 50304, 1024, 768, 12, 48),
};

Console.WriteLine($"Kiln generator on the GPT-shaped model (benchmarks/Kiln.Benchmarks/Gpt.cs); median of {runs} runs after a warm-up, fresh driver each run");
Console.WriteLine();
Console.WriteLine("| model | generator ms (median) | min ms | generated C# KB | generated CUDA KB | C# vs first row | CUDA vs first row | time vs first row |");
Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
double? firstTime = null, firstCs = null, firstCu = null;
foreach (var c in configs)
{
    var text = Regex.Replace(source, @"public partial class Gpt\(int vocab = \d+, int context = \d+, int dim = \d+, int heads = \d+, int layers = \d+\)",
        $"public partial class Gpt(int vocab = {c.Vocab}, int context = {c.Context}, int dim = {c.Dim}, int heads = {c.Heads}, int layers = {c.Layers})");
    if (text == source && c.Layers != 6) throw new InvalidOperationException("the Gpt declaration in Gpt.cs no longer matches the pattern this benchmark rewrites");
    var compilation = CSharpCompilation.Create("GptBench", new[] { CSharpSyntaxTree.ParseText(text, new CSharpParseOptions(LanguageVersion.Latest)) }, references,
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
    GeneratorDriverRunResult Run() =>
        CSharpGeneratorDriver.Create(new KilnGenerator()).RunGenerators(compilation).GetRunResult();
    var warm = Run();
    var errors = warm.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
    if (errors.Count > 0) throw new InvalidOperationException(string.Join("\n", errors));
    var times = new List<double>();
    for (int i = 0; i < runs; i++)
    {
        var clock = Stopwatch.StartNew();
        Run();
        times.Add(clock.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    var sources = warm.Results.Single().GeneratedSources;
    double cs = sources.Where(s => !s.HintName.EndsWith(".cuda.g.cs", StringComparison.Ordinal)).Sum(s => s.SourceText.Length) / 1024.0;
    double cu = sources.Where(s => s.HintName.EndsWith(".cuda.g.cs", StringComparison.Ordinal)).Sum(s => s.SourceText.Length) / 1024.0;
    double median = times[times.Count / 2];
    firstTime ??= median; firstCs ??= cs; firstCu ??= cu;
    Console.WriteLine($"| {c.Name} | {median:F0} | {times[0]:F0} | {cs:F1} | {cu:F1} | {cs / firstCs:F3} | {cu / firstCu:F3} | {median / firstTime:F2} |");
}
return 0;

using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Kiln.Generators.Diagnostics;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Kiln.Generators.Tests;

/// <summary>
/// Runs the generator and the declaration analyzer over every model in <c>Corpus/</c>. Each corpus file is one
/// mistake, marked on the offending line with <c>// expect: KILNxxxx "phrase"</c>: that diagnostic must be
/// reported on that line, and its message must contain the phrase (so it names the problem). A file may list
/// the C# errors that are part of the mistake with <c>// allow: CS1503</c>; any other C# error fails the case,
/// so the corpus stays honest about what it tests.
/// </summary>
public class MalformedModelTests
{
    private static readonly string CorpusDir = Path.Combine(AppContext.BaseDirectory, "Corpus");

    /// <summary>Descriptors no model source can reach: they guard compiler invariants, not user mistakes.</summary>
    internal static readonly HashSet<string> NotTriggerableFromSource = new(StringComparer.Ordinal)
    {
        "KILN2001", // every op has a gradient rule; reported only if an op is added without one
        "KILN2002", // second-order gradients arise only from differentiating the generated backward graph
        "KILN6001", // internal error: the point of this corpus is that it never appears
        "KILN5001", // needs the MSBuild property KilnDeviceMemory (ParallelPlanTests sets it)
        "KILN5002", // the same
    };

    private static readonly Regex ExpectPattern = new(@"//\s*expect:\s*(?<id>KILN\w+)(\s+""(?<phrase>.*)"")?", RegexOptions.Compiled);
    private static readonly Regex AllowPattern = new(@"//\s*allow:\s*(?<ids>CS\d+(\s*,\s*CS\d+)*)", RegexOptions.Compiled);

    private static List<string> CaseNames() =>
        Directory.GetFiles(CorpusDir, "*.cs").Select(f => Path.GetFileNameWithoutExtension(f)).OrderBy(n => n, StringComparer.Ordinal).ToList();

    public static TheoryData<string> Cases() => new(CaseNames());

    private sealed record Expectation(string Id, string? Phrase, int Line, IReadOnlySet<string> AllowedCSharpErrors);

    private static (string Source, Expectation Expect) Load(string name)
    {
        var source = File.ReadAllText(Path.Combine(CorpusDir, name + ".cs"));
        var lines = source.Split('\n');
        var expects = lines.Select((text, i) => (Match: ExpectPattern.Match(text), Line: i + 1)).Where(m => m.Match.Success).ToList();
        Assert.True(expects.Count == 1, $"{name}.cs must mark exactly one line with '// expect: KILNxxxx \"phrase\"' (found {expects.Count})");
        var allowed = lines.Select(l => AllowPattern.Match(l)).Where(m => m.Success)
            .SelectMany(m => m.Groups["ids"].Value.Split(',').Select(s => s.Trim())).ToHashSet(StringComparer.Ordinal);
        var m = expects[0].Match;
        return (source, new Expectation(m.Groups["id"].Value, m.Groups["phrase"].Success ? m.Groups["phrase"].Value : null, expects[0].Line, allowed));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_model_reports_the_expected_diagnostic_on_the_marked_line(string corpusCase)
    {
        var (source, expect) = Load(corpusCase);

        // The source is C# that compiles, apart from the errors that are the point of the case.
        var csharpErrors = GeneratorHarness.Compilation(source).GetDiagnostics()
            .Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        var unexpected = csharpErrors.Where(d => !expect.AllowedCSharpErrors.Contains(d.Id)).ToList();
        Assert.True(unexpected.Count == 0, $"{corpusCase}: the model has C# errors that are not part of the case:\n  " + string.Join("\n  ", unexpected));
        foreach (var id in expect.AllowedCSharpErrors)
            Assert.True(csharpErrors.Any(d => d.Id == id), $"{corpusCase}: '// allow: {id}' is listed but C# reports no {id}; remove it");

        var (diagnostics, crashes) = RunGeneratorAndAnalyzer(source);
        Assert.True(crashes.Count == 0, $"{corpusCase}: the generator or analyzer crashed:\n  " + string.Join("\n  ", crashes));
        var kiln = diagnostics.Where(d => d.Id.StartsWith("KILN", StringComparison.Ordinal)).ToList();
        string Listing() => string.Join("\n  ", kiln.Select(Describe)) is { Length: > 0 } s ? s : "(none)";

        Assert.DoesNotContain(kiln, d => d.Id == "KILN6001");
        // The generator reports file/span locations (ExternalFile kind: diagnostics cross the incremental pipeline
        // as data, without syntax trees); the analyzer reports in-tree ones. Both must point into the model file.
        var unlocated = kiln.Where(d => d.Location.Kind == LocationKind.None || Path.GetFileName(d.Location.GetLineSpan().Path) != "Model0.cs").ToList();
        Assert.True(unlocated.Count == 0, $"{corpusCase}: diagnostics without a source location:\n  " + string.Join("\n  ", unlocated.Select(Describe)));

        var withId = kiln.Where(d => d.Id == expect.Id).ToList();
        Assert.True(withId.Count > 0, $"{corpusCase}: expected {expect.Id} on line {expect.Line}; Kiln reported:\n  {Listing()}");
        var onLine = withId.Where(d => d.Location.GetLineSpan().StartLinePosition.Line + 1 == expect.Line).ToList();
        Assert.True(onLine.Count > 0, $"{corpusCase}: {expect.Id} is reported, but not on line {expect.Line}:\n  {Listing()}");

        var diagnostic = onLine[0];
        var message = diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(string.IsNullOrWhiteSpace(message), $"{corpusCase}: {expect.Id} has an empty message");
        Assert.DoesNotMatch(@"\{\d\}", message);
        Assert.True(expect.Phrase is { Length: > 0 }, $"{corpusCase}: the expect marker needs a quoted phrase the message must contain");
        Assert.True(message.Contains(expect.Phrase!, StringComparison.OrdinalIgnoreCase),
            $"{corpusCase}: the {expect.Id} message does not name the problem ('{expect.Phrase}'):\n  {message}");
        Assert.Equal(Descriptors.Get(expect.Id).DefaultSeverity, diagnostic.Severity);
    }

    [Fact]
    public void Corpus_has_at_least_60_cases_and_covers_every_descriptor_a_model_can_trigger()
    {
        var names = CaseNames().ToList();
        Assert.True(names.Count >= 60, $"the corpus has {names.Count} cases; keep at least 60");
        var covered = names.Select(n => Load(n).Expect.Id).ToHashSet(StringComparer.Ordinal);
        var missing = Descriptors.All.Select(d => d.Id)
            .Where(id => !covered.Contains(id) && !NotTriggerableFromSource.Contains(id)).OrderBy(id => id, StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "no corpus case expects " + string.Join(", ", missing));
        var stale = NotTriggerableFromSource.Where(covered.Contains).ToList();
        Assert.True(stale.Count == 0, "these IDs are listed as not triggerable but a corpus case expects them: " + string.Join(", ", stale));
    }

    [Fact]
    public void Corpus_file_names_start_with_the_expected_id()
    {
        foreach (var name in CaseNames())
            Assert.StartsWith(Load(name).Expect.Id + "_", name);
    }

    private static string Describe(Diagnostic d) =>
        $"{d.Id} line {d.Location.GetLineSpan().StartLinePosition.Line + 1}: {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Generator and analyzer diagnostics, plus every crash either of them had (exceptions, AD0001, CS8784/CS8785).</summary>
    internal static (List<Diagnostic> Diagnostics, List<string> Crashes) RunGeneratorAndAnalyzer(string source)
    {
        var (output, generatorDiagnostics, result) = GeneratorHarness.Run(source);
        var crashes = result.Results.Where(r => r.Exception is not null).Select(r => "generator threw " + r.Exception).ToList();
        var analyzerExceptions = new List<string>();
        var options = new CompilationWithAnalyzersOptions(new AnalyzerOptions(ImmutableArray<AdditionalText>.Empty),
            (ex, analyzer, _) => { lock (analyzerExceptions) analyzerExceptions.Add(analyzer.GetType().Name + " threw " + ex); },
            concurrentAnalysis: false, logAnalyzerExecutionTime: false);
        var analyzerDiagnostics = output.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new Analyzers.DeclarationAnalyzer()), options)
            .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        var all = generatorDiagnostics.Concat(analyzerDiagnostics).ToList();
        crashes.AddRange(analyzerExceptions);
        crashes.AddRange(all.Where(d => d.Id is "AD0001" or "CS8784" or "CS8785").Select(d => d.ToString()));
        return (all, crashes);
    }
}

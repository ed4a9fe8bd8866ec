using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using Kiln.Generators;
using Kiln.Generators.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Kiln.Generators.Tests;

/// <summary>
/// Runs the Kiln generator and analyzer over C# source in memory (no SDK, no network) and, when asked,
/// compiles and loads the result so tests can execute generated programs.
/// </summary>
internal static class GeneratorHarness
{
    private static readonly Lazy<MetadataReference[]> References = new(() =>
    {
        var tpa = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var paths = tpa.Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Append(typeof(Kiln.Tensor).Assembly.Location)
            .Append(typeof(Kiln.Runtime.ModelProgram).Assembly.Location)
            .Distinct();
        return paths.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToArray();
    });

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    public static CSharpCompilation Compilation(params string[] sources) =>
        CSharpCompilation.Create("KilnTestModel_" + Guid.NewGuid().ToString("N"),
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Model{i}.cs")),
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, optimizationLevel: OptimizationLevel.Release));

    /// <summary>
    /// The compilation the generator's parser sees: the sources plus the module library it adds (Kiln.Nn), for tests
    /// that parse specs directly instead of running the generator.
    /// </summary>
    public static CSharpCompilation CompilationWithLibrary(params string[] sources) =>
        Compilation(sources).AddSyntaxTrees(CSharpSyntaxTree.ParseText(KilnGenerator.LibrarySource.Value, ParseOptions, path: KilnGenerator.LibraryHintName));

    public static GeneratorDriver Driver(bool dumpIr = false, bool trackSteps = true, string? deviceMemory = null) =>
        CSharpGeneratorDriver.Create(new[] { new KilnGenerator().AsSourceGenerator() },
            parseOptions: ParseOptions,
            optionsProvider: new Options(dumpIr, deviceMemory),
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: trackSteps));

    /// <summary>Generator + analyzer diagnostics and the compilation with generated sources added.</summary>
    public static (Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, GeneratorDriverRunResult Result) Run(params string[] sources) =>
        RunWith(null, sources);

    /// <summary><see cref="Run"/> with the MSBuild property KilnDeviceMemory set to <paramref name="deviceMemory"/> (null: unset).</summary>
    public static (Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, GeneratorDriverRunResult Result) RunWith(string? deviceMemory, params string[] sources)
    {
        var compilation = Compilation(sources);
        var driver = Driver(deviceMemory: deviceMemory).RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diags);
        return (output, diags, driver.GetRunResult());
    }

    /// <summary>All Kiln diagnostics: the generator's and the declaration analyzer's.</summary>
    public static ImmutableArray<Diagnostic> KilnDiagnostics(params string[] sources)
    {
        var (output, genDiags, _) = Run(sources);
        var analyzer = output.WithAnalyzers(ImmutableArray.Create<Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer>(new Kiln.Generators.Analyzers.DeclarationAnalyzer()));
        var analyzerDiags = analyzer.GetAnalyzerDiagnosticsAsync().Result;
        return genDiags.Concat(analyzerDiags).ToImmutableArray();
    }

    /// <summary>Generates, compiles and loads the model assembly; throws with all errors when it does not compile.</summary>
    public static Assembly Build(params string[] sources)
    {
        var (output, diags, _) = Run(sources);
        var errors = diags.Where(d => d.Severity == DiagnosticSeverity.Error)
            .Concat(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error)).ToList();
        if (errors.Count > 0)
            throw new InvalidOperationException("Model did not compile:\n" + string.Join("\n", errors.Take(20)) +
                "\n--- generated ---\n" + string.Join("\n", output.SyntaxTrees.Skip(sources.Length).Select(t => t.ToString())));
        using var ms = new MemoryStream();
        var emit = output.Emit(ms);
        if (!emit.Success) throw new InvalidOperationException(string.Join("\n", emit.Diagnostics));
        ms.Position = 0;
        return new AssemblyLoadContext(null, isCollectible: true).LoadFromStream(ms);
    }

    /// <summary>Creates the generated program of <paramref name="modelType"/> with its default hyperparameters (or the given ones).</summary>
    public static Kiln.Runtime.ModelProgram CreateProgram(Assembly asm, string modelType, params object?[] args)
    {
        var type = asm.GetType(modelType, throwOnError: true)!;
        var ctor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
        var ps = ctor.GetParameters();
        var values = ps.Select((p, i) => i < args.Length && args[i] is not null ? Convert.ChangeType(args[i], p.ParameterType) : p.DefaultValue).ToArray();
        var model = ctor.Invoke(values);
        return (Kiln.Runtime.ModelProgram)type.GetMethod("CreateProgram", Type.EmptyTypes)!.Invoke(model, null)!;
    }

    /// <summary>The generated program of <paramref name="modelType"/> (default hyperparameters) for a device string and precision.</summary>
    public static Kiln.Runtime.ModelProgram CreateProgram(Assembly asm, string modelType, string device, Kiln.PrecisionMode precision)
    {
        var type = asm.GetType(modelType, throwOnError: true)!;
        var ctor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
        var model = ctor.Invoke(ctor.GetParameters().Select(p => p.DefaultValue).ToArray());
        return (Kiln.Runtime.ModelProgram)type.GetMethod("CreateProgram", new[] { typeof(string), typeof(Kiln.PrecisionMode) })!.Invoke(model, new object[] { device, precision })!;
    }

    /// <summary>The generated CUDA program of <paramref name="modelType"/> (default hyperparameters, or the given ones) on <paramref name="gpu"/>.</summary>
    public static Kiln.Runtime.ModelProgram CreateProgram(Assembly asm, string modelType, Kiln.Runtime.Cuda.IGpu gpu, Kiln.PrecisionMode precision, params object?[] args)
    {
        var type = asm.GetType(modelType, throwOnError: true)!;
        var ctor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
        var ps = ctor.GetParameters();
        var values = ps.Select((p, i) => i < args.Length && args[i] is not null ? Convert.ChangeType(args[i], p.ParameterType) : p.DefaultValue).ToArray();
        var model = ctor.Invoke(values);
        return (Kiln.Runtime.ModelProgram)type.GetMethod("CreateProgram", new[] { typeof(Kiln.Runtime.Cuda.IGpu), typeof(Kiln.PrecisionMode) })!.Invoke(model, new object[] { gpu, precision })!;
    }

    /// <summary>The parsed spec of the single [Model] in the sources (for tests that drive the IR pipeline directly).</summary>
    public static ModelSpec Spec(params string[] sources)
    {
        var compilation = CompilationWithLibrary(sources);
        foreach (var tree in compilation.SyntaxTrees)
        {
            var model = compilation.GetSemanticModel(tree);
            foreach (var cls in tree.GetRoot().DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.ClassDeclarationSyntax>())
            {
                if (model.GetDeclaredSymbol(cls) is INamedTypeSymbol sym && ModelParser.HasAttribute(sym, ModelParser.ModelAttribute))
                {
                    var r = ModelParser.Parse(sym, compilation, default);
                    if (r.Spec is null) throw new InvalidOperationException("model did not parse: " + string.Join("; ", r.Diagnostics.Select(d => d.Id + " " + string.Join(",", d.Args))));
                    return r.Spec;
                }
            }
        }
        throw new InvalidOperationException("no [Model] class in the sources");
    }

    private sealed class Options : Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptionsProvider
    {
        private readonly Global _global;
        public Options(bool dumpIr, string? deviceMemory = null) => _global = new Global(dumpIr, deviceMemory);
        public override Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions GlobalOptions => _global;
        public override Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions GetOptions(SyntaxTree tree) => Global.Empty;
        public override Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions GetOptions(AdditionalText textFile) => Global.Empty;

        private sealed class Global : Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions
        {
            public static readonly Global Empty = new(false, null);
            private readonly bool _dump;
            private readonly string? _memory;
            public Global(bool dump, string? memory) { _dump = dump; _memory = memory; }
            public override bool TryGetValue(string key, out string value)
            {
                if (key == "build_property.KilnDeviceMemory" && _memory is not null) { value = _memory; return true; }
                value = _dump ? "true" : "false";
                return key == "build_property.KilnDumpIr";
            }
        }
    }
}

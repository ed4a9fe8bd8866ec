using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Kiln.Generators.Common;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Kiln.Generators.Parsing;

/// <summary>
/// The semantic half of the generator: reads a [Model] class and every [Module] class it reaches into
/// equatable <see cref="ModelSpec"/> records. Unsupported constructs become located diagnostics; the
/// parser never throws for user input.
/// </summary>
internal sealed class ModelParser
{
    public const string ModelAttribute = "Kiln.ModelAttribute";
    public const string ModuleAttribute = "Kiln.ModuleAttribute";
    public const string LossAttribute = "Kiln.LossAttribute";
    public const string ShapeAttribute = "Kiln.ShapeAttribute";
    public const string WeightDecayAttribute = "Kiln.WeightDecayAttribute";
    public const string RecomputeAttribute = "Kiln.RecomputeAttribute";
    public const string ParallelAttribute = "Kiln.ParallelAttribute";
    public const string ColumnParallelAttribute = "Kiln.ColumnParallelAttribute";
    public const string RowParallelAttribute = "Kiln.RowParallelAttribute";
    private static readonly string[] LayerTypes = { "Linear", "Embedding", "LayerNorm", "Dropout" };

    /// <summary>The members the generator adds to every [Model] class, and what each is.</summary>
    private static readonly Dictionary<string, string> ReservedNames = new(StringComparer.Ordinal)
    {
        ["CreateProgram"] = "the method that returns the compiled program",
        ["CreateTrainer"] = "the method that returns a trainer",
        ["KilnIr"] = "the optimised IR as text",
        ["KilnCudaSource"] = "the CUDA source the build compiles",
        ["KilnPlanJson"] = "the parallel plan report as JSON",
        ["KilnPlanReport"] = "the parallel plan report as Markdown",
        ["__KilnProgram"] = "the CPU program class",
        ["__KilnCudaProgram"] = "the CUDA program class",
        ["__KilnNewCpuProgram"] = "a helper that creates the CPU program",
        ["__KilnNewCudaProgram"] = "a helper that creates the CUDA program",
    };

    private readonly Compilation _compilation;
    private readonly CancellationToken _ct;
    private readonly List<DiagnosticInfo> _diags = new();
    private readonly Dictionary<string, ModuleSpec?> _modules = new(StringComparer.Ordinal);
    private readonly List<string> _moduleOrder = new();
    private bool _unusable;

    private ModelParser(Compilation compilation, CancellationToken ct) { _compilation = compilation; _ct = ct; }

    /// <summary>Parses the [Model] class <paramref name="type"/>. Returns no spec when the declaration is unusable
    /// (declaration errors are the analyzer's to report, so they are not repeated here).</summary>
    public static ParseResult Parse(INamedTypeSymbol type, Compilation compilation, CancellationToken ct)
    {
        if (!IsPartialChain(type) || type.IsGenericType) return new ParseResult(null, EquatableArray<DiagnosticInfo>.Empty);
        var parser = new ModelParser(compilation, ct);
        try
        {
            return parser.ParseModel(type);
        }
        catch (OperationCanceledException) { throw; }
        catch (Exception ex)
        {
            var d = DiagnosticInfo.Create("KILN6001", LocOf(type), type.Name, ex.GetType().Name + ": " + ex.Message);
            return new ParseResult(null, parser._diags.Append(d).ToEquatableArray());
        }
    }

    public static bool IsPartialChain(INamedTypeSymbol type)
    {
        for (var t = type; t is not null; t = t.ContainingType)
            if (!t.DeclaringSyntaxReferences.Any(r => r.GetSyntax() is TypeDeclarationSyntax td && td.Modifiers.Any(SyntaxKind.PartialKeyword)))
                return false;
        return true;
    }

    private ParseResult ParseModel(INamedTypeSymbol type)
    {
        var losses = type.GetMembers().OfType<IMethodSymbol>().Where(m => HasAttribute(m, LossAttribute)).ToList();
        string? loss = losses.Count == 1 && IsTensor(losses[0].ReturnType) ? losses[0].Name : null;

        ParseModule(type, new List<string>(), LocOf(type));
        // Members the generated half of the class declares: a user member of the same name would not compile.
        foreach (var member in type.GetMembers().Where(m => !m.IsImplicitlyDeclared && ReservedNames.ContainsKey(m.Name)))
        {
            _diags.Add(DiagnosticInfo.Create("KILN0020", LocOf(member), member.Name, ReservedNames[member.Name]));
            _unusable = true;
        }
        var spec = new ModelSpec(
            type.ContainingNamespace.IsGlobalNamespace ? "" : type.ContainingNamespace.ToDisplayString(),
            type.Name,
            FullName(type),
            ContainingChain(type).ToEquatableArray(),
            Accessibility(type),
            FullName(type),
            _moduleOrder.Select(n => _modules[n]).Where(m => m is not null).Select(m => m!).ToEquatableArray(),
            loss,
            LocOf(type),
            ParseParallel(type));
        // Declaration problems (no loss, several losses, wrong return type, generic types) are the analyzer's
        // to report; such a model is simply not compiled.
        return new ParseResult(loss is null || _unusable ? null : spec, _diags.ToEquatableArray());
    }

    private static IEnumerable<string> ContainingChain(INamedTypeSymbol type)
    {
        var chain = new List<string>();
        for (var t = type.ContainingType; t is not null; t = t.ContainingType)
            chain.Insert(0, (t.IsRecord ? "record " : t.TypeKind == TypeKind.Struct ? "struct " : "class ") + t.Name);
        return chain;
    }

    private static string Accessibility(INamedTypeSymbol t) => t.DeclaredAccessibility switch
    {
        Microsoft.CodeAnalysis.Accessibility.Public => "public",
        Microsoft.CodeAnalysis.Accessibility.Internal => "internal",
        Microsoft.CodeAnalysis.Accessibility.Private => "private",
        Microsoft.CodeAnalysis.Accessibility.Protected => "protected",
        _ => "internal",
    };

    private static string FullName(INamedTypeSymbol t) => t.ToDisplayString(SymbolDisplayFormat.FullyQualifiedFormat).Replace("global::", "");

    // ───────────────────────────── modules ─────────────────────────────

    private void ParseModule(INamedTypeSymbol type, List<string> path, LocationInfo usedAt)
    {
        _ct.ThrowIfCancellationRequested();
        var name = FullName(type);
        if (path.Contains(name))
        {
            _diags.Add(DiagnosticInfo.Create("KILN0014", usedAt, type.Name, string.Join(" → ", path.Select(Short).Append(type.Name))));
            return;
        }
        if (_modules.ContainsKey(name)) return;
        _modules[name] = null; // placeholder while parsing (guards re-entry)
        if (type.IsGenericType || type.IsRecord)
        {
            // DeclarationAnalyzer reports KILN0003 / KILN0023 at the class; the model just cannot be compiled.
            _unusable = true;
            return;
        }
        // A model method with a signature Kiln cannot compile (async, ref/out): the analyzer reports KILN0022, and the
        // class's bodies are not read (their calls to that method would only add follow-on errors).
        if (type.GetMembers().OfType<IMethodSymbol>().Any(m => m.MethodKind == MethodKind.Ordinary && !m.IsImplicitlyDeclared && Analyzers.DeclarationAnalyzer.BadSignature(m) is not null))
        {
            _unusable = true;
            return;
        }

        var decl = type.DeclaringSyntaxReferences.Select(r => r.GetSyntax(_ct)).OfType<TypeDeclarationSyntax>().ToList();
        var hypers = new List<HyperSpec>();
        var withParams = decl.FirstOrDefault(d => d.ParameterList is not null);
        if (withParams is not null)
        {
            var model = _compilation.GetSemanticModel(withParams.SyntaxTree);
            foreach (var p in withParams.ParameterList!.Parameters)
            {
                var ps = model.GetDeclaredSymbol(p, _ct);
                if (ps is null) continue;
                var kw = TypeKeyword(ps.Type);
                if (kw is null)
                {
                    _diags.Add(DiagnosticInfo.Create("KILN0008", Loc(p), ps.Name, ps.Type.ToDisplayString()));
                    continue;
                }
                double? def = null;
                if (ps.HasExplicitDefaultValue && ps.ExplicitDefaultValue is not null)
                    def = ps.ExplicitDefaultValue is bool b ? (b ? 1 : 0) : Convert.ToDouble(ps.ExplicitDefaultValue, System.Globalization.CultureInfo.InvariantCulture);
                hypers.Add(new HyperSpec(ps.Name, kw, def, Loc(p)));
            }
        }

        var childPath = path.Append(name).ToList();
        var fields = new List<FieldSpec>();
        foreach (var f in type.GetMembers().OfType<IFieldSymbol>())
        {
            if (f.IsStatic || f.IsImplicitlyDeclared || f.IsConst) continue;
            var declarator = f.DeclaringSyntaxReferences.Select(r => r.GetSyntax(_ct)).OfType<VariableDeclaratorSyntax>().FirstOrDefault();
            if (declarator is null) continue;
            var loc = Loc(declarator);
            INamedTypeSymbol? moduleType = null;
            var typeKey = IsTensor(f.Type) ? "param" : FieldTypeKey(f.Type, out moduleType);
            if (typeKey is null)
            {
                // Plain values (ints, floats) are allowed as derived hyperparameters; anything else is unsupported.
                if (TypeKeyword(f.Type) is { } kw) typeKey = "value:" + kw;
                else { _diags.Add(DiagnosticInfo.Create("KILN0011", loc, f.Name, f.Type.ToDisplayString())); continue; }
            }
            if (moduleType is not null) ParseModule(moduleType, childPath, loc);
            Expr? init = null;
            if (declarator.Initializer is { } ini)
            {
                var sm = _compilation.GetSemanticModel(declarator.SyntaxTree);
                init = new ExprParser(sm, _diags, _ct, type, fieldInitializer: true).Parse(ini.Value);
            }
            else if (typeKey == "param")
                _diags.Add(DiagnosticInfo.Create("KILN0017", loc, $"Tensor field '{f.Name}' has no initializer"));
            else if (!typeKey.StartsWith("value:", StringComparison.Ordinal))
                _diags.Add(DiagnosticInfo.Create("KILN0010", loc, f.Name, f.Type.ToDisplayString()));
            bool? decay = null;
            if (f.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == WeightDecayAttribute) is { } wd)
                decay = wd.ConstructorArguments.Length == 0 || wd.ConstructorArguments[0].Value is not bool apply || apply;
            string? split = null;
            var column = f.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == ColumnParallelAttribute);
            bool row = HasAttribute(f, RowParallelAttribute);
            if (column is not null || row)
            {
                int groups = column?.NamedArguments.FirstOrDefault(a => a.Key == "Groups").Value.Value is int g ? g : 1;
                if (typeKey != "Linear")
                    _diags.Add(DiagnosticInfo.Create("KILN0018", loc, $"[{(row ? "RowParallel" : "ColumnParallel")}] on field '{f.Name}' of type '{f.Type.ToDisplayString()}': the tensor-parallel layouts apply to Linear fields"));
                else if (column is not null && row)
                    _diags.Add(DiagnosticInfo.Create("KILN0018", loc, $"field '{f.Name}' is both [ColumnParallel] and [RowParallel]; a Linear is split one way"));
                else if (groups < 1)
                    _diags.Add(DiagnosticInfo.Create("KILN0018", loc, $"[ColumnParallel(Groups = {groups})] on field '{f.Name}': the number of output groups is at least 1"));
                else split = row ? "row" : "column:" + groups.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            fields.Add(new FieldSpec(f.Name, typeKey, init, loc, decay, HasAttribute(f, RecomputeAttribute), split));
        }

        var methods = new List<MethodSpec>();
        foreach (var group in type.GetMembers().OfType<IMethodSymbol>()
                     .Where(m => m.MethodKind == MethodKind.Ordinary && !m.IsStatic && !m.IsImplicitlyDeclared && m.DeclaringSyntaxReferences.Length > 0)
                     .Where(m => IsTensor(m.ReturnType) || IsIntTensor(m.ReturnType) || TypeKeyword(m.ReturnType) is not null)
                     .GroupBy(m => m.Name))
        {
            var list = group.ToList();
            if (list.Count > 1)
            {
                _diags.Add(DiagnosticInfo.Create("KILN0016", LocOf(list[1]), type.Name + "." + group.Key));
                continue;
            }
            var ms = ParseMethod(list[0], type);
            if (ms is not null) methods.Add(ms);
        }

        _modules[name] = new ModuleSpec(name, type.Name, hypers.ToEquatableArray(), fields.ToEquatableArray(), methods.ToEquatableArray(), LocOf(type), HasAttribute(type, RecomputeAttribute));
        _moduleOrder.Add(name);
    }

    private static string Short(string fullName) => fullName.Substring(fullName.LastIndexOf('.') + 1);

    private MethodSpec? ParseMethod(IMethodSymbol m, INamedTypeSymbol owner)
    {
        var syntax = m.DeclaringSyntaxReferences.Select(r => r.GetSyntax(_ct)).OfType<MethodDeclarationSyntax>().FirstOrDefault();
        if (syntax is null) return null;
        var sm = _compilation.GetSemanticModel(syntax.SyntaxTree);
        var ps = new List<ParamSpec>();
        foreach (var p in m.Parameters)
        {
            var pt = IsTensor(p.Type) ? "tensor" : IsIntTensor(p.Type) ? "itensor" : TypeKeyword(p.Type);
            var psyntax = p.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(_ct);
            var loc = psyntax is not null ? Loc(psyntax) : LocOf(m);
            if (pt is null)
            {
                _diags.Add(DiagnosticInfo.Create("KILN0106", loc, p.Name, "a '" + p.Type.ToDisplayString() + "'", "a Tensor, Tensor<int>, int, float or bool parameter"));
                pt = "unsupported";
            }
            EquatableArray<string>? dims = null;
            var shapeAttr = p.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == ShapeAttribute);
            if (shapeAttr is not null && shapeAttr.ConstructorArguments.Length == 1)
            {
                var arg = shapeAttr.ConstructorArguments[0];
                dims = (arg.Kind == TypedConstantKind.Array ? arg.Values.Select(v => v.Value as string ?? "") : new[] { arg.Value as string ?? "" }).ToEquatableArray();
            }
            ps.Add(new ParamSpec(p.Name, pt, dims, loc));
        }
        var body = new StatementParser(sm, _diags, _ct, owner).ParseBody(syntax);
        var ret = IsTensor(m.ReturnType) ? "tensor" : IsIntTensor(m.ReturnType) ? "itensor" : TypeKeyword(m.ReturnType) ?? "unsupported";
        return new MethodSpec(m.Name, ps.ToEquatableArray(), body, ret, Loc(syntax.Identifier));
    }

    // ───────────────────────────── type classification ─────────────────────────────

    public static bool IsTensor(ITypeSymbol t) => t.ToDisplayString() == "Kiln.Tensor";
    public static bool IsIntTensor(ITypeSymbol t) => t is INamedTypeSymbol { IsGenericType: true } n && n.ConstructedFrom.ToDisplayString() == "Kiln.Tensor<T>";

    public static string? TypeKeyword(ITypeSymbol t) => t.SpecialType switch
    {
        SpecialType.System_Int32 => "int",
        SpecialType.System_Int64 => "long",
        SpecialType.System_Single => "float",
        SpecialType.System_Double => "double",
        SpecialType.System_Boolean => "bool",
        _ => null,
    };

    /// <summary>The [Parallel] declaration of the model (null when absent); values out of range are KILN0018 errors at the attribute.</summary>
    private ParallelSpec? ParseParallel(INamedTypeSymbol type)
    {
        var attr = type.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == ParallelAttribute);
        if (attr is null) return null;
        var loc = attr.ApplicationSyntaxReference is { } r ? Loc(r.GetSyntax(_ct)) : LocOf(type);
        var values = new Dictionary<string, int>(StringComparer.Ordinal) { ["Data"] = 1, ["Tensor"] = 1, ["Pipeline"] = 1, ["MicroBatches"] = 1, ["Zero"] = 0, ["Batch"] = 0, ["Sequence"] = 0 };
        foreach (var named in attr.NamedArguments)
            if (values.ContainsKey(named.Key) && named.Value.Value is int v) values[named.Key] = v;
        void Bad(string name, string rule)
        {
            _diags.Add(DiagnosticInfo.Create("KILN0018", loc, $"[Parallel] {name} = {values[name]}: {rule}"));
            _unusable = true;
        }
        foreach (var name in new[] { "Data", "Tensor", "Pipeline", "MicroBatches" })
            if (values[name] < 1) Bad(name, "a degree or count is at least 1 (1 means the axis is not split)");
        if (values["Zero"] is < 0 or > 2) Bad("Zero", "the ZeRO stage is ZeroStage.None, ZeroStage.OptimizerState or ZeroStage.Gradients");
        foreach (var name in new[] { "Batch", "Sequence" })
            if (values[name] < 0) Bad(name, "a size is positive, or 0 when the plan is not made for a particular one");
        return new ParallelSpec(values["Data"], values["Tensor"], values["Pipeline"], values["MicroBatches"], values["Zero"], values["Batch"], values["Sequence"], loc);
    }

    public static bool IsModuleType(ITypeSymbol t) => t is INamedTypeSymbol n && HasAttribute(n, ModuleAttribute);

    public static string? LayerName(ITypeSymbol t)
    {
        var s = t.ToDisplayString();
        foreach (var l in LayerTypes) if (s == "Kiln." + l) return l;
        return null;
    }

    private static string? FieldTypeKey(ITypeSymbol t, out INamedTypeSymbol? moduleType)
    {
        moduleType = null;
        if (t is IArrayTypeSymbol arr && arr.Rank == 1)
        {
            var inner = FieldTypeKey(arr.ElementType, out moduleType);
            return inner is null || inner.StartsWith("value:", StringComparison.Ordinal) ? null : "array:" + inner;
        }
        if (LayerName(t) is { } layer) return layer;
        if (IsModuleType(t)) { moduleType = (INamedTypeSymbol)t; return "module:" + FullName((INamedTypeSymbol)t); }
        return null;
    }

    public static bool HasAttribute(ISymbol s, string fullName) => s.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == fullName);

    // ───────────────────────────── locations ─────────────────────────────

    public static LocationInfo Loc(SyntaxNode node) => Loc(node.GetLocation());
    public static LocationInfo Loc(SyntaxToken token) => Loc(token.GetLocation());

    public static LocationInfo Loc(Location l)
    {
        var span = l.GetLineSpan();
        return new LocationInfo(span.Path ?? "", l.SourceSpan.Start, l.SourceSpan.Length, span.StartLinePosition.Line, span.StartLinePosition.Character,
            span.EndLinePosition.Line, span.EndLinePosition.Character);
    }

    public static LocationInfo LocOf(ISymbol s)
    {
        var l = s.Locations.FirstOrDefault(x => x.IsInSource);
        return l is null ? new LocationInfo("", 0, 0, 0, 0, 0, 0) : Loc(l);
    }
}

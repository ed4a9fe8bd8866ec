using System.Collections.Immutable;
using System.Linq;
using Kiln.Generators.Diagnostics;
using Kiln.Generators.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Kiln.Generators.Analyzers;

/// <summary>
/// Declaration mistakes on [Model] and [Module] classes (not partial, generic, a record, a missing or malformed
/// loss, a loss in a module, a model method Kiln cannot compile by its signature). The generator skips such
/// classes, so each problem is reported once, here, as the user types.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class DeclarationAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        Descriptors.NotPartial, Descriptors.ContainerNotPartial, Descriptors.Generic, Descriptors.LossNotTensor, Descriptors.NoLoss, Descriptors.ManyLosses,
        Descriptors.RecordModel, Descriptors.LossInModule, Descriptors.BadMethodSignature);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterSymbolAction(AnalyzeType, SymbolKind.NamedType);
    }

    private static void AnalyzeType(SymbolAnalysisContext ctx)
    {
        var type = (INamedTypeSymbol)ctx.Symbol;
        bool isModel = ModelParser.HasAttribute(type, ModelParser.ModelAttribute);
        bool isModule = ModelParser.HasAttribute(type, ModelParser.ModuleAttribute);
        if (!isModel && !isModule) return;
        var location = type.Locations.FirstOrDefault() ?? Location.None;
        var kind = isModel ? "Model" : "Module";
        if (type.IsGenericType) ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.Generic, location, type.Name));
        if (type.IsRecord) ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.RecordModel, location, type.Name));
        foreach (var m in type.GetMembers().OfType<IMethodSymbol>().Where(m => m.MethodKind == MethodKind.Ordinary && !m.IsImplicitlyDeclared))
        {
            if (BadSignature(m) is { } why) ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.BadMethodSignature, m.Locations.FirstOrDefault() ?? location, m.Name, why));
            if (!isModel && ModelParser.HasAttribute(m, ModelParser.LossAttribute))
                ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.LossInModule, m.Locations.FirstOrDefault() ?? location, m.Name, type.Name));
        }
        if (!isModel) return;

        bool partial = type.DeclaringSyntaxReferences.Any(r => r.GetSyntax(ctx.CancellationToken) is TypeDeclarationSyntax td && td.Modifiers.Any(SyntaxKind.PartialKeyword));
        if (!partial) ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.NotPartial, location, kind, type.Name));
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            bool outerPartial = outer.DeclaringSyntaxReferences.Any(r => r.GetSyntax(ctx.CancellationToken) is TypeDeclarationSyntax td && td.Modifiers.Any(SyntaxKind.PartialKeyword));
            if (!outerPartial) { ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.ContainerNotPartial, location, type.Name, outer.Name)); break; }
        }

        var losses = type.GetMembers().OfType<IMethodSymbol>().Where(m => ModelParser.HasAttribute(m, ModelParser.LossAttribute)).ToList();
        if (losses.Count == 0) ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.NoLoss, location, type.Name));
        if (losses.Count > 1)
            ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.ManyLosses, losses[1].Locations.FirstOrDefault() ?? location, type.Name, string.Join(", ", losses.Select(l => l.Name))));
        foreach (var l in losses)
            if (!ModelParser.IsTensor(l.ReturnType) && BadSignature(l) is null)
                ctx.ReportDiagnostic(Diagnostic.Create(Descriptors.LossNotTensor, l.Locations.FirstOrDefault() ?? location, l.Name, l.ReturnType.ToDisplayString()));
    }

    /// <summary>
    /// Why a model method (one that returns a tensor, possibly wrapped in a task, or is Forward or the loss) cannot be
    /// compiled by its signature: async, a task, ref/out/in parameters, type parameters. Null when it can.
    /// </summary>
    internal static string? BadSignature(IMethodSymbol m)
    {
        var ret = m.ReturnType;
        bool task = ret is INamedTypeSymbol { Name: "Task" or "ValueTask" } t && t.ContainingNamespace?.ToDisplayString() == "System.Threading.Tasks";
        var inner = task && ret is INamedTypeSymbol { TypeArguments.Length: 1 } g ? g.TypeArguments[0] : ret;
        bool relevant = ModelParser.IsTensor(inner) || ModelParser.IsIntTensor(inner) || m.Name == "Forward" || ModelParser.HasAttribute(m, ModelParser.LossAttribute);
        if (!relevant) return null;
        if (m.IsAsync) return "is async";
        if (task) return "returns " + ret.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat);
        if (m.IsGenericMethod) return "has type parameters";
        var byRef = m.Parameters.FirstOrDefault(p => p.RefKind != RefKind.None);
        if (byRef is not null) return $"has the {byRef.RefKind.ToString().ToLowerInvariant()} parameter '{byRef.Name}'";
        return null;
    }
}

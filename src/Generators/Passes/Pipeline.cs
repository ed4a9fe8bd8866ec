using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;
using Kiln.Generators.Parsing;

namespace Kiln.Generators.Passes;

/// <summary>The compiled programs of one model, plus the IR text after every pass when asked for.</summary>
internal sealed class CompiledModel
{
    public CompiledModel(ModelSpec spec, Graph train, Graph eval, Graph? predict, IReadOnlyList<(string Pass, string Text)> dumps)
    { Spec = spec; Train = train; Eval = eval; Predict = predict; Dumps = dumps; }
    public ModelSpec Spec { get; }
    public Graph Train { get; }
    public Graph Eval { get; }
    public Graph? Predict { get; }
    public IReadOnlyList<(string Pass, string Text)> Dumps { get; }
}

/// <summary>
/// Runs the passes in order, verifying the graph after each one:
/// lowering → shape inference → autodiff (train only) → simplify → mixed precision → fusion → memory plan.
/// </summary>
internal static class Pipeline
{
    public static (CompiledModel? Model, List<DiagnosticInfo> Diagnostics) Compile(ModelSpec spec, bool dump)
    {
        var diags = new List<DiagnosticInfo>();
        var dumps = new List<(string, string)>();
        Graph? Build(GraphKind kind)
        {
            var (g, err) = Lowerer.Lower(spec, kind);
            if (g is null)
            {
                if (err is not null && !diags.Contains(err)) diags.Add(err);
                return null;
            }
            var name = kind.ToString().ToLowerInvariant();
            Graph Step(Graph x, Pass pass)
            {
                var y = pass.Apply(x);
                Verifier.Verify(y, pass.Name);
                if (dump) dumps.Add((name + " after " + pass.Name, IrPrinter.Print(y)));
                return y;
            }
            Verifier.Verify(g, "lowering");
            if (dump) dumps.Add((name + " after lowering", IrPrinter.Print(g)));
            g = Step(g, Passes.ShapeInference);
            if (kind == GraphKind.Train)
            {
                try { g = Step(g, Passes.Autodiff); }
                catch (ShapeException e)
                {
                    diags.Add(DiagnosticInfo.Create(e.Id, spec.Loc, e.Message));
                    return null;
                }
                if (!g.Outputs.Any(o => o.Role == OutputRole.ParamGrad))
                    diags.Add(DiagnosticInfo.Create("KILN2003", spec.Loc, spec.Name));
            }
            foreach (var pass in new[] { Passes.Simplify, Passes.MixedPrecision, Passes.Fusion, Passes.MemoryPlan })
                g = Step(g, pass);
            return g;
        }

        var train = Build(GraphKind.Train);
        var eval = train is null ? null : Build(GraphKind.Eval);
        var root = spec.Modules.First(m => m.FullName == spec.RootModule);
        var predict = eval is not null && root.Methods.Any(m => m.Name == "Forward") ? Build(GraphKind.Predict) : null;
        if (train is null || eval is null || diags.Any(d => d.Id != "KILN2003")) return (null, diags);
        return (new CompiledModel(spec, train, eval, predict, dumps), diags);
    }
}

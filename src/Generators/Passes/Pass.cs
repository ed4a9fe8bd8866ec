using System;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Passes;

/// <summary>
/// A pure <c>Graph → Graph</c> function with what it requires of its input and what it establishes (ILGPU's
/// required transformation flags). <see cref="Apply"/> refuses a graph that lacks a requirement, naming it, so a
/// pass placed where its input is not ready fails at once instead of reading a stale or missing analysis.
/// </summary>
internal sealed class Pass
{
    public Pass(string name, GraphFacts requires, GraphFacts produces, Func<Graph, Graph> run)
    { Name = name; Requires = requires; Produces = produces; Run = run; }

    public string Name { get; }
    public GraphFacts Requires { get; }
    public GraphFacts Produces { get; }
    public Func<Graph, Graph> Run { get; }

    public Graph Apply(Graph g)
    {
        var missing = Requires & ~g.Facts;
        if (missing != GraphFacts.None)
            throw new InvalidOperationException($"pass '{Name}' requires {missing} of the {g.Kind} graph, which has only {g.Facts}: run the pass that produces it first (a rewrite drops fusion groups and the memory plan)");
        var result = Run(g).WithFacts(Produces & ~(GraphFacts.PrecisionPlanned | GraphFacts.Fused | GraphFacts.MemoryPlanned));
        var notProduced = Produces & ~result.Facts;
        if (notProduced != GraphFacts.None)
            throw new InvalidOperationException($"pass '{Name}' should produce {notProduced} but its result lacks it");
        return result;
    }

    public override string ToString() => Name;
}

/// <summary>The compiler's passes with their requirements, in pipeline order.</summary>
internal static class Passes
{
    public static readonly Pass ShapeInference = new("shape inference", GraphFacts.None, GraphFacts.ShapesInferred, Kiln.Generators.Passes.ShapeInference.Run);
    public static readonly Pass Autodiff = new("autodiff", GraphFacts.ShapesInferred, GraphFacts.Differentiated, Kiln.Generators.Passes.Autodiff.Run);
    public static readonly Pass Simplify = new("simplify", GraphFacts.ShapesInferred, GraphFacts.Simplified, Kiln.Generators.Passes.Simplify.Run);
    public static readonly Pass MixedPrecision = new("mixed precision", GraphFacts.ShapesInferred | GraphFacts.Simplified, GraphFacts.PrecisionPlanned, Kiln.Generators.Passes.MixedPrecision.Run);
    public static readonly Pass Fusion = new("fusion", GraphFacts.PrecisionPlanned, GraphFacts.Fused, Kiln.Generators.Passes.Fusion.Run);
    public static readonly Pass MemoryPlan = new("memory plan", GraphFacts.PrecisionPlanned | GraphFacts.Fused, GraphFacts.MemoryPlanned, MemoryPlanner.Run);
}

using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;
using Kiln.Generators.Parsing;

namespace Kiln.Generators.Passes;

/// <summary>
/// One program of a model: its graph and the entry point of the generated class that runs it. The emitters, the
/// CUDA host program and the runtime's <c>ModelProgram.Programs</c> all iterate one list of these, so a new kind of
/// program (a decode step, a pipeline stage, a rank's shard) is a new entry, not a change in five files.
/// </summary>
/// <param name="Name">The program's name (<c>train</c>, <c>eval</c>, <c>predict</c>): kernel names, comments, the runtime's list.</param>
/// <param name="Graph">The optimised graph.</param>
/// <param name="Method">The <c>ModelProgram</c> member that runs it.</param>
/// <param name="Prefix">The prefix of its generated CPU kernels.</param>
/// <param name="ReturnsTensor">Whether the entry point returns a tensor (else the scalar loss).</param>
/// <param name="TakesContext">Whether the entry point takes the step context (seed, step, loss scale).</param>
internal sealed record ProgramDef(string Name, Graph Graph, string Method, string Prefix, bool ReturnsTensor, bool TakesContext)
{
    /// <summary>The entry of a program of <paramref name="kind"/> (<paramref name="g"/> may be null to describe a missing one).</summary>
    public static ProgramDef For(GraphKind kind, Graph g) => kind switch
    {
        GraphKind.Train => new("train", g, "TrainStep", "Tr", false, true),
        GraphKind.Eval => new("eval", g, "EvalLoss", "Ev", false, false),
        _ => new("predict", g, "Forward", "Pr", true, false),
    };

    /// <summary>The decode program (KV cache): the predict graph running only new positions (see <see cref="DecodeProgram"/>).</summary>
    public static ProgramDef Decode(Graph g) => new(DecodeName, g, "RunDecode", "De", true, false);

    /// <summary>The decode program's name in the program list.</summary>
    public const string DecodeName = "decode";

    /// <summary>Whether this is the decode program.</summary>
    public bool IsDecode => Name == DecodeName;

    /// <summary>Programs the CUDA program does not run (the decode program is CPU-only for now).</summary>
    public bool CpuOnly => IsDecode;

    /// <summary>The entry point's C# return type.</summary>
    public string ReturnType => ReturnsTensor ? "global::Kiln.Runtime.TensorData" : "float";

    /// <summary>The entry point's C# parameter list.</summary>
    public string Parameters => "global::Kiln.Runtime.Batch batch" + (TakesContext ? ", global::Kiln.Runtime.StepContext ctx" : "");

    /// <summary>The kinds of program every <c>ModelProgram</c> has an entry point for, in emission order.</summary>
    public static readonly GraphKind[] EntryPoints = { GraphKind.Train, GraphKind.Eval, GraphKind.Predict };
}

/// <summary>The compiled programs of one model, plus the IR text after every pass when asked for.</summary>
internal sealed class CompiledModel
{
    public CompiledModel(ModelSpec spec, IReadOnlyList<ProgramDef> programs, IReadOnlyList<(string Pass, string Text)> dumps)
    { Spec = spec; Programs = programs; Dumps = dumps; }
    public ModelSpec Spec { get; }
    /// <summary>The programs, in emission order.</summary>
    public IReadOnlyList<ProgramDef> Programs { get; }
    public IReadOnlyList<(string Pass, string Text)> Dumps { get; }
    /// <summary>Why a model declared with pipeline stages could not be made a stage program (null: it was, or none was asked for).</summary>
    public string? PipelineProblem { get; init; }
    /// <summary>Whether the programs are pipeline stages (StageInput/StageOutput around the repeated blocks).</summary>
    public bool Pipelined => Train.Nodes.Any(n => n.Op == Op.StageInput);

    /// <summary>The program of <paramref name="kind"/>, or null when the model has none (a model without Forward has no predict program).</summary>
    public ProgramDef? Program(GraphKind kind) => Programs.FirstOrDefault(p => p.Graph.Kind == kind);

    public Graph Train => Program(GraphKind.Train)!.Graph;
    public Graph Eval => Program(GraphKind.Eval)!.Graph;
    public Graph? Predict => Program(GraphKind.Predict)?.Graph;
    /// <summary>The model's parameter table (every program shares it).</summary>
    public IReadOnlyList<ParamDecl> Parameters => Train.Parameters;
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
        string? pipelineProblem = null;
        Graph? Build(GraphKind kind, Func<Graph, Graph?>? rewrite = null)
        {
            var lowered = Lowerer.Lower(spec, kind);
            var (g, err) = lowered;
            // [Parallel(Pipeline = p > 1)]: every program is a pipeline stage (the planner reports a model that cannot be one).
            if (g is not null && spec.Parallel is { Pipeline: > 1 })
            {
                var (staged, problem) = PipelineStages.Rewrite(g);
                if (staged is not null) g = staged;
                else pipelineProblem ??= problem;
            }
            if (g is not null && rewrite is not null)
            {
                g = rewrite(g);
                if (g is null) return null;
            }
            foreach (var w in lowered.Warnings ?? Array.Empty<DiagnosticInfo>())
                if (!diags.Contains(w)) diags.Add(w);
            if (g is null)
            {
                if (err is not null && !diags.Contains(err)) diags.Add(err);
                return null;
            }
            var name = rewrite is null ? kind.ToString().ToLowerInvariant() : "decode";
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
        if (train is null || eval is null || diags.Any(d => Diagnostics.Descriptors.Get(d.Id).DefaultSeverity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error)) return (null, diags);
        var programs = new List<ProgramDef> { ProgramDef.For(GraphKind.Train, train), ProgramDef.For(GraphKind.Eval, eval) };
        if (predict is not null) programs.Add(ProgramDef.For(GraphKind.Predict, predict));
        // A decode program where the model allows one (token ids [B, T] in, every attention fused and causal).
        if (predict is not null && spec.Parallel is not { Pipeline: > 1 } && DecodeProgram.Applies(predict) && Build(GraphKind.Predict, DecodeProgram.Rewrite) is { } decode)
            programs.Add(ProgramDef.Decode(decode));
        return (new CompiledModel(spec, programs, dumps) { PipelineProblem = pipelineProblem }, diags);
    }
}

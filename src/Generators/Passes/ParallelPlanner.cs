using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using Kiln.Generators.Ir;
using Kiln.Generators.Parsing;

namespace Kiln.Generators.Passes;

/// <summary>A figure of the plan: a number where every symbol it depends on is bound, else its formula.</summary>
internal readonly struct Figure
{
    public Figure(long? value, string formula) { Value = value; Formula = formula; }
    public long? Value { get; }
    public string Formula { get; }
    public static Figure Of(long v) => new(v, v.ToString(CultureInfo.InvariantCulture));
    public static Figure operator +(Figure a, Figure b) =>
        new(a.Value is { } x && b.Value is { } y ? x + y : null, a.Value is not null && b.Value is not null ? "" : a.Formula + " + " + b.Formula);
    public static Figure operator *(Figure a, long k) => new(a.Value * k, a.Value is not null ? "" : k.ToString(CultureInfo.InvariantCulture) + "·(" + a.Formula + ")");
    public override string ToString() => Value is { } v ? v.ToString(CultureInfo.InvariantCulture) : Formula;
}

/// <summary>One collective of a data-parallel step as the runtime issues it: what, on which axis, how often, and the bytes this rank sends.</summary>
internal sealed record PlannedCollective(string Collective, string Axis, string What, int Calls, Figure BytesPerRank);

/// <summary>
/// The parallel plan of one model at the sizes its [Parallel] declaration names (or one device): the divisibility
/// checks of the mesh, per-rank memory, communication per step, FLOPs and the pipeline bubble, as Markdown and JSON.
/// </summary>
internal sealed class PlanReport
{
    public string Model = "";
    public ParallelSpec Spec = null!;
    public Dictionary<string, long> Sizes = new(StringComparer.Ordinal);
    public long? MicroBatchRows;
    public Figure Parameters, ParameterBytes, GradientBytes, OptimizerStateBytes, BufferBytes, ActivationBytes, TotalBytes;
    public long ShardElements;
    public List<PlannedCollective> Collectives = new();
    public Figure CommunicationBytes;
    public Figure FlopsPerMicroBatch, FlopsPerRankStep, FlopsPerStep;
    public double Bubble;
    public long? DeviceMemory;
    public List<string> Checks = new();
    public List<string> Notes = new();
    public List<(string Option, Figure Total)> Alternatives = new();
    /// <summary>Each parameter: name, shape (as declared, symbolic) and its partition spec in JAX's words (the mesh axis of each dimension, or None).</summary>
    public List<(string Name, string Shape, string Spec)> Partitions = new();

    public string Markdown()
    {
        var s = Spec; var sb = new StringBuilder();
        string B(Figure f) => f.Value is { } v ? (v < 1024 ? Bytes(v) : Bytes(v) + " (" + v.ToString("N0", CultureInfo.InvariantCulture) + " B)") : "`" + f.Formula + "` B";
        sb.Append("# Kiln plan: ").Append(Model).Append("\n\n");
        sb.Append("Mesh: data ").Append(s.Data).Append(" × tensor ").Append(s.Tensor).Append(" × pipeline ").Append(s.Pipeline)
          .Append(" = ").Append(s.Data * s.Tensor * s.Pipeline).Append(" ranks; ").Append(s.MicroBatches).Append(" micro-batch(es) per step; ZeRO ").Append(ZeroName(s.Zero)).Append(".\n");
        sb.Append("Sizes: ").Append(Sizes.Count == 0 ? "none bound" : string.Join(", ", Sizes.Select(kv => kv.Key + " = " + kv.Value.ToString(CultureInfo.InvariantCulture))));
        sb.Append(MicroBatchRows is { } rows ? $"; global batch {s.Batch}, {rows} row(s) per micro-batch per rank" : "; no batch given (figures per micro-batch row)").Append(".\n\n");
        sb.Append("## Memory per rank\n\n| what | bytes |\n|---|---|\n");
        sb.Append("| parameters (fp32, ").Append(Parameters).Append(" values) | ").Append(B(ParameterBytes)).Append(" |\n");
        sb.Append("| gradients (fp32) | ").Append(B(GradientBytes)).Append(" |\n");
        sb.Append("| optimizer state (AdamW: 2 fp32 values per parameter").Append(s.Zero > 0 ? $", shard of {ShardElements.ToString(CultureInfo.InvariantCulture)}" : "").Append(") | ").Append(B(OptimizerStateBytes)).Append(" |\n");
        sb.Append("| collective buffers | ").Append(B(BufferBytes)).Append(" |\n");
        sb.Append("| activations (the training step's arena) | ").Append(B(ActivationBytes)).Append(" |\n");
        sb.Append("| **total** | **").Append(B(TotalBytes)).Append("** |\n\n");
        if (DeviceMemory is { } mem) sb.Append("Device memory (KilnDeviceMemory): ").Append(Bytes(mem)).Append(".\n\n");
        sb.Append("## Communication per step per rank\n\n");
        if (Collectives.Count == 0) sb.Append("None (one rank on every axis).\n\n");
        else
        {
            sb.Append("| collective | axis | what | calls | bytes sent |\n|---|---|---|---|---|\n");
            foreach (var c in Collectives) sb.Append("| ").Append(c.Collective).Append(" | ").Append(c.Axis).Append(" | ").Append(c.What).Append(" | ").Append(c.Calls).Append(" | ").Append(B(c.BytesPerRank)).Append(" |\n");
            sb.Append("| **total** | | | | **").Append(B(CommunicationBytes)).Append("** |\n\n");
        }
        sb.Append("## Compute\n\n");
        sb.Append("FLOPs per step (matmuls and attention, forward, backward and recompute as executed): ").Append(Flops(FlopsPerStep)).Append(" in all, ").Append(Flops(FlopsPerRankStep)).Append(" per rank.\n");
        sb.Append("Pipeline bubble: ").Append((Bubble * 100).ToString("0.0", CultureInfo.InvariantCulture)).Append("% (").Append(s.Pipeline).Append(" stage(s), ").Append(s.MicroBatches).Append(" micro-batch(es)).\n\n");
        if (Checks.Count > 0) { sb.Append("## Checks\n\n"); foreach (var c in Checks) sb.Append("- ").Append(c).Append('\n'); sb.Append('\n'); }
        if (Alternatives.Count > 0)
        {
            sb.Append("## What fits\n\n");
            foreach (var (o, t) in Alternatives) sb.Append("- ").Append(o).Append(": ").Append(B(t)).Append(" per rank\n");
            sb.Append('\n');
        }
        if (Partitions.Count > 0)
        {
            sb.Append("## Partition specs\n\n| parameter | shape | spec |\n|---|---|---|\n");
            foreach (var (name, shape, spec) in Partitions) sb.Append("| ").Append(name).Append(" | ").Append(shape).Append(" | `").Append(spec).Append("` |\n");
            sb.Append('\n');
        }
        if (Notes.Count > 0) { sb.Append("## Notes\n\n"); foreach (var n in Notes) sb.Append("- ").Append(n).Append('\n'); }
        return sb.ToString();
    }

    public string Json()
    {
        var s = Spec; var sb = new StringBuilder();
        string F(Figure f) => f.Value is { } v ? v.ToString(CultureInfo.InvariantCulture) : Str(f.Formula);
        sb.Append("{\n");
        sb.Append("  \"model\": ").Append(Str(Model)).Append(",\n");
        sb.Append("  \"mesh\": { \"data\": ").Append(s.Data).Append(", \"tensor\": ").Append(s.Tensor).Append(", \"pipeline\": ").Append(s.Pipeline).Append(" },\n");
        sb.Append("  \"microBatches\": ").Append(s.MicroBatches).Append(",\n");
        sb.Append("  \"zero\": ").Append(s.Zero).Append(",\n");
        sb.Append("  \"batch\": ").Append(s.Batch).Append(",\n");
        sb.Append("  \"microBatchRows\": ").Append(MicroBatchRows is { } r ? r.ToString(CultureInfo.InvariantCulture) : "null").Append(",\n");
        sb.Append("  \"sizes\": { ").Append(string.Join(", ", Sizes.Select(kv => Str(kv.Key) + ": " + kv.Value.ToString(CultureInfo.InvariantCulture)))).Append(" },\n");
        sb.Append("  \"parameters\": ").Append(F(Parameters)).Append(",\n");
        sb.Append("  \"perRank\": { \"parameterBytes\": ").Append(F(ParameterBytes)).Append(", \"gradientBytes\": ").Append(F(GradientBytes))
          .Append(", \"optimizerStateBytes\": ").Append(F(OptimizerStateBytes)).Append(", \"bufferBytes\": ").Append(F(BufferBytes))
          .Append(", \"activationBytes\": ").Append(F(ActivationBytes)).Append(", \"totalBytes\": ").Append(F(TotalBytes)).Append(" },\n");
        sb.Append("  \"collectives\": [");
        sb.Append(string.Join(",", Collectives.Select(c => $"\n    {{ \"collective\": {Str(c.Collective)}, \"axis\": {Str(c.Axis)}, \"what\": {Str(c.What)}, \"calls\": {c.Calls}, \"bytesPerRank\": {F(c.BytesPerRank)} }}")));
        sb.Append(Collectives.Count > 0 ? "\n  ],\n" : "],\n");
        sb.Append("  \"communicationBytesPerRank\": ").Append(F(CommunicationBytes)).Append(",\n");
        sb.Append("  \"flops\": { \"perMicroBatch\": ").Append(F(FlopsPerMicroBatch)).Append(", \"perRankStep\": ").Append(F(FlopsPerRankStep)).Append(", \"perStep\": ").Append(F(FlopsPerStep)).Append(" },\n");
        sb.Append("  \"pipelineBubble\": ").Append(Bubble.ToString("R", CultureInfo.InvariantCulture)).Append(",\n");
        sb.Append("  \"deviceMemoryBytes\": ").Append(DeviceMemory is { } m ? m.ToString(CultureInfo.InvariantCulture) : "null").Append(",\n");
        sb.Append("  \"fits\": [").Append(string.Join(", ", Alternatives.Select(a => "{ \"option\": " + Str(a.Option) + ", \"totalBytes\": " + F(a.Total) + " }"))).Append("],\n");
        sb.Append("  \"partitions\": {").Append(string.Join(",", Partitions.Select(x => "\n    " + Str(x.Name) + ": " + Str(x.Spec)))).Append(Partitions.Count > 0 ? "\n  },\n" : "},\n");
        sb.Append("  \"notes\": [").Append(string.Join(", ", Notes.Select(Str))).Append("]\n");
        sb.Append("}\n");
        return sb.ToString();
    }

    internal static string ZeroName(int zero) => zero switch { 1 => "1 (optimizer state sharded)", 2 => "2 (gradients and optimizer state sharded)", _ => "off" };

    internal static string Bytes(long b) =>
        b >= 1L << 30 ? (b / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB"
        : b >= 1L << 20 ? (b / (double)(1L << 20)).ToString("0.00", CultureInfo.InvariantCulture) + " MiB"
        : b >= 1L << 10 ? (b / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB"
        : b.ToString(CultureInfo.InvariantCulture) + " B";

    private static string Flops(Figure f) => f.Value is { } v
        ? (v >= 1_000_000_000_000 ? (v / 1e12).ToString("0.00", CultureInfo.InvariantCulture) + " TFLOP" : v >= 1_000_000_000 ? (v / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GFLOP" : (v / 1e6).ToString("0.000", CultureInfo.InvariantCulture) + " MFLOP")
        : "`" + f.Formula + "`";

    /// <summary>A JSON string: the escapes of a C# literal (quote, backslash, \n, \r, \t, \uXXXX below space) are JSON's too.</summary>
    private static string Str(string s) => Emit.SymbolNames.Str(s);
}

/// <summary>
/// Plans a model's parallel layout at build time: the divisibility rules of its [Parallel] mesh as located errors
/// (KILN4001–KILN4005) with the fix, warnings for pipeline stages (checked, not run: KILN4006) and for a tensor degree
/// the model has no tensor-parallel layers for (KILN4007), and the plan report. Figures are what one rank's program
/// and Kiln's runtime hold and send (DataParallel, AdamW, the arena, Ops.TensorReduce), at the hyperparameters'
/// defaults — with the model's <c>tensor</c> hyperparameter bound to the plan's tensor degree — and the declared batch
/// and sequence; a plan over <c>KilnDeviceMemory</c> is KILN5001, listing the options that would fit.
/// </summary>
internal static class ParallelPlanner
{
    /// <summary>The data-parallel gradient bucket (values), as DataParallel's default.</summary>
    public const int BucketValues = 1 << 20;

    /// <summary>The model's hyperparameter that is its tensor degree (what its tensor-parallel layers divide by).</summary>
    public const string TensorHyper = "tensor";

    /// <summary>The vocabulary multiple per tensor rank (Megatron pads to 128 per rank; 64 keeps GEMM tiles whole).</summary>
    public const int VocabularyMultiple = 64;

    public static (PlanReport Report, List<DiagnosticInfo> Diagnostics) Plan(CompiledModel cm, long? deviceMemory)
    {
        var spec = cm.Spec;
        var p = spec.Parallel ?? ParallelSpec.Single(spec.Loc) with { Declared = false };
        var diags = new List<DiagnosticInfo>();
        var report = new PlanReport { Model = spec.Name, Spec = p, DeviceMemory = deviceMemory };
        var root = spec.Modules.First(m => m.FullName == spec.RootModule);
        var env = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var h in root.Hypers)
            if (h.Type is "int" or "long" && h.Default is { } d) env[h.Name] = (long)d;
        var train = cm.Train;

        // The data-bound sizes: the first dimension of the inputs is the batch, any other the sequence.
        var hyperNames = new HashSet<string>(root.Hypers.Select(h => h.Name), StringComparer.Ordinal);
        string? batchSym = null;
        var otherSyms = new List<string>();
        foreach (var input in train.Inputs)
            for (int i = 0; i < input.Shape.Length; i++)
                foreach (var name in input.Shape[i].Symbols)
                {
                    if (hyperNames.Contains(name)) continue;
                    if (i == 0 && batchSym is null) batchSym = name;
                    else if (name != batchSym && !otherSyms.Contains(name)) otherSyms.Add(name);
                }
        int perStep = p.Data * p.MicroBatches;
        if (p.Batch > 0 && p.Batch % perStep != 0)
        {
            int lower = p.Batch / perStep * perStep, upper = lower + perStep;
            diags.Add(DiagnosticInfo.Create("KILN4005", p.Loc, spec.Name, p.Batch.ToString(CultureInfo.InvariantCulture), p.Data.ToString(CultureInfo.InvariantCulture),
                p.MicroBatches.ToString(CultureInfo.InvariantCulture), (lower > 0 ? $"Batch = {lower} or " : "") + $"Batch = {upper}"));
        }
        long rows = p.Batch > 0 ? Math.Max(1, p.Batch / perStep) : 1;
        report.MicroBatchRows = p.Batch > 0 ? rows : null;
        if (batchSym is not null) { env[batchSym] = rows; report.Sizes[batchSym] = rows; }
        if (p.Sequence > 0) foreach (var name in otherSyms) { env[name] = p.Sequence; report.Sizes[name] = p.Sequence; }
        else if (otherSyms.Count > 0) report.Notes.Add($"No Sequence given: figures that depend on {string.Join(", ", otherSyms)} are formulas.");

        Figure Eval(Sym s)
        {
            try { return new Figure(s.Eval(n => env.TryGetValue(n, out var v) ? v : throw new KeyNotFoundException(n)), s.ToString()); }
            catch (KeyNotFoundException) { return new Figure(null, s.ToString()); }
            catch (OverflowException) { return new Figure(null, s.ToString()); }
        }
        string Where(SourceRef src) => src.Line == 0 ? "" : $" ({src}: {src.Text})";

        string? stagedDepth = null; // the hyperparameter that is the stage's layer count, when the model is pipelined

        // ── Divisibility rules of the mesh, on the whole model (tensor = 1) ──
        var nodes = AllNodes(train, 1).ToList();
        bool tensorHyper = root.Hypers.Any(h => h.Name == TensorHyper && h.Type is "int" or "long");
        bool tensorLayers = tensorHyper && nodes.Any(x => x.Node.Op == Op.TensorReduce);
        if (tensorHyper) env[TensorHyper] = 1;
        if (p.Tensor > 1)
        {
            foreach (var (g, att, _) in nodes.Where(x => x.Node.Op == Op.Attention).GroupBy(x => x.Node.Src).Select(x => x.First()))
            {
                var heads = Eval(g[att.Inputs[0]].Shape[1]);
                if (heads.Value is { } h && h % p.Tensor != 0)
                    diags.Add(DiagnosticInfo.Create("KILN4001", p.Loc, spec.Name, h.ToString(CultureInfo.InvariantCulture), Where(att.Src), p.Tensor.ToString(CultureInfo.InvariantCulture),
                        Divisors(h, p.Tensor, "Tensor")));
                else if (heads.Value is not null) report.Checks.Add($"heads {heads} divide by tensor degree {p.Tensor}{Where(att.Src)}");
            }
            var vocab = nodes.Where(x => x.Node.Op == Op.PickLast).Select(x => (x.Node, C: Eval(x.Graph[x.Node.Inputs[0]].Shape[x.Graph[x.Node.Inputs[0]].Shape.Length - 1]))).FirstOrDefault();
            if (vocab.Node is not null && vocab.C.Value is { } c)
            {
                long multiple = (long)p.Tensor * VocabularyMultiple;
                if (c % multiple != 0)
                    diags.Add(DiagnosticInfo.Create("KILN4004", p.Loc, spec.Name, c.ToString(CultureInfo.InvariantCulture), Where(vocab.Node.Src), p.Tensor.ToString(CultureInfo.InvariantCulture),
                        multiple.ToString(CultureInfo.InvariantCulture), ((c + multiple - 1) / multiple * multiple).ToString(CultureInfo.InvariantCulture)));
                else report.Checks.Add($"vocabulary {c} is a multiple of tensor degree × {VocabularyMultiple} = {multiple}{Where(vocab.Node.Src)}");
            }
        }
        if (p.Pipeline > 1)
        {
            var loops = train.Nodes.Where(n => n.Op == Op.Loop && !n.A<LoopAttr>().Reverse).ToList();
            if (cm.PipelineProblem is { } problem)
                diags.Add(DiagnosticInfo.Create("KILN4002", p.Loc, spec.Name, problem, p.Pipeline.ToString(CultureInfo.InvariantCulture),
                    "declare one loop of blocks with Module.Repeat(layers, ...) whose blocks take and return one tensor, so the stages can split them, or set Pipeline = 1"));
            foreach (var loop in loops)
            {
                var layers = Eval(loop.A<LoopAttr>().Count);
                if (layers.Value is { } l && l % p.Pipeline != 0)
                    diags.Add(DiagnosticInfo.Create("KILN4002", p.Loc, spec.Name, $"repeats {l} blocks{Where(loop.Src)}", p.Pipeline.ToString(CultureInfo.InvariantCulture),
                        $"use {Divisors(l, p.Pipeline, "Pipeline")}, or a layer count that is a multiple of {p.Pipeline} ({(l / p.Pipeline + 1) * p.Pipeline})"));
                else if (layers.Value is not null) report.Checks.Add($"{layers} layers divide into {p.Pipeline} pipeline stages{Where(loop.Src)}");
            }
            if (p.MicroBatches < p.Pipeline)
                diags.Add(DiagnosticInfo.Create("KILN4003", p.Loc, spec.Name, p.MicroBatches.ToString(CultureInfo.InvariantCulture), p.Pipeline.ToString(CultureInfo.InvariantCulture),
                    (4 * p.Pipeline).ToString(CultureInfo.InvariantCulture), (Bubble(p.Pipeline, 4 * p.Pipeline) * 100).ToString("0", CultureInfo.InvariantCulture) + "%"));
        }
        if (p.Pipeline > 1)
        {
            diags.Add(DiagnosticInfo.Create("KILN4006", p.Loc, spec.Name, p.Pipeline.ToString(CultureInfo.InvariantCulture),
                (Bubble(p.Pipeline, 1) * 100).ToString("0", CultureInfo.InvariantCulture) + "%"));
            // One stage's program: the loop's layer count divided by the stages.
            var depth = train.Nodes.FirstOrDefault(x => x.Op == Op.Loop && !x.A<LoopAttr>().Reverse)?.A<LoopAttr>().Count;
            var depthSymbols = depth?.Symbols.ToList();
            if (depth is not null && depthSymbols!.Count == 1 && depth.Equals(Sym.Var(depthSymbols[0])) && env.TryGetValue(depthSymbols[0], out var all) && all % p.Pipeline == 0)
            {
                var layersHyper = depthSymbols[0];
                stagedDepth = layersHyper;
                env[layersHyper] = all / p.Pipeline;
                report.Notes.Add($"Per-rank figures are one stage's program ({layersHyper} = {all / p.Pipeline} of {all}); every stage also holds the parts outside the repeated blocks.");
            }
            else report.Notes.Add("The layer count is not one hyperparameter: the per-rank figures hold every layer (an upper bound).");
            report.Notes.Add($"Stages run each micro-batch one after another (no GPipe/1F1B overlap yet): a stage idles (p − 1)/p of the step.");
        }
        if (p.Tensor > 1 && !tensorLayers)
        {
            diags.Add(DiagnosticInfo.Create("KILN4007", p.Loc, spec.Name, p.Tensor.ToString(CultureInfo.InvariantCulture),
                tensorHyper ? "it has no tensor-parallel layers (no Ops.TensorReduce)" : $"it has no int hyperparameter '{TensorHyper}'"));
            report.Notes.Add("The model has no tensor-parallel layers: every tensor rank holds and computes the whole model.");
        }
        // From here on: one rank's program (the tensor degree bound to the plan's).
        if (tensorLayers) { env[TensorHyper] = p.Tensor; report.Notes.Add($"Per-rank figures are one tensor rank's program ({TensorHyper} = {p.Tensor})."); }

        // ── Partition specs (JAX's words): the staged layer axis over 'pipeline', a tensor-parallel split over 'tensor' ──
        foreach (var prm in cm.Parameters)
        {
            var axes = Enumerable.Repeat("None", prm.Shape.Length).ToArray();
            if (prm.Staged && p.Pipeline > 1) axes[0] = "'pipeline'";
            if (prm.Split is { } split && tensorLayers && p.Tensor > 1)
                axes[prm.Shape.Length + split.Axis] = split.Groups > 1 ? $"'tensor' (in {split.Groups} groups)" : "'tensor'";
            report.Partitions.Add((prm.Name, Shapes.Format(prm.Shape), "P(" + string.Join(", ", axes) + ")"));
        }

        // ── Memory per rank, as the data-parallel runtime holds it ──
        var n = Sym.Zero;
        foreach (var prm in cm.Parameters) n += Shapes.Numel(prm.Shape);
        report.Parameters = Eval(n);
        report.ParameterBytes = report.Parameters * 4;
        report.GradientBytes = report.Parameters * 4;
        long? shard = report.Parameters.Value is { } total ? (total + p.Data - 1) / p.Data : null;
        report.ShardElements = shard ?? 0;
        report.OptimizerStateBytes = p.Zero == 0 || shard is null ? report.Parameters * 8 : Figure.Of(shard.Value * 8);
        report.BufferBytes = Buffers(p.Zero, p.Data, shard);
        var plan = train.Plan!;
        report.ActivationBytes = Eval(plan.FloatArenaElements + plan.LowArenaElements + plan.IntArenaElements) * 4;
        report.TotalBytes = report.ParameterBytes + report.GradientBytes + report.OptimizerStateBytes + report.BufferBytes + report.ActivationBytes;

        // ── Communication per step (DataParallel.Step): loss and micro-batch count, gradients, parameters under ZeRO ──
        if (p.Data > 1 && report.Parameters.Value is { } count)
        {
            int d = p.Data;
            long scalar = 2L * (d - 1) * sizeof(double) / d;
            report.Collectives.Add(new PlannedCollective("all-reduce", "data", "loss and micro-batch count (fp64 scalars)", 2, Figure.Of(2 * scalar)));
            if (p.Zero == 2)
            {
                report.Collectives.Add(new PlannedCollective("reduce-scatter", "data", "gradients (fp32, padded to data × shard)", 1, Figure.Of((long)(d - 1) * shard!.Value * 4)));
                report.Collectives.Add(new PlannedCollective("all-reduce", "data", "squared gradient norm (fp64 scalar)", 1, Figure.Of(scalar)));
            }
            else
            {
                long bytes = 0; int calls = 0;
                for (long at = 0; at < count; at += BucketValues, calls++) bytes += 2L * (d - 1) * Math.Min(BucketValues, count - at) * 4 / d;
                report.Collectives.Add(new PlannedCollective("all-reduce", "data", $"gradients (fp32, buckets of {BucketValues} values)", calls, Figure.Of(bytes)));
            }
            if (p.Zero > 0) report.Collectives.Add(new PlannedCollective("all-gather", "data", "updated parameter shards (fp32)", 1, Figure.Of((long)(d - 1) * shard!.Value * 4)));
        }
        if (tensorLayers && p.Tensor > 1)
        {
            int t = p.Tensor;
            var perMicro = Sym.Zero; var calls = Sym.Zero;
            foreach (var (g, node, times) in nodes.Where(x => x.Node.Op == Op.TensorReduce))
            {
                // Each call sends 2(t − 1)/t of its values (a ring all-reduce), rounded down per call as the engines count.
                perMicro += Sym.Div(Shapes.Numel(node.Shape) * (2L * (t - 1) * sizeof(float)), Sym.Const(t)) * times;
                calls += times;
            }
            var bytes = Eval(perMicro) * p.MicroBatches;
            var callCount = Eval(calls);
            report.Collectives.Add(new PlannedCollective("all-reduce", "tensor", "activations forward and their gradients backward (Ops.TensorReduce)",
                (int)((callCount.Value ?? 0) * p.MicroBatches), bytes));
            // With pipeline stages the staged and the other split parameters are summed apart (two scalars).
            int scalars = p.Pipeline > 1 && cm.Pipelined ? 2 : 1;
            report.Collectives.Add(new PlannedCollective("all-reduce", "tensor", "squared norm of the split parameters' gradients (fp64 scalars)", scalars, Figure.Of(scalars * (2L * (t - 1) * sizeof(double) / t))));
        }
        if (p.Pipeline > 1 && cm.Pipelined)
        {
            int s = p.Pipeline;
            var boundary = train.Nodes.First(x => x.Op == Op.StageOutput);
            var message = Eval(Shapes.Numel(boundary.Shape) * sizeof(float));
            int sends = s == 2 ? 1 : 2; // a middle stage sends forward and backward; with two stages each sends one way
            report.Collectives.Add(new PlannedCollective("send/recv", "pipeline", $"the blocks' activations forward and their gradients backward ({(s == 2 ? "each stage sends one way" : "a middle stage; the first and last send half")})",
                sends * p.MicroBatches, message * (sends * p.MicroBatches)));
            var unstaged = Sym.Zero;
            foreach (var prm in cm.Parameters.Where(x => !x.Staged)) unstaged += Shapes.Numel(prm.Shape);
            var u = Eval(unstaged);
            report.Collectives.Add(new PlannedCollective("all-reduce", "pipeline", "gradients of the parameters outside the blocks (fp32)", 1,
                new Figure(u.Value is { } uv ? 2L * (s - 1) * uv * sizeof(float) / s : null, u.Formula)));
            report.Collectives.Add(new PlannedCollective("all-reduce", "pipeline", "the last stage's loss and the staged gradients' squared norm (fp64 scalars)", 2,
                Figure.Of(2 * (2L * (s - 1) * sizeof(double) / s))));
        }
        report.CommunicationBytes = report.Collectives.Aggregate(Figure.Of(0), (a, c) => a + c.BytesPerRank);

        // ── FLOPs (matmul and attention products of the training step, loops counted by their trip count) ──
        var flops = Sym.Zero;
        foreach (var (g, node, times) in nodes)
            flops += NodeFlops(g, node) * times;
        report.FlopsPerMicroBatch = Eval(flops);
        report.FlopsPerRankStep = report.FlopsPerMicroBatch * p.MicroBatches;
        report.FlopsPerStep = report.FlopsPerRankStep * ((long)p.Data * (tensorLayers ? p.Tensor : 1));
        // The schedule runs micro-batches through the stages one after another: the bubble does not shrink with them yet.
        report.Bubble = Bubble(p.Pipeline, 1);

        // ── Device memory ──
        if (deviceMemory is { } limit && report.TotalBytes.Value is { } need && need > limit)
        {
            var options = new List<(string, Figure)>();
            Figure With(int zero, int data, Figure activations)
            {
                long? sh = report.Parameters.Value is { } t ? (t + data - 1) / data : null;
                var state = zero == 0 || sh is null ? report.Parameters * 8 : Figure.Of(sh.Value * 8);
                return report.ParameterBytes + report.GradientBytes + state + Buffers(zero, data, sh) + activations;
            }
            for (int z = p.Zero + 1; z <= 2; z++) options.Add(($"Zero = ZeroStage.{(z == 1 ? "OptimizerState" : "Gradients")}", With(z, p.Data, report.ActivationBytes)));
            if (p.Data > 1 || p.Zero > 0)
                foreach (int more in new[] { 2, 4 }) options.Add(($"Data = {p.Data * more} with ZeRO-{Math.Max(1, p.Zero)}", With(Math.Max(1, p.Zero), p.Data * more, report.ActivationBytes)));
            if (batchSym is not null && rows > 1)
                foreach (int more in new[] { 2, 4, 8 })
                {
                    if (rows % more != 0) continue;
                    var saved = env[batchSym]; env[batchSym] = rows / more;
                    var act = Eval(plan.FloatArenaElements + plan.LowArenaElements + plan.IntArenaElements) * 4;
                    env[batchSym] = saved;
                    options.Add(($"MicroBatches = {p.MicroBatches * more} ({rows / more} rows each)", With(p.Zero, p.Data, act)));
                }
            // A larger tensor degree or more stages: the rank's program re-evaluated with the split hyperparameter changed.
            Figure Resized(string hyper, long value)
            {
                var saved = env[hyper]; env[hyper] = value;
                var count = Eval(n);
                var act = Eval(plan.FloatArenaElements + plan.LowArenaElements + plan.IntArenaElements) * 4;
                env[hyper] = saved;
                long? sh = count.Value is { } c ? (c + p.Data - 1) / p.Data : null;
                var state = p.Zero == 0 || sh is null ? count * 8 : Figure.Of(sh.Value * 8);
                return count * 8 + state + Buffers(p.Zero, p.Data, sh) + act;
            }
            if (tensorLayers)
            {
                // Only degrees that divide every attention's heads (counted on the whole model).
                var saved = env[TensorHyper]; env[TensorHyper] = 1;
                var heads = nodes.Where(x => x.Node.Op == Op.Attention).Select(x => Eval(x.Graph[x.Node.Inputs[0]].Shape[1]).Value).ToList();
                env[TensorHyper] = saved;
                foreach (int more in new[] { 2, 4 })
                    if (heads.All(h => h is { } hv && hv % (p.Tensor * more) == 0))
                        options.Add(($"Tensor = {p.Tensor * more}", Resized(TensorHyper, (long)p.Tensor * more)));
            }
            if (stagedDepth is { } depthHyper && env[depthHyper] % 2 == 0)
                options.Add(($"Pipeline = {p.Pipeline * 2}", Resized(depthHyper, env[depthHyper] / 2)));
            var fits = options.Where(o => o.Item2.Value is { } v && v <= limit).ToList();
            report.Alternatives.AddRange(fits);
            bool recompute = train.Nodes.Any(x => x.Op == Op.Loop && !x.A<LoopAttr>().Recompute);
            var suggestions = fits.Select(f => $"{f.Item1} ({PlanReport.Bytes(f.Item2.Value!.Value)})").ToList();
            if (recompute) suggestions.Add("[Recompute] on the repeated blocks (activations drop to one input per block; not sized here)");
            diags.Add(DiagnosticInfo.Create("KILN5001", p.Loc, spec.Name, PlanReport.Bytes(need), PlanReport.Bytes(limit),
                $"parameters {PlanReport.Bytes(report.ParameterBytes.Value ?? 0)}, gradients {PlanReport.Bytes(report.GradientBytes.Value ?? 0)}, optimizer state {PlanReport.Bytes(report.OptimizerStateBytes.Value ?? 0)}, activations {PlanReport.Bytes(report.ActivationBytes.Value ?? 0)}",
                suggestions.Count > 0 ? string.Join("; ", suggestions) : "nothing Kiln can size fits: use smaller hyperparameters, a smaller batch or a larger device"));
        }
        else if (deviceMemory is not null && report.TotalBytes.Value is null)
            report.Notes.Add("KilnDeviceMemory is set but the total depends on unbound sizes (give Batch and Sequence in [Parallel]); not checked.");
        return (report, diags);
    }

    /// <summary>The collective staging buffers DataParallel allocates: ZeRO's padded all-gather (data × shard) and its own shard; ZeRO-2 also the reduced gradient shard.</summary>
    private static Figure Buffers(int zero, int data, long? shard) =>
        zero == 0 || shard is null ? Figure.Of(0) : Figure.Of((shard.Value * data + shard.Value + (zero == 2 ? shard.Value : 0)) * 4);

    /// <summary>GPipe/1F1B's idle fraction: (p − 1) / (m + p − 1).</summary>
    public static double Bubble(int stages, int microBatches) => stages <= 1 ? 0 : (stages - 1) / (double)(microBatches + stages - 1);

    /// <summary>Up to four degrees above 1 (up to twice <paramref name="degree"/>) that divide <paramref name="value"/>, as "Axis = a or b".</summary>
    private static string Divisors(long value, int degree, string axis)
    {
        var fits = Enumerable.Range(1, Math.Max(1, degree * 2)).Where(t => t > 1 && value % t == 0).Take(4).ToList();
        return fits.Count > 0 ? axis + " = " + string.Join(" or ", fits) : axis + " = 1";
    }

    /// <summary>Every node with its graph and how many times it runs per step (loop bodies by their trip count).</summary>
    private static IEnumerable<(Graph Graph, Node Node, Sym Times)> AllNodes(Graph g, Sym times)
    {
        foreach (var node in g.Nodes)
        {
            yield return (g, node, times);
            if (node.Op == Op.Loop)
            {
                var loop = node.A<LoopAttr>();
                foreach (var inner in AllNodes(loop.Body, times * loop.Count)) yield return inner;
            }
        }
    }

    private static IEnumerable<(Graph Graph, Node Node, Sym Times)> AllNodes(Graph g, long times) => AllNodes(g, Sym.Const(times));

    /// <summary>Multiply-add FLOPs of a matmul (2·M·N·K per batch) or an attention (QKᵀ and PV forward; five products backward; causal halves them).</summary>
    private static Sym NodeFlops(Graph g, Node n)
    {
        switch (n.Op)
        {
            case Op.MatMul:
            {
                var a = g[n.Inputs[0]].Shape;
                var k = n.A<MatMulAttr>().TransA ? a[a.Length - 2] : a[a.Length - 1];
                return Shapes.Numel(n.Shape) * k * 2;
            }
            case Op.Attention:
            case Op.AttentionGrad:
            {
                var q = g[n.Inputs[0]].Shape; var kv = g[n.Inputs[1]].Shape;
                var work = q[0] * q[1] * q[2] * kv[2] * q[3];
                long products = n.Op == Op.Attention ? 2 : 5;
                var f = work * (2 * products);
                return n.A<AttentionAttr>().Causal ? Sym.Div(f, Sym.Const(2)) : f;
            }
            default:
                return Sym.Zero;
        }
    }
}

using System;
using System.Collections.Generic;
using System.Linq;

namespace Kiln.Generators.Ir;

/// <summary>Element types of IR tensors.</summary>
internal enum DType
{
    F32,
    I32,
    /// <summary>The value of a node that is not a tensor (a loop, whose results are its <see cref="Op.LoopOut"/> projections).</summary>
    Token,
}

/// <summary>
/// Every IR operation, grouped by category. Per-op facts (shape rule, gradient rule, precision policy,
/// folding, lowerings) live in one <see cref="OpDef"/> each, in <see cref="OpRegistry"/>.
/// </summary>
internal enum Op
{
    // ── Sources ──
    Input,        // a named program input (InputAttr)
    Param,        // a parameter of the table (ParamAttr)
    Fill,         // a scalar broadcast to Shape (ScalarAttr)
    Arange,       // 0..Shape[0]-1 (i32)
    Positions,    // p..p+Shape[0]-1 (i32): absolute positions in a decode program, p = the program's DecodePosition
    DropoutMask,  // 1/(1-p) or 0 per element (DropoutAttr)

    // ── Elementwise unary (f32 → f32) ──
    Neg, Exp, Log, Sqrt, Rsqrt, Square, Abs, Sign, Tanh, Relu, Gelu, GeluGrad, Sigmoid, Sin, Cos,
    Scale,        // x · s (ScalarAttr)
    AddScalar,    // x + s (ScalarAttr)
    PowScalar,    // x ^ s (ScalarAttr)
    StopGradient, // identity forward, no gradient
    BroadcastTo,  // x broadcast to Shape

    // ── Elementwise with integer input ──
    ToFloat,      // i32 → f32
    IndexMask,    // i32 → f32: 1 where x ≠ ignore, else 0 (IgnoreAttr)

    // ── Elementwise binary (broadcasting) ──
    Add, Sub, Mul, Div, Maximum, Minimum, Greater, Less, Equal,

    // ── Elementwise ternary ──
    Where,        // cond ≠ 0 ? a : b

    // ── Reductions ──
    ReduceSum,    // over one axis (ReduceAttr)
    ReduceMax,    // over one axis (ReduceAttr)
    SumTo,        // sums broadcast dimensions away down to Shape

    // ── Linear algebra ──
    MatMul,       // leading dims broadcast (MatMulAttr)

    // ── Movement ──
    Reshape,      // to Shape (same element count, row-major)
    Permute,      // (PermuteAttr)
    Slice,        // [start, end) along an axis (SliceAttr)
    Pad,          // zero-pad along an axis (PadAttr)
    Concat,       // along an axis (AxisAttr)

    // ── Indexing ──
    Gather,       // table [N, D], idx [...] → [..., D]
    GatherGrad,   // dy [..., D], idx [...] → [N, D] (scatter-add; GatherGradAttr)
    PickLast,     // x [..., C], idx [...] → [...] (IgnoreAttr)
    PickLastGrad, // dy [...], idx [...] → [..., C] (PickGradAttr)

    // ── Attention ──
    Attention,     // q [B, H, Tq, d], k, v [B, H, Tk, d] (, keep [B, Tk]) → [B, H, Tq, d + 1]: output and log-sum-exp column (AttentionAttr)
    AttentionGrad, // q, k, v (, keep), out, dOut → [B, H, Tq + 2·Tk, d]: dq, dk, dv stacked along the sequence axis (AttentionAttr)

    // ── Precision ──
    Cast,         // x rounded to the program's low-precision storage type (bf16, fp16, or fp32 = identity); inserted by MixedPrecision

    // ── Collectives (tensor parallelism, Megatron's f and g) ──
    TensorReplicate, // identity forward (a view); backward sums the gradient over the tensor ranks
    TensorReduce,    // sums partial results over the tensor ranks forward (in place where it can); backward passes the gradient through
    StageInput,      // pipeline: the repeated blocks' input; stages after the first receive it from the previous stage
    StageInputGrad,  // its gradient: stages after the first send it to the previous stage (and pass zeros on)
    StageOutput,     // pipeline: the repeated blocks' output; stages before the last send it to the next stage
    StageOutputGrad, // its gradient: stages before the last receive it from the next stage

    // ── Regions ──
    Loop,         // runs a body graph Count times over carried, captured and stacked inputs (LoopAttr); a token
    LoopArg,      // inside a body: the value of one loop input this iteration (LoopArgAttr)
    LoopOut,      // outside: a loop's final carried value or its stacked per-iteration results (LoopOutAttr)
}

/// <summary>Where a node came from in the user's C#: file, 1-based line and the expression text.</summary>
internal sealed record SourceRef(string File, int Line, int Column, string Text)
{
    public static readonly SourceRef None = new("", 0, 0, "");
    public override string ToString() => Line == 0 ? "<generated>" : $"{System.IO.Path.GetFileName(File)}:{Line}";
}

/// <summary>One SSA value of the IR. Immutable; passes build new graphs.</summary>
internal sealed class Node
{
    public Node(int id, Op op, int[] inputs, DType dtype, Sym[] shape, OpAttr? attr = null, SourceRef? src = null)
    {
        Id = id; Op = op; Inputs = inputs; DType = dtype; Shape = shape; Attr = attr; Src = src ?? SourceRef.None;
    }

    public int Id { get; }
    public Op Op { get; }
    public int[] Inputs { get; }
    public DType DType { get; }
    public Sym[] Shape { get; }
    /// <summary>The op's typed attribute (null for ops that take none).</summary>
    public OpAttr? Attr { get; }
    public SourceRef Src { get; }
    public int Rank => Shape.Length;

    /// <summary>The attribute as the type its op takes; a node built with another is a compiler bug, named here.</summary>
    public T A<T>() where T : OpAttr =>
        Attr as T ?? throw new System.InvalidOperationException($"%{Id} ({Op}) has attribute {Attr?.GetType().Name ?? "none"}, expected {typeof(T).Name}.");

    /// <summary>The scalar operand of Fill, Scale, AddScalar, PowScalar and DropoutMask (null for other ops).</summary>
    public Scalar? ScalarParam => Attr switch { ScalarAttr s => s.Value, DropoutAttr d => d.P, _ => null };

    /// <summary>The name of an Input or Param node (null for other ops).</summary>
    public string? Name => Attr switch { InputAttr i => i.Name, ParamAttr p => p.Name, _ => null };

    public Node With(int id, int[] inputs) => new(id, Op, inputs, DType, Shape, Attr, Src);
}

/// <summary>A parameter tensor of the model.</summary>
internal sealed record ParamDecl(string Name, Sym[] Shape, InitRule Init, bool WeightDecay, SourceRef Src, ParamSplit? Split = null)
{
    /// <summary>A parameter of the repeated blocks a pipeline splits into stages (stacked over the layers: each stage holds its layers').</summary>
    public bool Staged { get; init; }
}

/// <summary>A parameter split over tensor-parallel ranks: axis counted from the end (−1 last) and the number of equal groups each split evenly.</summary>
internal sealed record ParamSplit(int Axis, int Groups);

/// <summary>How a parameter starts: kind and scale (bound or standard deviation).</summary>
internal sealed record InitRule(string Kind, Scalar Scale)
{
    public override string ToString() => Kind is "zeros" or "ones" ? Kind : $"{Kind}({Scale})";
}

/// <summary>A program input: name, element type and declared dimensions.</summary>
internal sealed record InputDecl(string Name, DType DType, Sym[] Shape, string[] DimNames);

/// <summary>A fact about symbols the generator could not prove; the program checks it when it binds sizes.</summary>
internal sealed record Constraint(ConstraintKind Kind, Sym A, Sym B, string Message, SourceRef Src);

internal enum ConstraintKind { Equal, Divisible }

/// <summary>What the graph computes.</summary>
internal enum GraphKind
{
    Train,
    Eval,
    Predict,
    /// <summary>The body of a loop region (its outputs are the carried and stacked results).</summary>
    Body,
}

/// <summary>A role a node plays for the program's caller.</summary>
internal enum OutputRole
{
    Loss,
    Prediction,
    ParamGrad,
    /// <summary>A loop body's next value of carried input <see cref="GraphOutput.Param"/>.</summary>
    Carried,
    /// <summary>A loop body's per-iteration result <see cref="GraphOutput.Param"/>, stacked over iterations.</summary>
    Stacked,
}

internal sealed record GraphOutput(OutputRole Role, int Node, int Param);

/// <summary>
/// A program: nodes in topological order (inputs before users), its inputs, the model's parameter table, the
/// outputs, the run-time constraints, the facts the passes so far have established and the analyses they attached.
/// Analyses live in typed side tables (<see cref="IGraphAnalysis"/>) that every rewrite carries over: precision
/// marks follow the nodes that survive, while an analysis of the whole schedule (fusion groups, the memory plan)
/// is dropped, so a pass that needs it after a rewrite fails in the pipeline instead of reading a stale one.
/// </summary>
internal sealed class Graph
{
    private readonly Dictionary<int, Node> _index;
    private readonly Dictionary<System.Type, IGraphAnalysis> _analyses;

    public Graph(GraphKind kind, IReadOnlyList<Node> nodes, IReadOnlyList<GraphOutput> outputs, IReadOnlyList<ParamDecl> parameters,
        IReadOnlyList<InputDecl> inputs, IReadOnlyList<Constraint> constraints, bool hasOptimizerStep = false)
        : this(kind, nodes, outputs, parameters, inputs, constraints, hasOptimizerStep, GraphFacts.None, new Dictionary<System.Type, IGraphAnalysis>()) { }

    private Graph(GraphKind kind, IReadOnlyList<Node> nodes, IReadOnlyList<GraphOutput> outputs, IReadOnlyList<ParamDecl> parameters,
        IReadOnlyList<InputDecl> inputs, IReadOnlyList<Constraint> constraints, bool hasOptimizerStep, GraphFacts facts, Dictionary<System.Type, IGraphAnalysis> analyses)
    {
        Kind = kind; Nodes = nodes; Outputs = outputs; Parameters = parameters; Inputs = inputs; Constraints = constraints;
        HasOptimizerStep = hasOptimizerStep; _facts = facts; _analyses = analyses;
        _index = new Dictionary<int, Node>(nodes.Count);
        foreach (var n in nodes) _index[n.Id] = n;
    }

    public GraphKind Kind { get; }
    public IReadOnlyList<Node> Nodes { get; }
    public IReadOnlyList<GraphOutput> Outputs { get; }
    public IReadOnlyList<ParamDecl> Parameters { get; }
    public IReadOnlyList<InputDecl> Inputs { get; }
    public IReadOnlyList<Constraint> Constraints { get; }
    /// <summary>The training program ends with the optimizer update over the parameter slab.</summary>
    public bool HasOptimizerStep { get; }
    private readonly GraphFacts _facts;

    /// <summary>
    /// What the passes run so far have established and no rewrite has undone: the facts an analysis carries hold
    /// exactly while that analysis is attached.
    /// </summary>
    public GraphFacts Facts =>
        (_facts & ~(GraphFacts.PrecisionPlanned | GraphFacts.Fused | GraphFacts.MemoryPlanned))
        | (Find<PrecisionMarks>() is null ? 0 : GraphFacts.PrecisionPlanned)
        | (Find<FusionPlan>() is null ? 0 : GraphFacts.Fused)
        | (Find<MemoryPlan>() is null ? 0 : GraphFacts.MemoryPlanned);

    /// <summary>The attached analyses, for the printer and the verifier.</summary>
    public IEnumerable<IGraphAnalysis> Analyses => _analyses.Values;

    /// <summary>The analysis of type <typeparamref name="T"/>, or null when none is attached.</summary>
    public T? Find<T>() where T : class, IGraphAnalysis => _analyses.TryGetValue(typeof(T), out var a) ? (T)a : null;

    /// <summary>The analysis of type <typeparamref name="T"/>; its absence is a compiler bug, named here.</summary>
    public T Get<T>() where T : class, IGraphAnalysis =>
        Find<T>() ?? throw new System.InvalidOperationException($"the {Kind} graph has no {typeof(T).Name} (its pass has not run, or a rewrite since has dropped it)");

    /// <summary>The fusion groups (null before Fusion, or after a rewrite).</summary>
    public IReadOnlyList<FusionGroup>? Groups => Find<FusionPlan>()?.Groups;
    /// <summary>The memory plan (null before MemoryPlanner, or after a rewrite).</summary>
    public MemoryPlan? Plan => Find<MemoryPlan>();
    /// <summary>
    /// The nodes stored in the program's low-precision type (set by <c>MixedPrecision</c>; null before it
    /// runs). Values are always computed in fp32; only these tensors are rounded when they are written.
    /// </summary>
    public IReadOnlyCollection<int>? Low => Find<PrecisionMarks>()?.Low;
    public bool IsLow(int id) => Find<PrecisionMarks>() is { } p && p.Low.Contains(id);

    public Node this[int id] => _index[id];
    public bool Contains(int id) => _index.ContainsKey(id);

    private Dictionary<int, int>? _positions;

    /// <summary>The position of node <paramref name="id"/> in <see cref="Nodes"/> (−1 when absent); constant time after the first call.</summary>
    public int IndexOf(int id)
    {
        if (_positions is null)
        {
            var p = new Dictionary<int, int>(Nodes.Count);
            for (int i = 0; i < Nodes.Count; i++) p[Nodes[i].Id] = i;
            _positions = p;
        }
        return _positions.TryGetValue(id, out var pos) ? pos : -1;
    }

    /// <summary>
    /// The graph with new nodes and outputs (and optionally constraints and the optimizer mark): facts are kept,
    /// each analysis is rebased onto the new nodes or dropped (see <see cref="IGraphAnalysis.Rebase"/>).
    /// </summary>
    public Graph WithNodes(IReadOnlyList<Node> nodes, IReadOnlyList<GraphOutput> outputs, bool? optimizer = null, IReadOnlyList<Constraint>? constraints = null)
    {
        var rewritten = new Graph(Kind, nodes, outputs, Parameters, Inputs, constraints ?? Constraints, optimizer ?? HasOptimizerStep, _facts, new Dictionary<System.Type, IGraphAnalysis>());
        foreach (var kv in _analyses)
            if (kv.Value.Rebase(rewritten) is { } kept) rewritten._analyses[kv.Key] = kept;
        return rewritten;
    }

    /// <summary>The graph with analysis <paramref name="analysis"/> attached (replacing one of the same type).</summary>
    public Graph With<T>(T analysis) where T : class, IGraphAnalysis
    {
        var analyses = new Dictionary<System.Type, IGraphAnalysis>(_analyses) { [typeof(T)] = analysis };
        return new Graph(Kind, Nodes, Outputs, Parameters, Inputs, Constraints, HasOptimizerStep, _facts, analyses);
    }

    /// <summary>The graph with <paramref name="facts"/> established as well.</summary>
    public Graph WithFacts(GraphFacts facts) =>
        new(Kind, Nodes, Outputs, Parameters, Inputs, Constraints, HasOptimizerStep, _facts | facts, new Dictionary<System.Type, IGraphAnalysis>(_analyses));

    /// <summary>Users of each node, in node order.</summary>
    public Dictionary<int, List<int>> Users()
    {
        var users = Nodes.ToDictionary(n => n.Id, _ => new List<int>());
        foreach (var n in Nodes)
            foreach (var i in n.Inputs.Distinct()) users[i].Add(n.Id);
        return users;
    }
}

/// <summary>What a fusion group runs.</summary>
internal enum GroupKind
{
    /// <summary>A uniform value passed to the elementwise kernels that read it as a scalar: no kernel, no memory.</summary>
    Const,
    /// <summary>No kernel: an input, a parameter (or its low-precision shadow) or a reshape of a materialised tensor.</summary>
    Alias,
    /// <summary>A fused elementwise kernel.</summary>
    Elementwise,
    /// <summary>A GEMM.</summary>
    MatMul,
    /// <summary>A reduction kernel.</summary>
    Reduce,
    /// <summary>A movement kernel (permute, slice, pad, concat).</summary>
    Movement,
    /// <summary>An indexing kernel (gather, scatter, pick, integer conversion).</summary>
    Indexing,
    /// <summary>A fused attention kernel (forward or backward).</summary>
    Attention,
    /// <summary>A source kernel (fill, arange, dropout mask).</summary>
    Source,
    /// <summary>A loop region: its body's kernels, run once per iteration.</summary>
    Loop,
    /// <summary>A collective over a mesh axis (the tensor-parallel all-reduce).</summary>
    Collective,
}

internal static class GroupKinds
{
    /// <summary>The kind as the IR printer, the emitted comments and the build report write it.</summary>
    public static string Text(this GroupKind k) => k.ToString().ToLowerInvariant();

    /// <summary>Whether the group runs a kernel (anything but a folded constant or an alias).</summary>
    public static bool RunsKernel(this GroupKind k) => k is not (GroupKind.Const or GroupKind.Alias);
}

/// <summary>
/// A kernel chosen by fusion: a root node computed from the group's members without materialising
/// them. Single-member groups are plain kernels.
/// </summary>
internal sealed record FusionGroup(int Id, int Root, int[] Members, int[] ExternalInputs, GroupKind Kind);

/// <summary>Where every materialised tensor lives, as formulas of the bound symbols.</summary>
internal sealed class MemoryPlan : IGraphAnalysis
{
    public MemoryPlan(Dictionary<int, Placement> placements, Sym floatArena, Sym lowArena, Sym intArena, IReadOnlyList<(Sym Size, BufferKind Buffer)> slots,
        IReadOnlyDictionary<int, LoopScratch>? loops = null, IReadOnlyList<CarriedBuffer>? carried = null)
    {
        Placements = placements; FloatArenaElements = floatArena; LowArenaElements = lowArena; IntArenaElements = intArena; Slots = slots;
        Loops = loops ?? new Dictionary<int, LoopScratch>();
        Carried = carried ?? System.Array.Empty<CarriedBuffer>();
    }

    public Dictionary<int, Placement> Placements { get; }
    /// <summary>Elements of the fp32 activation arena.</summary>
    public Sym FloatArenaElements { get; }
    /// <summary>Elements of the low-precision activation arena (bf16/fp16/fp32 by run-time variant).</summary>
    public Sym LowArenaElements { get; }
    /// <summary>Elements of the int32 arena.</summary>
    public Sym IntArenaElements { get; }
    public IReadOnlyList<(Sym Size, BufferKind Buffer)> Slots { get; }
    /// <summary>Per loop node: where its body's arenas start in this graph's arenas (live only while the loop runs).</summary>
    public IReadOnlyDictionary<int, LoopScratch> Loops { get; }
    /// <summary>For a loop body: the two buffers each carried value alternates between, in the body's arenas.</summary>
    public IReadOnlyList<CarriedBuffer> Carried { get; }

    /// <summary>Offsets of a rewritten graph's tensors are unknown: the plan is dropped.</summary>
    public IGraphAnalysis? Rebase(Graph rewritten) => null;

    /// <summary>Every node that a kernel writes or reads has a placement; every loop has scratch space.</summary>
    public void Verify(Graph g, System.Action<Node, string> fail)
    {
        var fused = new HashSet<int>(g.Get<FusionPlan>().Groups.SelectMany(gr => gr.Members.Where(m => m != gr.Root)));
        foreach (var n in g.Nodes)
        {
            if (n.Op == Op.Loop)
            {
                if (!Loops.ContainsKey(n.Id)) fail(n, "the memory plan gives the loop no scratch space");
                if (n.A<LoopAttr>().Body.Plan is null) fail(n, "the loop's body has no memory plan");
                continue;
            }
            if (!Placements.ContainsKey(n.Id) && !fused.Contains(n.Id))
                fail(n, "it is materialised but the memory plan gives it no placement");
        }
    }
}

/// <summary>Where a loop body's fp32, low-precision and int32 arenas start in the enclosing graph's arenas.</summary>
internal sealed record LoopScratch(Sym Float, Sym Low, Sym Int);

/// <summary>The two buffers a carried value alternates between (iteration l reads one and writes the other), in one arena.</summary>
internal sealed record CarriedBuffer(BufferKind Buffer, Sym Ping, Sym Pong);

/// <summary>Which buffer a tensor lives in and its element offset there.</summary>
internal sealed record Placement(BufferKind Buffer, Sym Offset, string? InputName = null, int Param = -1);

/// <summary>
/// Storage of a tensor: the fp32, low-precision and int32 arenas; the fp32 parameter slab, its low-precision
/// shadow (refreshed after every optimizer update) and the gradient slab; a program input; or nowhere
/// (a constant fused into its readers).
/// </summary>
internal enum BufferKind
{
    Arena, LowArena, IntArena, Params, LowParams, Grads, Input, Fused,
    /// <summary>In a loop body: loop input #<see cref="Placement.Param"/> this iteration (its slice, for a stacked input; the carried value's current buffer).</summary>
    LoopIn,
    /// <summary>In a loop body: loop result #<see cref="Placement.Param"/> (the next carried value, or this iteration's slice of a stacked result).</summary>
    LoopOut,
}

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Kiln.Generators.Ir;

namespace Kiln.Generators.Tests.Reference;

/// <summary>A dense row-major tensor of the reference interpreter: float64 or int32 elements.</summary>
internal sealed class RefTensor
{
    private RefTensor(long[] shape, double[]? floats, int[]? ints)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in [{string.Join(", ", shape)}]");
            n *= d;
        }
        long have = floats?.LongLength ?? ints!.LongLength;
        if (have != n) throw new ArgumentException($"a tensor of shape [{string.Join(", ", shape)}] needs {n} elements, got {have}");
        Shape = (long[])shape.Clone();
        F = floats;
        I = ints;
    }

    public static RefTensor Float(double[] data, params long[] shape) => new(shape, data ?? throw new ArgumentNullException(nameof(data)), null);
    public static RefTensor Int(int[] data, params long[] shape) => new(shape, null, data ?? throw new ArgumentNullException(nameof(data)));

    /// <summary>A loop's value: its results (final carried values, then stacked results), read by LoopOut.</summary>
    public static RefTensor Tuple(RefTensor[] items) => new(Array.Empty<long>(), new double[] { 0 }, null) { Items = items };

    public RefTensor[]? Items { get; private init; }

    public long[] Shape { get; }
    public double[]? F { get; }
    public int[]? I { get; }
    public bool IsInt => I is not null;
    public long Numel => F?.LongLength ?? I!.LongLength;
    public int Rank => Shape.Length;

    /// <summary>The float elements (throws for an integer tensor).</summary>
    public double[] Floats => F ?? throw new InvalidOperationException($"reference: expected a float tensor, got {this}");
    /// <summary>The integer elements (throws for a float tensor).</summary>
    public int[] Ints => I ?? throw new InvalidOperationException($"reference: expected an integer tensor, got {this}");

    public override string ToString() => (IsInt ? "i32" : "f64") + "[" + string.Join(", ", Shape) + "]";
}

/// <summary>Supplies a dropout mask (0 or 1/(1−p) per element) for one DropoutMask node.</summary>
internal delegate double[] DropoutMaskProvider(int site, long layer, double p, long[] shape);

/// <summary>Everything one evaluation of a graph needs besides the graph.</summary>
internal sealed class ReferenceRun
{
    /// <summary>Integer symbols: int hyperparameters and data sizes (B, T). Data sizes missing here are bound from the input shapes.</summary>
    public Dictionary<string, long> Symbols { get; } = new(StringComparer.Ordinal);

    /// <summary>Float hyperparameters (used by <see cref="Scalar.Eval"/>).</summary>
    public Dictionary<string, double> FloatHypers { get; } = new(StringComparer.Ordinal);

    /// <summary>The seed of the backward pass (the program's loss scale).</summary>
    public double LossScale { get; set; } = 1;

    /// <summary>Parameter values in the graph's parameter-table order, row-major.</summary>
    public IReadOnlyList<double[]> Params { get; set; } = Array.Empty<double[]>();

    /// <summary>Program inputs by name.</summary>
    public Dictionary<string, RefTensor> Inputs { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether dropout is active; when false every DropoutMask is all ones.</summary>
    public bool Training { get; set; } = true;

    /// <summary>The masks of DropoutMask nodes when training (required if the graph has any).</summary>
    public DropoutMaskProvider? Masks { get; set; }

    /// <summary>Values that replace the computed value of the given nodes (finite differences freeze StopGradient nodes this way).</summary>
    public Dictionary<int, RefTensor> Frozen { get; } = new();

    public ReferenceRun Clone()
    {
        var c = new ReferenceRun { Params = Params, Training = Training, Masks = Masks, LossScale = LossScale };
        foreach (var kv in Symbols) c.Symbols[kv.Key] = kv.Value;
        foreach (var kv in FloatHypers) c.FloatHypers[kv.Key] = kv.Value;
        foreach (var kv in Inputs) c.Inputs[kv.Key] = kv.Value;
        foreach (var kv in Frozen) c.Frozen[kv.Key] = kv.Value;
        return c;
    }
}

/// <summary>The values of every node of one evaluation and the graph's outputs.</summary>
internal sealed class ReferenceResult
{
    public ReferenceResult(Dictionary<int, RefTensor> values, Dictionary<string, long> symbols, double? loss, RefTensor? prediction, double[]?[] grads)
    { Values = values; Symbols = symbols; Loss = loss; Prediction = prediction; ParamGrads = grads; }

    public IReadOnlyDictionary<int, RefTensor> Values { get; }
    public IReadOnlyDictionary<string, long> Symbols { get; }
    public double? Loss { get; }
    public RefTensor? Prediction { get; }

    /// <summary>Per parameter: the sum of its ParamGrad outputs, or null when the graph has none for it.</summary>
    public double[]?[] ParamGrads { get; }

    /// <summary>The gradient of parameter <paramref name="p"/>, zeros when no gradient reaches it (what the runtime leaves in Grads).</summary>
    public double[] GradOrZero(int p, long length) => ParamGrads[p] ?? new double[length];
}

/// <summary>
/// An independent float64 interpreter of the Kiln IR, written from the op semantics. It evaluates the
/// graph node by node in topological order, computes every output shape itself and checks it against
/// the shape stored on the node (evaluated with the bound symbols). Fusion groups and the memory plan
/// are ignored.
/// </summary>
internal static class ReferenceInterpreter
{
    /// <summary>√(2/π), the GELU tanh-approximation constant.</summary>
    private static readonly double GeluK = Math.Sqrt(2.0 / Math.PI);
    private const double GeluC = 0.044715;

    public static ReferenceResult Run(Graph g, ReferenceRun run)
    {
        var symbols = BindSymbols(g, run);
        long Lookup(string name) => symbols.TryGetValue(name, out var v) ? v
            : throw new KeyNotFoundException($"reference: symbol '{name}' is not bound (bound: {string.Join(", ", symbols.Keys)})");
        double Hyper(string name) => name == Kiln.Generators.Passes.Autodiff.LossScaleSymbol ? run.LossScale
            : run.FloatHypers.TryGetValue(name, out var v) ? v
            : symbols.TryGetValue(name, out var l) ? l
            : throw new KeyNotFoundException($"reference: float hyperparameter '{name}' is not bound");

        foreach (var c in g.Constraints)
        {
            long a = c.A.Eval(Lookup), b = c.B.Eval(Lookup);
            bool ok = c.Kind == ConstraintKind.Equal ? a == b : b != 0 && a % b == 0;
            if (!ok) throw new ArgumentException($"reference: constraint violated: {c.Message} ({c.A} = {a}, {c.B} = {b})");
        }

        var values = Evaluate(g, run, Lookup, Hyper, new Frame(new Dictionary<int, RefTensor>(), 0));

        double? loss = null; RefTensor? prediction = null;
        var grads = new double[]?[g.Parameters.Count];
        foreach (var o in g.Outputs)
        {
            var v = values[o.Node];
            switch (o.Role)
            {
                case OutputRole.Loss:
                    if (v.Numel != 1 || v.IsInt) throw new InvalidOperationException($"reference: the loss %{o.Node} is {v}, not a float scalar");
                    loss = v.Floats[0];
                    break;
                case OutputRole.Prediction:
                    prediction = v;
                    break;
                case OutputRole.ParamGrad:
                {
                    var expected = g.Parameters[o.Param].Shape.Select(d => d.Eval(Lookup)).ToArray();
                    if (!v.Shape.SequenceEqual(expected))
                        throw new InvalidOperationException($"reference: grad({g.Parameters[o.Param].Name}) = %{o.Node} has shape {v} but the parameter is [{string.Join(", ", expected)}]");
                    var acc = grads[o.Param] ??= new double[v.Numel];
                    for (long i = 0; i < acc.LongLength; i++) acc[i] += v.Floats[i];
                    break;
                }
            }
        }
        return new ReferenceResult(values, symbols, loss, prediction, grads);
    }

    /// <summary>What a loop body's evaluation sees besides its nodes: the arguments of this iteration and its index.</summary>
    private sealed record Frame(IReadOnlyDictionary<int, RefTensor> Args, long Layer);

    /// <summary>Evaluates every node of <paramref name="g"/> in order (a loop evaluates its body once per iteration).</summary>
    private static Dictionary<int, RefTensor> Evaluate(Graph g, ReferenceRun run, Func<string, long> Lookup, Func<string, double> Hyper, Frame frame)
    {
        var values = new Dictionary<int, RefTensor>();
        foreach (var n in g.Nodes)
        {
            var declared = n.Shape.Select(d => d.Eval(Lookup)).ToArray();
            var ins = n.Inputs.Select(i => values.TryGetValue(i, out var v) ? v
                : throw new InvalidOperationException($"reference: %{n.Id} reads %{i}, which is not computed before it")).ToArray();
            RefTensor result;
            try
            {
                result = run.Frozen.TryGetValue(n.Id, out var frozen) ? frozen
                    : n.Attr is LoopAttr loop ? RunLoop(loop, ins, run, Lookup, Hyper)
                    : Eval(n, ins, declared, run, Lookup, Hyper, frame);
            }
            catch (Exception e) when (e is not NotSupportedException)
            {
                throw new InvalidOperationException($"reference: evaluating %{n.Id} = {IrPrinter.Node(n)}: {e.Message}", e);
            }
            if (!result.Shape.SequenceEqual(declared))
                throw new InvalidOperationException($"reference: %{n.Id} = {IrPrinter.Node(n)} computes shape [{string.Join(", ", result.Shape)}] but the node declares [{string.Join(", ", declared)}]");
            if (result.IsInt != (n.DType == DType.I32))
                throw new InvalidOperationException($"reference: %{n.Id} = {IrPrinter.Node(n)} computes {result} but the node's dtype is {n.DType}");
            values[n.Id] = result;
        }
        return values;
    }

    /// <summary>
    /// A loop: iteration l (forward, or reversed) binds the carried values, the captured inputs and slice l of the
    /// stacked inputs to the body's arguments, evaluates the body, carries its carried results to the next iteration
    /// and stacks its stacked results at l.
    /// </summary>
    private static RefTensor RunLoop(LoopAttr loop, RefTensor[] inputs, ReferenceRun run, Func<string, long> lookup, Func<string, double> hyper)
    {
        long n = loop.Count.Eval(lookup);
        var carried = inputs.Take(loop.Carried).ToArray();
        var stacked = new RefTensor?[loop.StackedResults][];
        for (int j = 0; j < stacked.Length; j++) stacked[j] = new RefTensor?[n];
        var argNodes = loop.Body.Nodes.Where(b => b.Op == Op.LoopArg).ToList();
        for (long it = 0; it < n; it++)
        {
            long l = loop.Reverse ? n - 1 - it : it;
            var args = new Dictionary<int, RefTensor>();
            foreach (var a in argNodes)
            {
                int i = a.A<LoopArgAttr>().Index;
                args[a.Id] = i < loop.Carried ? carried[i] : i < loop.Carried + loop.Captured ? inputs[i] : SliceFirst(inputs[i], l);
            }
            var values = Evaluate(loop.Body, run, lookup, hyper, new Frame(args, l));
            var results = loop.Body.Outputs.Select(o => values[o.Node]).ToArray();
            for (int i = 0; i < loop.Carried; i++) carried[i] = results[i];
            for (int j = 0; j < stacked.Length; j++) stacked[j][l] = results[loop.Carried + j];
        }
        var items = carried.Concat(stacked.Select((s, j) => Stack(s, n, loop.Body[loop.Body.Outputs[loop.Carried + j].Node], lookup))).ToArray();
        return RefTensor.Tuple(items);
    }

    /// <summary>Slice <paramref name="l"/> of a tensor along its first axis.</summary>
    private static RefTensor SliceFirst(RefTensor x, long l)
    {
        var shape = x.Shape.Skip(1).ToArray();
        long size = Numel(shape);
        return x.IsInt ? RefTensor.Int(x.Ints.Skip((int)(l * size)).Take((int)size).ToArray(), shape)
                       : RefTensor.Float(x.Floats.Skip((int)(l * size)).Take((int)size).ToArray(), shape);
    }

    /// <summary>Per-iteration results stacked along a new first axis (an empty loop gives zero slices).</summary>
    private static RefTensor Stack(RefTensor?[] parts, long n, Node result, Func<string, long> lookup)
    {
        var shape = new[] { n }.Concat(result.Shape.Select(d => d.Eval(lookup))).ToArray();
        if (result.DType == DType.I32) return RefTensor.Int(parts.SelectMany(p => p!.Ints).ToArray(), shape);
        return RefTensor.Float(parts.SelectMany(p => p!.Floats).ToArray(), shape);
    }

    /// <summary>The given symbols plus data sizes read from the input tensors; checks every input against its declared shape.</summary>
    private static Dictionary<string, long> BindSymbols(Graph g, ReferenceRun run)
    {
        var symbols = new Dictionary<string, long>(run.Symbols, StringComparer.Ordinal);
        foreach (var decl in g.Inputs)
        {
            if (!run.Inputs.TryGetValue(decl.Name, out var t)) continue; // reported when the Input node is evaluated
            if (t.Rank != decl.Shape.Length)
                throw new ArgumentException($"reference: input '{decl.Name}' is {t} but is declared with rank {decl.Shape.Length}");
            for (int d = 0; d < decl.Shape.Length; d++)
            {
                var sym = decl.Shape[d];
                var names = sym.Symbols.ToList();
                if (names.Count == 1 && sym.Equals(Sym.Var(names[0])) && !symbols.ContainsKey(names[0]))
                    symbols[names[0]] = t.Shape[d];
            }
        }
        foreach (var decl in g.Inputs)
        {
            if (!run.Inputs.TryGetValue(decl.Name, out var t)) continue;
            for (int d = 0; d < decl.Shape.Length; d++)
            {
                long want = decl.Shape[d].Eval(n => symbols.TryGetValue(n, out var v) ? v : throw new KeyNotFoundException($"reference: symbol '{n}' is not bound"));
                if (want != t.Shape[d])
                    throw new ArgumentException($"reference: input '{decl.Name}' is {t} but dimension {d} ({decl.Shape[d]}) must be {want}");
            }
        }
        return symbols;
    }

    // ───────────────────────────── op semantics ─────────────────────────────

    /// <summary>One evaluation of a node: the node, its input values, its declared shape (bound) and the run.</summary>
    private sealed record RefArgs(Node N, RefTensor[] X, long[] Declared, ReferenceRun Run, Func<string, long> Sym, Func<string, double> Hyper, Frame Frame)
    {
        public double Sc() => N.ScalarParam?.Eval(Hyper, Sym) ?? throw new InvalidOperationException($"{N.Op} needs a scalar");
        public RefTensor X0 => X[0];
    }

    /// <summary>Whether the reference has semantics for <paramref name="op"/> (a test checks every op).</summary>
    public static bool Handles(Op op) => Semantics.ContainsKey(op);

    private static RefTensor Eval(Node n, RefTensor[] x, long[] declared, ReferenceRun run, Func<string, long> sym, Func<string, double> hyper, Frame frame) =>
        Semantics.TryGetValue(n.Op, out var f) ? f(new RefArgs(n, x, declared, run, sym, hyper, frame))
            : throw new NotSupportedException($"reference: no semantics for op {n.Op} (%{n.Id})");

    /// <summary>The float64 semantics of every op, keyed by op, written from the op definitions (not from the compiler).</summary>
    private static readonly Dictionary<Op, Func<RefArgs, RefTensor>> Semantics = new()
    {
        // ── sources ──
        [Op.Input] = r =>
        {
            var n = r.N;
            if (!r.Run.Inputs.TryGetValue(n.Name!, out var t)) throw new ArgumentException($"no value for input '{n.Name}'");
            if (t.IsInt != (n.DType == DType.I32)) throw new ArgumentException($"input '{n.Name}' is {t} but the node's dtype is {n.DType}");
            return t;
        },
        [Op.Param] = r =>
        {
            int p = r.N.A<ParamAttr>().Index;
            if (p < 0 || p >= r.Run.Params.Count) throw new ArgumentException($"no value for parameter #{p} ({r.N.Name})");
            return RefTensor.Float((double[])r.Run.Params[p].Clone(), r.Declared);
        },
        [Op.Fill] = r =>
        {
            var v = new double[Numel(r.Declared)];
            Array.Fill(v, r.Sc());
            return RefTensor.Float(v, r.Declared);
        },
        [Op.Arange] = r =>
        {
            if (r.Declared.Length != 1) throw new InvalidOperationException("Arange must be rank 1");
            return RefTensor.Int(Enumerable.Range(0, checked((int)r.Declared[0])).ToArray(), r.Declared);
        },
        // A decode program's absolute positions: the run's "__decode_position" symbol (0 when unset) onwards.
        [Op.Positions] = r =>
        {
            if (r.Declared.Length != 1) throw new InvalidOperationException("Positions must be rank 1");
            int start = r.Run.Symbols.TryGetValue("__decode_position", out var p) ? checked((int)p) : 0;
            return RefTensor.Int(Enumerable.Range(start, checked((int)r.Declared[0])).ToArray(), r.Declared);
        },
        [Op.DropoutMask] = r =>
        {
            double p = r.Sc();
            long count = Numel(r.Declared);
            if (!r.Run.Training) return RefTensor.Float(Enumerable.Repeat(1.0, checked((int)count)).ToArray(), r.Declared);
            int site = r.N.A<DropoutAttr>().Site;
            var provider = r.Run.Masks ?? throw new InvalidOperationException($"the graph has a dropout site {site} but no mask provider was given");
            var m = provider(site, r.Frame.Layer, p, (long[])r.Declared.Clone());
            if (m.LongLength != count) throw new InvalidOperationException($"the mask provider returned {m.Length} elements for [{string.Join(", ", r.Declared)}]");
            return RefTensor.Float((double[])m.Clone(), r.Declared);
        },

        // ── unary elementwise ──
        [Op.Neg] = r => Map(r.X0, v => -v),
        [Op.Exp] = r => Map(r.X0, Math.Exp),
        [Op.Log] = r => Map(r.X0, Math.Log),
        [Op.Sqrt] = r => Map(r.X0, Math.Sqrt),
        [Op.Rsqrt] = r => Map(r.X0, v => 1.0 / Math.Sqrt(v)),
        [Op.Square] = r => Map(r.X0, v => v * v),
        [Op.Abs] = r => Map(r.X0, Math.Abs),
        [Op.Sign] = r => Map(r.X0, v => v > 0 ? 1.0 : v < 0 ? -1.0 : 0.0),
        [Op.Tanh] = r => Map(r.X0, Math.Tanh),
        [Op.Sin] = r => Map(r.X0, Math.Sin),
        [Op.Cos] = r => Map(r.X0, Math.Cos),
        [Op.Relu] = r => Map(r.X0, v => v > 0 ? v : 0.0),
        [Op.Gelu] = r => Map(r.X0, Gelu),
        [Op.GeluGrad] = r => Map(r.X0, GeluDerivative),
        [Op.Sigmoid] = r => Map(r.X0, v => 1.0 / (1.0 + Math.Exp(-v))),
        [Op.Scale] = r => { var s = r.Sc(); return Map(r.X0, v => v * s); },
        [Op.AddScalar] = r => { var s = r.Sc(); return Map(r.X0, v => v + s); },
        [Op.PowScalar] = r => { var s = r.Sc(); return Map(r.X0, v => Math.Pow(v, s)); },
        [Op.StopGradient] = r => Map(r.X0, v => v),
        [Op.Cast] = r => Map(r.X0, v => v), // the reference computes in float64 without rounding
        // One tensor rank: the all-reduce of a single partial result is the result itself.
        [Op.TensorReplicate] = r => Map(r.X0, v => v),
        [Op.TensorReduce] = r => Map(r.X0, v => v),
        // One pipeline stage: the blocks' input and output, and their gradients, pass through.
        [Op.StageInput] = r => Map(r.X0, v => v),
        [Op.StageInputGrad] = r => Map(r.X0, v => v),
        [Op.StageOutput] = r => Map(r.X0, v => v),
        [Op.StageOutputGrad] = r => Map(r.X0, v => v),
        [Op.BroadcastTo] = r =>
        {
            var target = BroadcastShape(r.X0.Shape, r.Declared);
            if (!target.SequenceEqual(r.Declared)) throw new InvalidOperationException($"{r.X0} does not broadcast to [{string.Join(", ", r.Declared)}]");
            return Elementwise(r.Declared, new[] { r.X0 }, a => a[0]);
        },

        // ── integer → float ──
        [Op.ToFloat] = r => RefTensor.Float(r.X0.Ints.Select(v => (double)v).ToArray(), r.X0.Shape),
        [Op.IndexMask] = r => { int ignore = r.N.A<IgnoreAttr>().Ignore; return RefTensor.Float(r.X0.Ints.Select(v => v != ignore ? 1.0 : 0.0).ToArray(), r.X0.Shape); },

        // ── binary and ternary elementwise (NumPy broadcasting) ──
        [Op.Add] = r => Binary(r.X, (a, b) => a + b),
        [Op.Sub] = r => Binary(r.X, (a, b) => a - b),
        [Op.Mul] = r => Binary(r.X, (a, b) => a * b),
        [Op.Div] = r => Binary(r.X, (a, b) => a / b),
        [Op.Maximum] = r => Binary(r.X, Math.Max),
        [Op.Minimum] = r => Binary(r.X, Math.Min),
        [Op.Greater] = r => Binary(r.X, (a, b) => a > b ? 1.0 : 0.0),
        [Op.Less] = r => Binary(r.X, (a, b) => a < b ? 1.0 : 0.0),
        [Op.Equal] = r => Binary(r.X, (a, b) => a == b ? 1.0 : 0.0),
        [Op.Where] = r =>
        {
            var shape = BroadcastShape(BroadcastShape(r.X[0].Shape, r.X[1].Shape), r.X[2].Shape);
            return Elementwise(shape, r.X, a => a[0] != 0 ? a[1] : a[2]);
        },

        // ── reductions ──
        [Op.ReduceSum] = r => Reduce(r.X0, r.N.A<ReduceAttr>().Axis, r.N.A<ReduceAttr>().KeepDim, max: false),
        [Op.ReduceMax] = r => Reduce(r.X0, r.N.A<ReduceAttr>().Axis, r.N.A<ReduceAttr>().KeepDim, max: true),
        [Op.SumTo] = r => SumTo(r.X0, r.Declared),

        // ── linear algebra ──
        [Op.MatMul] = r => MatMul(r.X[0], r.X[1], r.N.A<MatMulAttr>().TransA, r.N.A<MatMulAttr>().TransB),

        // ── movement ──
        [Op.Reshape] = r =>
        {
            if (Numel(r.Declared) != r.X0.Numel) throw new InvalidOperationException($"cannot reshape {r.X0} to [{string.Join(", ", r.Declared)}]");
            return r.X0.IsInt ? RefTensor.Int((int[])r.X0.Ints.Clone(), r.Declared) : RefTensor.Float((double[])r.X0.Floats.Clone(), r.Declared);
        },
        [Op.Permute] = r => Permute(r.X0, r.N.A<PermuteAttr>().Order.ToArray()),
        [Op.Slice] = r => Slice(r.X0, r.N.A<SliceAttr>().Axis, r.N.A<SliceAttr>().Start.Eval(r.Sym), r.N.A<SliceAttr>().End.Eval(r.Sym)),
        [Op.Pad] = r => Pad(r.X0, r.N.A<PadAttr>().Axis, r.N.A<PadAttr>().Before.Eval(r.Sym), r.N.A<PadAttr>().After.Eval(r.Sym)),
        [Op.Concat] = r => Concat(r.X, r.N.A<AxisAttr>().Axis),

        // ── indexing ──
        [Op.Gather] = r => Gather(r.X[0], r.X[1]),
        [Op.GatherGrad] = r => GatherGrad(r.X[0], r.X[1], r.N.A<GatherGradAttr>().Rows.Eval(r.Sym)),
        [Op.PickLast] = r => PickLast(r.X[0], r.X[1], r.N.A<IgnoreAttr>().Ignore),
        [Op.PickLastGrad] = r => PickLastGrad(r.X[0], r.X[1], r.N.A<PickGradAttr>().Ignore, r.N.A<PickGradAttr>().Classes.Eval(r.Sym)),

        // ── attention (written out here in float64 from the definition: scores, mask, softmax, weighted sum) ──
        [Op.Attention] = r => r.N.A<AttentionAttr>().Site >= 0
            ? throw new NotSupportedException("a cached (decode) attention is checked against the uncached program, not interpreted")
            : Attention(r.X, r.N.A<AttentionAttr>()),
        [Op.AttentionGrad] = r => AttentionGrad(r.X, r.N.A<AttentionAttr>()),

        // ── regions (the loop itself is run by RunLoop) ──
        [Op.Loop] = r => throw new InvalidOperationException("a loop is evaluated by RunLoop"),
        [Op.LoopArg] = r => r.Frame.Args.TryGetValue(r.N.Id, out var v) ? v : throw new InvalidOperationException($"loop argument %{r.N.Id} is not bound (outside a loop body?)"),
        [Op.LoopOut] = r => r.X0.Items?[r.N.A<LoopOutAttr>().Index] ?? throw new InvalidOperationException("a loop result reads something that is not a loop"),
    };

    /// <summary>GELU, tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    public static double Gelu(double x) => 0.5 * x * (1 + Math.Tanh(GeluK * (x + GeluC * x * x * x)));

    /// <summary>d/dx of <see cref="Gelu"/>: ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(√(2/π)(x + 0.044715x³)).</summary>
    public static double GeluDerivative(double x)
    {
        double t = Math.Tanh(GeluK * (x + GeluC * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GeluK * (1 + 3 * GeluC * x * x);
    }

    // ───────────────────────────── helpers ─────────────────────────────

    public static long Numel(long[] shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    private static long[] Strides(long[] shape)
    {
        var s = new long[shape.Length];
        long st = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = st; st *= shape[i]; }
        return s;
    }

    /// <summary>Advances a row-major multi-index; false after the last element.</summary>
    private static bool Next(long[] idx, long[] shape)
    {
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (++idx[d] < shape[d]) return true;
            idx[d] = 0;
        }
        return false;
    }

    private static string Fmt(long[] s) => "[" + string.Join(", ", s.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    /// <summary>NumPy broadcasting of two shapes (right-aligned; equal dims or 1).</summary>
    public static long[] BroadcastShape(long[] a, long[] b)
    {
        int r = Math.Max(a.Length, b.Length);
        var res = new long[r];
        for (int i = 0; i < r; i++)
        {
            long da = i < r - a.Length ? 1 : a[i - (r - a.Length)];
            long db = i < r - b.Length ? 1 : b[i - (r - b.Length)];
            if (da == db || db == 1) res[i] = da;
            else if (da == 1) res[i] = db;
            else throw new InvalidOperationException($"shapes {Fmt(a)} and {Fmt(b)} do not broadcast");
        }
        return res;
    }

    /// <summary>Flat offset into a tensor of <paramref name="inShape"/> broadcast to an output index.</summary>
    private static long BroadcastOffset(long[] outIdx, long[] inShape, long[] inStrides)
    {
        int off = outIdx.Length - inShape.Length;
        long o = 0;
        for (int k = 0; k < inShape.Length; k++)
            if (inShape[k] != 1) o += outIdx[k + off] * inStrides[k];
        return o;
    }

    private static RefTensor Map(RefTensor x, Func<double, double> f) => RefTensor.Float(x.Floats.Select(f).ToArray(), x.Shape);

    private static RefTensor Binary(RefTensor[] x, Func<double, double, double> f) =>
        Elementwise(BroadcastShape(x[0].Shape, x[1].Shape), x, a => f(a[0], a[1]));

    private static RefTensor Elementwise(long[] outShape, RefTensor[] ins, Func<double[], double> f)
    {
        foreach (var t in ins)
        {
            if (t.Rank > outShape.Length) throw new InvalidOperationException($"{t} has more axes than the result {Fmt(outShape)}");
            for (int k = 0; k < t.Rank; k++)
            {
                long od = outShape[k + outShape.Length - t.Rank];
                if (t.Shape[k] != od && t.Shape[k] != 1) throw new InvalidOperationException($"{t} does not broadcast to {Fmt(outShape)}");
            }
        }
        var strides = ins.Select(t => Strides(t.Shape)).ToArray();
        var data = ins.Select(t => t.Floats).ToArray();
        var result = new double[Numel(outShape)];
        if (result.Length == 0) return RefTensor.Float(result, outShape);
        var idx = new long[outShape.Length];
        var args = new double[ins.Length];
        long j = 0;
        do
        {
            for (int k = 0; k < ins.Length; k++) args[k] = data[k][BroadcastOffset(idx, ins[k].Shape, strides[k])];
            result[j++] = f(args);
        } while (Next(idx, outShape));
        return RefTensor.Float(result, outShape);
    }

    private static RefTensor Reduce(RefTensor x, int axis, bool keep, bool max)
    {
        if (axis < 0 || axis >= x.Rank) throw new InvalidOperationException($"axis {axis} out of range for {x}");
        long outer = Numel(x.Shape.Take(axis).ToArray()), len = x.Shape[axis], inner = Numel(x.Shape.Skip(axis + 1).ToArray());
        var res = new double[outer * inner];
        var xs = x.Floats;
        for (long o = 0; o < outer; o++)
            for (long i = 0; i < inner; i++)
            {
                double acc = max ? double.NegativeInfinity : 0;
                for (long j = 0; j < len; j++)
                {
                    double v = xs[(o * len + j) * inner + i];
                    acc = max ? (double.IsNaN(v) || v > acc ? v : acc) : acc + v;
                }
                res[o * inner + i] = acc;
            }
        var shape = keep ? x.Shape.Select((d, k) => k == axis ? 1L : d).ToArray() : x.Shape.Where((_, k) => k != axis).ToArray();
        return RefTensor.Float(res, shape);
    }

    /// <summary>Sums the input over every axis that <paramref name="target"/> broadcasts along (leading axes, or target size 1).</summary>
    private static RefTensor SumTo(RefTensor x, long[] target)
    {
        if (target.Length > x.Rank) throw new InvalidOperationException($"cannot sum {x} to the larger-rank {Fmt(target)}");
        int off = x.Rank - target.Length;
        for (int k = 0; k < target.Length; k++)
            if (target[k] != x.Shape[k + off] && target[k] != 1) throw new InvalidOperationException($"cannot sum {x} to {Fmt(target)}");
        var res = new double[Numel(target)];
        var tStrides = Strides(target);
        var xs = x.Floats;
        if (xs.Length == 0) return RefTensor.Float(res, target);
        var idx = new long[x.Rank];
        long j = 0;
        do
        {
            res[BroadcastOffset(idx, target, tStrides)] += xs[j++];
        } while (Next(idx, x.Shape));
        return RefTensor.Float(res, target);
    }

    private static RefTensor MatMul(RefTensor a, RefTensor b, bool ta, bool tb)
    {
        if (a.Rank < 2 || b.Rank < 2) throw new InvalidOperationException($"MatMul of {a} and {b} needs rank ≥ 2");
        long m = ta ? a.Shape[a.Rank - 1] : a.Shape[a.Rank - 2];
        long k = ta ? a.Shape[a.Rank - 2] : a.Shape[a.Rank - 1];
        long k2 = tb ? b.Shape[b.Rank - 1] : b.Shape[b.Rank - 2];
        long n = tb ? b.Shape[b.Rank - 2] : b.Shape[b.Rank - 1];
        if (k != k2) throw new InvalidOperationException($"MatMul inner dimensions differ: {a}{(ta ? "ᵀ" : "")} · {b}{(tb ? "ᵀ" : "")}");
        var aBatch = a.Shape.Take(a.Rank - 2).ToArray();
        var bBatch = b.Shape.Take(b.Rank - 2).ToArray();
        var batch = BroadcastShape(aBatch, bBatch);
        var aStr = Strides(aBatch); var bStr = Strides(bBatch);
        var outShape = batch.Concat(new[] { m, n }).ToArray();
        var res = new double[Numel(outShape)];
        var A = a.Floats; var B = b.Floats;
        long matA = a.Shape[a.Rank - 2] * a.Shape[a.Rank - 1], matB = b.Shape[b.Rank - 2] * b.Shape[b.Rank - 1];
        long count = Numel(batch);
        var idx = new long[batch.Length];
        for (long t = 0; t < count; t++)
        {
            long ao = BroadcastOffset(idx, aBatch, aStr) * matA, bo = BroadcastOffset(idx, bBatch, bStr) * matB;
            for (long i = 0; i < m; i++)
                for (long j = 0; j < n; j++)
                {
                    double s = 0;
                    for (long p = 0; p < k; p++)
                    {
                        double av = ta ? A[ao + p * m + i] : A[ao + i * k + p];
                        double bv = tb ? B[bo + j * k + p] : B[bo + p * n + j];
                        s += av * bv;
                    }
                    res[t * m * n + i * n + j] = s;
                }
            Next(idx, batch);
        }
        return RefTensor.Float(res, outShape);
    }

    /// <summary>Moves elements by a map from output element to source element (−1 = zero).</summary>
    private static RefTensor Move(RefTensor x, long[] outShape, long[] source)
    {
        if (x.IsInt)
        {
            var xi = x.Ints;
            return RefTensor.Int(source.Select(s => s < 0 ? 0 : xi[s]).ToArray(), outShape);
        }
        var xf = x.Floats;
        return RefTensor.Float(source.Select(s => s < 0 ? 0.0 : xf[s]).ToArray(), outShape);
    }

    private static RefTensor Permute(RefTensor x, int[] order)
    {
        if (order.Length != x.Rank || order.OrderBy(o => o).Where((v, i) => v != i).Any())
            throw new InvalidOperationException($"({string.Join(", ", order)}) is not a permutation of the axes of {x}");
        var outShape = order.Select(o => x.Shape[o]).ToArray();
        var inStr = Strides(x.Shape);
        var src = new long[Numel(outShape)];
        if (src.Length > 0)
        {
            var idx = new long[outShape.Length];
            long j = 0;
            do
            {
                long s = 0;
                for (int k = 0; k < order.Length; k++) s += idx[k] * inStr[order[k]]; // output axis k is input axis order[k]
                src[j++] = s;
            } while (Next(idx, outShape));
        }
        return Move(x, outShape, src);
    }

    private static RefTensor Slice(RefTensor x, int axis, long start, long end)
    {
        if (axis < 0 || axis >= x.Rank) throw new InvalidOperationException($"Slice axis {axis} out of range for {x}");
        if (start < 0 || end > x.Shape[axis] || start >= end) throw new InvalidOperationException($"Slice [{start}, {end}) is empty or outside axis {axis} of {x}");
        var outShape = x.Shape.Select((d, k) => k == axis ? end - start : d).ToArray();
        var inStr = Strides(x.Shape);
        var src = new long[Numel(outShape)];
        var idx = new long[outShape.Length];
        long j = 0;
        do
        {
            long s = 0;
            for (int k = 0; k < idx.Length; k++) s += (k == axis ? idx[k] + start : idx[k]) * inStr[k];
            src[j++] = s;
        } while (Next(idx, outShape));
        return Move(x, outShape, src);
    }

    private static RefTensor Pad(RefTensor x, int axis, long before, long after)
    {
        if (axis < 0 || axis >= x.Rank) throw new InvalidOperationException($"Pad axis {axis} out of range for {x}");
        if (before < 0 || after < 0) throw new InvalidOperationException($"negative padding ({before}, {after})");
        var outShape = x.Shape.Select((d, k) => k == axis ? before + d + after : d).ToArray();
        var inStr = Strides(x.Shape);
        var src = new long[Numel(outShape)];
        var idx = new long[outShape.Length];
        long j = 0;
        do
        {
            long p = idx[axis] - before;
            if (p < 0 || p >= x.Shape[axis]) { src[j++] = -1; continue; }
            long s = 0;
            for (int k = 0; k < idx.Length; k++) s += (k == axis ? p : idx[k]) * inStr[k];
            src[j++] = s;
        } while (Next(idx, outShape));
        return Move(x, outShape, src);
    }

    private static RefTensor Concat(RefTensor[] parts, int axis)
    {
        var first = parts[0];
        if (axis < 0 || axis >= first.Rank) throw new InvalidOperationException($"Concat axis {axis} out of range for {first}");
        foreach (var p in parts)
        {
            if (p.Rank != first.Rank || p.IsInt != first.IsInt) throw new InvalidOperationException($"Concat parts {first} and {p} differ in rank or type");
            for (int k = 0; k < p.Rank; k++)
                if (k != axis && p.Shape[k] != first.Shape[k]) throw new InvalidOperationException($"Concat parts {first} and {p} differ on axis {k}");
        }
        var outShape = first.Shape.Select((d, k) => k == axis ? parts.Sum(p => p.Shape[axis]) : d).ToArray();
        var idx = new long[outShape.Length];
        var strides = parts.Select(p => Strides(p.Shape)).ToArray();
        var fres = first.IsInt ? null : new double[Numel(outShape)];
        var ires = first.IsInt ? new int[Numel(outShape)] : null;
        long j = 0;
        do
        {
            long pos = idx[axis];
            int part = 0;
            while (pos >= parts[part].Shape[axis]) { pos -= parts[part].Shape[axis]; part++; }
            long s = 0;
            for (int k = 0; k < idx.Length; k++) s += (k == axis ? pos : idx[k]) * strides[part][k];
            if (fres is not null) fres[j++] = parts[part].Floats[s];
            else ires![j++] = parts[part].Ints[s];
        } while (Next(idx, outShape));
        return fres is not null ? RefTensor.Float(fres, outShape) : RefTensor.Int(ires!, outShape);
    }

    /// <summary>
    /// The probabilities P [B, H, Tq, Tk] of attention (scale 1/√d; causal: key j visible to query i when j ≤ i + Tk − Tq;
    /// keep [B, Tk]: keys with keep 0 hidden; a row that sees no key is all zeros) and each row's log-sum-exp.
    /// </summary>
    private static (double[] P, double[] Lse, long B, long H, long Tq, long Tk, long D) AttentionProbabilities(IReadOnlyList<RefTensor> x, AttentionAttr attr)
    {
        var q = x[0]; var k = x[1];
        long b = q.Shape[0], h = q.Shape[1], tq = q.Shape[2], tk = k.Shape[2], d = q.Shape[3];
        var keep = attr.Masked ? x[3].Floats : null;
        double scale = 1 / Math.Sqrt(d);
        var p = new double[b * h * tq * tk]; var lse = new double[b * h * tq];
        for (long bh = 0; bh < b * h; bh++)
            for (long i = 0; i < tq; i++)
            {
                var s = new double[tk];
                double max = double.NegativeInfinity;
                for (long j = 0; j < tk; j++)
                {
                    bool visible = (!attr.Causal || j <= i + (tk - tq)) && (keep is null || keep[bh / h * tk + j] != 0);
                    if (!visible) { s[j] = double.NegativeInfinity; continue; }
                    double dot = 0;
                    for (long c = 0; c < d; c++) dot += q.Floats[(bh * tq + i) * d + c] * k.Floats[(bh * tk + j) * d + c];
                    s[j] = dot * scale;
                    max = Math.Max(max, s[j]);
                }
                if (double.IsNegativeInfinity(max)) { lse[bh * tq + i] = double.NegativeInfinity; continue; }
                double sum = 0;
                for (long j = 0; j < tk; j++) sum += Math.Exp(s[j] - max);
                for (long j = 0; j < tk; j++) p[(bh * tq + i) * tk + j] = Math.Exp(s[j] - max) / sum;
                lse[bh * tq + i] = max + Math.Log(sum);
            }
        return (p, lse, b, h, tq, tk, d);
    }

    private static RefTensor Attention(IReadOnlyList<RefTensor> x, AttentionAttr attr)
    {
        var (p, lse, b, h, tq, tk, d) = AttentionProbabilities(x, attr);
        var v = x[2].Floats;
        var res = new double[b * h * tq * (d + 1)];
        for (long bh = 0; bh < b * h; bh++)
            for (long i = 0; i < tq; i++)
            {
                long row = (bh * tq + i) * (d + 1);
                for (long j = 0; j < tk; j++)
                {
                    double pij = p[(bh * tq + i) * tk + j];
                    if (pij != 0) for (long c = 0; c < d; c++) res[row + c] += pij * v[(bh * tk + j) * d + c];
                }
                res[row + d] = lse[bh * tq + i];
            }
        return RefTensor.Float(res, b, h, tq, d + 1);
    }

    /// <summary>dq, dk, dv of attention stacked along the sequence axis: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ∘ (dP − rowsum(dP ∘ P)), dQ = dS·K/√d, dK = dSᵀ·Q/√d.</summary>
    private static RefTensor AttentionGrad(IReadOnlyList<RefTensor> x, AttentionAttr attr)
    {
        int operands = attr.Masked ? 4 : 3;
        var (p, _, b, h, tq, tk, d) = AttentionProbabilities(x, attr);
        var q = x[0].Floats; var k = x[1].Floats; var v = x[2].Floats; var dOut = x[operands + 1].Floats;
        double scale = 1 / Math.Sqrt(d);
        long rows = tq + 2 * tk;
        var res = new double[b * h * rows * d];
        for (long bh = 0; bh < b * h; bh++)
            for (long i = 0; i < tq; i++)
            {
                var dp = new double[tk];
                double rowDot = 0;
                for (long j = 0; j < tk; j++)
                {
                    for (long c = 0; c < d; c++) dp[j] += dOut[(bh * tq + i) * (d + 1) + c] * v[(bh * tk + j) * d + c];
                    rowDot += dp[j] * p[(bh * tq + i) * tk + j];
                }
                for (long j = 0; j < tk; j++)
                {
                    double pij = p[(bh * tq + i) * tk + j];
                    double ds = pij * (dp[j] - rowDot) * scale;
                    for (long c = 0; c < d; c++)
                    {
                        res[(bh * rows + tq + tk + j) * d + c] += pij * dOut[(bh * tq + i) * (d + 1) + c];
                        res[(bh * rows + tq + j) * d + c] += ds * q[(bh * tq + i) * d + c];
                        res[(bh * rows + i) * d + c] += ds * k[(bh * tk + j) * d + c];
                    }
                }
            }
        return RefTensor.Float(res, b, h, rows, d);
    }

    private static RefTensor Gather(RefTensor table, RefTensor idx)
    {
        if (table.Rank != 2) throw new InvalidOperationException($"Gather needs a [N, D] table, got {table}");
        long rows = table.Shape[0], dim = table.Shape[1];
        var ix = idx.Ints; var t = table.Floats;
        var res = new double[ix.LongLength * dim];
        for (long i = 0; i < ix.LongLength; i++)
        {
            long r = ix[i];
            if (r < 0 || r >= rows) throw new IndexOutOfRangeException($"Gather index {r} at {i} is outside the {rows} rows");
            Array.Copy(t, r * dim, res, i * dim, dim);
        }
        return RefTensor.Float(res, idx.Shape.Append(dim).ToArray());
    }

    private static RefTensor GatherGrad(RefTensor dy, RefTensor idx, long rows)
    {
        long dim = dy.Shape[dy.Rank - 1];
        if (!dy.Shape.Take(dy.Rank - 1).SequenceEqual(idx.Shape)) throw new InvalidOperationException($"GatherGrad of {dy} with indices {idx}");
        var res = new double[rows * dim];
        var ix = idx.Ints; var d = dy.Floats;
        for (long i = 0; i < ix.LongLength; i++)
        {
            long r = ix[i];
            if (r < 0 || r >= rows) throw new IndexOutOfRangeException($"GatherGrad index {r} at {i} is outside the {rows} rows");
            for (long c = 0; c < dim; c++) res[r * dim + c] += d[i * dim + c];
        }
        return RefTensor.Float(res, rows, dim);
    }

    private static RefTensor PickLast(RefTensor x, RefTensor idx, int ignore)
    {
        long classes = x.Shape[x.Rank - 1];
        if (!x.Shape.Take(x.Rank - 1).SequenceEqual(idx.Shape)) throw new InvalidOperationException($"PickLast of {x} with indices {idx}");
        var ix = idx.Ints; var xs = x.Floats;
        var res = new double[ix.LongLength];
        for (long i = 0; i < ix.LongLength; i++)
        {
            int t = ix[i];
            if (t == ignore) { res[i] = 0; continue; }
            if (t < 0 || t >= classes) throw new IndexOutOfRangeException($"target {t} at {i} is outside the {classes} classes");
            res[i] = xs[i * classes + t];
        }
        return RefTensor.Float(res, idx.Shape);
    }

    private static RefTensor PickLastGrad(RefTensor dy, RefTensor idx, int ignore, long classes)
    {
        if (!dy.Shape.SequenceEqual(idx.Shape)) throw new InvalidOperationException($"PickLastGrad of {dy} with indices {idx}");
        var ix = idx.Ints; var d = dy.Floats;
        var res = new double[ix.LongLength * classes];
        for (long i = 0; i < ix.LongLength; i++)
        {
            int t = ix[i];
            if (t == ignore) continue;
            if (t < 0 || t >= classes) throw new IndexOutOfRangeException($"target {t} at {i} is outside the {classes} classes");
            res[i * classes + t] = d[i];
        }
        return RefTensor.Float(res, idx.Shape.Append(classes).ToArray());
    }
}

// ───────────────────────────── test support shared by the reference tests ─────────────────────────────

/// <summary>
/// Seeds of the randomized reference tests: fresh per run, or fixed with the environment variable
/// <c>KILN_TEST_SEED</c> to reproduce a failure (every assertion message names the seed).
/// </summary>
internal static class TestSeeds
{
    public static readonly int Base = int.TryParse(Environment.GetEnvironmentVariable("KILN_TEST_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s)
        ? s : Random.Shared.Next();

    /// <summary>A seed for one named case, stable for a given <see cref="Base"/>.</summary>
    public static int For(string name)
    {
        uint h = 2166136261;
        foreach (var c in name) { h ^= c; h *= 16777619; }
        return (int)(h ^ (uint)Base) & int.MaxValue;
    }

    public static string Describe(string name) => $"seed {For(name)} (base seed {Base}; rerun with KILN_TEST_SEED={Base})";
}

/// <summary>Lowers parsed models to reference graphs and makes inputs for them.</summary>
internal static class ModelGraphs
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<Microsoft.CodeAnalysis.CSharp.CSharpCompilation>> Compilations = new();

    /// <summary>The spec of the [Model] class <paramref name="typeName"/> (metadata name) in <paramref name="source"/>, parsed from a cached compilation.</summary>
    public static Parsing.ModelSpec Spec(string source, string typeName)
    {
        var comp = Compilations.GetOrAdd(source, s => new Lazy<Microsoft.CodeAnalysis.CSharp.CSharpCompilation>(() => GeneratorHarness.CompilationWithLibrary(s))).Value;
        var sym = comp.GetTypeByMetadataName(typeName) ?? throw new InvalidOperationException($"no type {typeName} in the source");
        var r = Parsing.ModelParser.Parse(sym, comp, default);
        if (r.Spec is null) throw new InvalidOperationException($"{typeName} did not parse: " + string.Join("; ", r.Diagnostics.Select(d => d.Id + " " + string.Join(",", d.Args))));
        return r.Spec;
    }

    /// <summary>Lowering + shape inference (the graph before autodiff), verified.</summary>
    public static Graph Forward(Parsing.ModelSpec spec, GraphKind kind)
    {
        var (g, err) = Lowerer.Lower(spec, kind);
        if (g is null) throw new InvalidOperationException($"{spec.Name} did not lower: {err?.Id} {string.Join(", ", err?.Args.ToList() ?? new List<string>())}");
        // A model declared with pipeline stages compiles to stage programs: the reference sees the same graph (one stage).
        if (spec.Parallel is { Pipeline: > 1 } && Passes.PipelineStages.Rewrite(g).Graph is { } staged) g = staged;
        Passes.Verifier.Verify(g, "lowering (reference test)");
        g = Passes.ShapeInference.Run(g);
        Passes.Verifier.Verify(g, "shape inference (reference test)");
        return g;
    }

    /// <summary>The training graph for the reference: lowering, shape inference and autodiff only (no simplify, fusion or plan).</summary>
    public static Graph Train(Parsing.ModelSpec spec)
    {
        var g = Passes.Autodiff.Run(Forward(spec, GraphKind.Train));
        Passes.Verifier.Verify(g, "autodiff (reference test)");
        return g;
    }

    /// <summary>Binds the root module's hyperparameters at their defaults.</summary>
    public static void BindDefaultHypers(Parsing.ModelSpec spec, ReferenceRun run)
    {
        var root = spec.Modules.First(m => m.FullName == spec.RootModule);
        foreach (var h in root.Hypers)
        {
            if (h.Default is not double v) throw new InvalidOperationException($"hyperparameter {h.Name} has no default");
            if (h.Type is "float" or "double") run.FloatHypers[h.Name] = v;
            else run.Symbols[h.Name] = (long)v;
        }
    }

    /// <summary>Random parameter values for the graph's parameter table (uniform in ±<paramref name="scale"/>).</summary>
    public static double[][] RandomParams(Graph g, ReferenceRun run, Random rng, double scale = 1.0) =>
        g.Parameters.Select(p =>
        {
            long n = ReferenceInterpreter.Numel(p.Shape.Select(d => d.Eval(name => run.Symbols[name])).ToArray());
            return Enumerable.Range(0, checked((int)n)).Select(_ => (rng.NextDouble() * 2 - 1) * scale).ToArray();
        }).ToArray();

    /// <summary>
    /// A random value for each graph input. Data sizes not bound in <paramref name="run"/> are drawn from
    /// <paramref name="sizes"/>. Integer inputs get indices valid for every op that reads them (embedding rows,
    /// class counts), with the ignore index of a cross-entropy mixed in at rate <paramref name="ignoreRate"/>.
    /// </summary>
    public static void RandomInputs(Graph g, ReferenceRun run, Random rng, Func<string, long> sizes, double ignoreRate = 0.25)
    {
        foreach (var decl in g.Inputs)
            foreach (var d in decl.Shape)
                foreach (var name in d.Symbols)
                    if (!run.Symbols.ContainsKey(name)) run.Symbols[name] = sizes(name);
        long Lookup(string n) => run.Symbols[n];
        var users = g.Users();
        foreach (var decl in g.Inputs)
        {
            var shape = decl.Shape.Select(d => d.Eval(Lookup)).ToArray();
            long count = ReferenceInterpreter.Numel(shape);
            if (decl.DType == DType.F32)
            {
                run.Inputs[decl.Name] = RefTensor.Float(Enumerable.Range(0, checked((int)count)).Select(_ => rng.NextDouble() * 3 - 1.5).ToArray(), shape);
                continue;
            }
            long? upper = null; int? ignore = null;
            var node = g.Nodes.First(n => n.Op == Op.Input && n.Name == decl.Name);
            var pending = new Stack<int>(new[] { node.Id });
            var seen = new HashSet<int>();
            while (pending.Count > 0)
            {
                var id = pending.Pop();
                if (!seen.Add(id)) continue;
                foreach (var u in users[id])
                {
                    var un = g[u];
                    switch (un.Op)
                    {
                        case Op.Reshape: case Op.Permute: case Op.Slice: case Op.Concat: case Op.Pad: pending.Push(u); break;
                        case Op.Gather: upper = Math.Min(upper ?? long.MaxValue, g[un.Inputs[0]].Shape[0].Eval(Lookup)); break;
                        case Op.PickLast:
                            upper = Math.Min(upper ?? long.MaxValue, g[un.Inputs[0]].Shape[^1].Eval(Lookup));
                            ignore = un.A<IgnoreAttr>().Ignore;
                            break;
                    }
                }
            }
            int bound = checked((int)(upper ?? 5));
            var data = new int[count];
            for (long i = 0; i < count; i++)
                data[i] = ignore is int ig && rng.NextDouble() < ignoreRate ? ig : rng.Next(bound);
            // Keep at least one counted target so a cross-entropy mean is not over nothing.
            if (ignore is int ig2 && count > 0 && data.All(v => v == ig2)) data[0] = ig2 == 0 ? 1 % bound : 0;
            run.Inputs[decl.Name] = RefTensor.Int(data, shape);
        }
    }
}

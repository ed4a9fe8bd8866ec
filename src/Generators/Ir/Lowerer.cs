using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Kiln.Generators.Parsing;

namespace Kiln.Generators.Ir;

/// <summary>The lowered graph (null on failure), the error, and warnings about hyperparameter defaults (KILN0019).</summary>
internal sealed record LowerResult(Graph? Graph, DiagnosticInfo? Error, IReadOnlyList<DiagnosticInfo>? Warnings = null)
{
    public void Deconstruct(out Graph? graph, out DiagnosticInfo? error) { graph = Graph; error = Error; }
}

/// <summary>A lowering failure that becomes one located diagnostic.</summary>
internal sealed class LowerException : Exception
{
    public LowerException(DiagnosticInfo info) : base(info.Id) => Info = info;
    public DiagnosticInfo Info { get; }
}

/// <summary>
/// Lowers a model's loss (or forward) method into an IR graph by abstract interpretation: modules are
/// instantiated with symbolic hyperparameters, their methods inlined, tensor operations appended to the graph with
/// shapes checked as they are built. A loop over <c>Module.Repeat</c> blocks (or a <c>for</c> loop whose bound is a
/// hyperparameter) becomes one loop region whose body is lowered once, with the blocks' parameters stacked; a loop
/// that cannot be a region (its body changes a value's shape, updates a number, returns, or uses the index other than
/// to pick the block) is unrolled instead, at the count's default, and checked when the model is constructed.
/// </summary>
internal sealed class Lowerer
{
    private readonly ModelSpec _spec;
    private readonly GraphKind _kind;
    private GraphBuilder _g = new();
    private readonly Dictionary<string, ModuleSpec> _modules;
    private readonly List<ParamDecl> _params = new();
    private readonly Dictionary<string, HyperSpec> _rootHypers;
    private readonly List<string> _callStack = new();
    private int _dropoutSites;
    /// <summary>Repeat fields (by path) and for-loops (by location) that cannot be regions and are unrolled.</summary>
    private readonly HashSet<string> _unroll;
    /// <summary>While a Repeat template is instantiated: the count its parameters are stacked over.</summary>
    private Sym? _stacking;
    /// <summary>Stacked parameter nodes: their count and per-iteration shape.</summary>
    private readonly Dictionary<int, (Sym Count, Sym[] Shape)> _stacked = new();
    /// <summary>The loop region being lowered (bodies do not nest: inner loops unroll).</summary>
    private Region? _region;
    private int _regions;
    /// <summary>The field whose initializer is being evaluated (for [Recompute]).</summary>
    private FieldSpec? _field;

    private Lowerer(ModelSpec spec, GraphKind kind, HashSet<string> unroll)
    {
        _spec = spec; _kind = kind; _unroll = unroll;
        _modules = spec.Modules.ToDictionary(m => m.FullName, StringComparer.Ordinal);
        _rootHypers = _modules[spec.RootModule].Hypers.ToDictionary(h => h.Name, StringComparer.Ordinal);
    }

    /// <summary>Lowers the loss (Train/Eval) or Forward (Predict) program; null graph with a diagnostic on failure.</summary>
    public static LowerResult Lower(ModelSpec spec, GraphKind kind)
    {
        // A loop that cannot be a region is found while lowering its body; lowering starts again with it unrolled.
        var unroll = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            var l = new Lowerer(spec, kind, unroll);
            try
            {
                var g = l.Run();
                return new LowerResult(g, null, l.CheckDefaults(g.Constraints));
            }
            catch (RegionFallback f) when (unroll.Add(f.Key)) { }
            catch (RegionFallback f) { return new LowerResult(null, DiagnosticInfo.Create("KILN6001", spec.Loc, spec.Name, $"the loop '{f.Key}' could not be lowered as a region or unrolled: {f.Message}")); }
            catch (LowerException e) { return new LowerResult(null, e.Info); }
            catch (ShapeException e) { return new LowerResult(null, DiagnosticInfo.Create(e.Id, spec.Loc, e.Message)); }
        }
    }

    /// <summary>A loop the lowerer must unroll instead of making it a region, and why.</summary>
    private sealed class RegionFallback : Exception
    {
        public RegionFallback(string key, string reason) : base(reason) => Key = key;
        public string Key { get; }
    }

    /// <summary>The loop region being lowered: what its body imports from the enclosing graph.</summary>
    private sealed class Region
    {
        public Region(string key, Sym count, string layerSymbol) { Key = key; Count = count; LayerSymbol = layerSymbol; }
        public string Key { get; }
        public Sym Count { get; }
        /// <summary>The symbol the iteration index stands for inside the body (never a size).</summary>
        public string LayerSymbol { get; }
        /// <summary>Body argument of each imported outer node: captured (the same every iteration) or stacked (sliced).</summary>
        public readonly Dictionary<int, int> Captured = new(), Stacked = new();
        /// <summary>A block the body picks by index asks for recomputation ([Recompute]).</summary>
        public bool Recompute { get; set; }
    }

    private Graph Run()
    {
        var root = _modules[_spec.RootModule];
        var model = new ModuleV(root, "");
        foreach (var h in root.Hypers)
            model.Env[h.Name] = h.Type is "float" or "double" ? new FloatV(Scalar.Hyper(h.Name)) : new IntV(Sym.Var(h.Name));
        Instantiate(model);

        var methodName = _kind == GraphKind.Predict ? "Forward" : _spec.LossMethod!;
        var method = root.Methods.FirstOrDefault(m => m.Name == methodName)
            ?? throw new LowerException(DiagnosticInfo.Create("KILN0007", root.Loc, root.Name, methodName));
        var inputs = new List<InputDecl>();
        var args = new List<Val>();
        var lossMethod = root.Methods.FirstOrDefault(m => m.Name == _spec.LossMethod);
        var forward = root.Methods.FirstOrDefault(m => m.Name == "Forward");
        if (lossMethod is not null && forward is not null)
            foreach (var lp in lossMethod.Params)
            {
                var fp = forward.Params.FirstOrDefault(q => q.Name == lp.Name && q.Type == lp.Type);
                if (fp?.Dims is null || lp.Dims is null) continue;
                var (ld, fd) = (lp.Dims.Value, fp.Dims.Value);
                // A free size name ("B") on one side is general: the other may fix it. Ranks, constants and
                // hyperparameters must agree, or one of the two programs takes a tensor the other cannot.
                bool Fixed(string d) => d.All(char.IsDigit) || _rootHypers.ContainsKey(d);
                if (ld.Count == fd.Count && Enumerable.Range(0, ld.Count).All(i => ld[i] == fd[i] || !Fixed(ld[i]) || !Fixed(fd[i]))) continue;
                string F(Kiln.Generators.Common.EquatableArray<string> d) => "[" + string.Join(", ", d) + "]";
                throw Fail("KILN1012", lp.Loc, $"input '{lp.Name}' is declared {F(ld)} on {lossMethod.Name} but {F(fd)} on Forward; " +
                    "the training and prediction programs take the same input, so declare the same shape (or omit [Shape] on the loss to inherit Forward's)");
            }
        foreach (var p in method.Params)
        {
            if (p.Type is not ("tensor" or "itensor"))
                throw Fail("KILN0106", p.Loc, p.Name, KindName(p.Type), "a Tensor or Tensor<int> input (program inputs are tensors)");
            var dims = p.Dims ?? lossMethod?.Params.FirstOrDefault(q => q.Name == p.Name && q.Type == p.Type)?.Dims;
            if (dims is null) throw Fail("KILN1009", p.Loc, p.Name, method.Name, p.Type == "tensor" ? "Tensor" : "Tensor<int>");
            var shape = dims.Value.Select(d => DimSym(d, p.Loc)).ToArray();
            var dtype = p.Type == "tensor" ? DType.F32 : DType.I32;
            _g.Src = Src(p.Loc, p.Name);
            var node = _g.Add(Op.Input, Array.Empty<int>(), new InputAttr(p.Name, dtype), shape);
            inputs.Add(new InputDecl(p.Name, dtype, shape, dims.Value.ToArray()));
            args.Add(new TensorV(node));
        }
        var result = Call(model, method, args, method.Loc);
        if (result is not TensorV t) throw Fail("KILN0106", method.Loc, method.Name, result.Describe, "a tensor result");
        var outNode = _g[t.Node];
        var outputs = new List<GraphOutput>();
        if (_kind == GraphKind.Predict) outputs.Add(new GraphOutput(OutputRole.Prediction, t.Node, -1));
        else
        {
            // Reported at the value returned (the last top-level return), where the reduction is missing.
            var returned = method.Body.OfType<ReturnStmt>().LastOrDefault()?.Value.Loc ?? method.Loc;
            if (outNode.Rank != 0) throw Fail("KILN1010", returned, method.Name, Shapes.Format(outNode.Shape));
            if (outNode.DType != DType.F32) throw Fail("KILN1007", method.Loc, "the loss must be a float tensor");
            outputs.Add(new GraphOutput(OutputRole.Loss, t.Node, -1));
        }
        return new Graph(_kind, _g.Nodes.ToList(), outputs, _params, inputs, _g.Constraints.ToList());
    }

    private Sym DimSym(string d, LocationInfo loc)
    {
        if (d.Length > 0 && d.All(char.IsDigit) && !(long.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out var big) && big <= int.MaxValue))
            throw Fail("KILN1011", loc, d, $"is larger than {int.MaxValue}, the largest size an int holds");
        if (long.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0) return Sym.Const(v);
        if (d.Length == 0 || !(char.IsLetter(d[0]) || d[0] == '_') || !d.All(c => char.IsLetterOrDigit(c) || c == '_'))
            throw Fail("KILN1011", loc, d, "is neither a positive integer nor an identifier");
        if (_rootHypers.TryGetValue(d, out var h) && h.Type is "float" or "double" or "bool")
            throw Fail("KILN1011", loc, d, "is the " + h.Type + " hyperparameter '" + d + "', but sizes are integers");
        return Sym.Var(d);
    }

    /// <summary>A parameter kind as the message reads it ("an int", "a Tensor&lt;int&gt;").</summary>
    private static string KindName(string type) => type switch
    {
        "tensor" => "a float Tensor",
        "itensor" => "a Tensor<int>",
        "int" => "an int",
        "unsupported" => "a value of a type Kiln does not support",
        _ => "a " + type,
    };

    private static SourceRef Src(LocationInfo loc, string text) => new(loc.File, loc.Line1, loc.Column + 1, text);

    private static LowerException Fail(string id, LocationInfo loc, params string[] args) => new(DiagnosticInfo.Create(id, loc, args));

    private static string Short(string fullName) => fullName.Substring(fullName.LastIndexOf('.') + 1);

    // ───────────────────────────── modules and layers ─────────────────────────────

    /// <summary>How deep in field initializers the lowerer is: layers and modules are created only there.</summary>
    private int _instantiating;

    private void Instantiate(ModuleV m)
    {
        _instantiating++;
        try { InstantiateFields(m); }
        finally { _instantiating--; }
    }

    private void InstantiateFields(ModuleV m)
    {
        foreach (var f in m.Spec.Fields)
        {
            if (f.Init is null) continue;
            var path = m.Path.Length == 0 ? f.Name : m.Path + "." + f.Name;
            var scope = new Scope(m, new Dictionary<string, Val>(), path);
            var outerField = _field;
            _field = f;
            m.Env[f.Name] = f.Type == "param" ? DeclareParameter(f, path, scope) : Eval(f.Init, scope);
            _field = outerField;
        }
    }

    /// <summary>
    /// A <c>Tensor</c> field initialized with <c>Parameter.Zeros/Ones/Normal/Uniform(...)</c>: a parameter named by the
    /// field's path, with its shape traced to hyperparameters and constants.
    /// </summary>
    private Val DeclareParameter(FieldSpec f, string path, Scope s)
    {
        if (f.Init is not CallExpr { Kind: CallKind.Parameter } call)
            throw Fail("KILN0017", f.Init!.Loc, $"Tensor field '{f.Name}' is initialized with '{f.Init.Text}'");
        var args = call.Args.Select(a => Eval(a, s)).ToList();
        bool scaled = call.Method is "Normal" or "Uniform";
        var dimsAt = call.Args[scaled ? 1 : 0];
        if (args[scaled ? 1 : 0] is not ArrayV dims)
            throw Fail("KILN1008", dimsAt.Loc, $"Parameter.{call.Method} needs the sizes as separate arguments or an array literal");
        var shape = dims.Items.Select(v => Traced(v, dimsAt, "a parameter size")).ToArray();
        for (int i = 0; i < shape.Length; i++)
            if (shape[i].TryConst(out var k) && k <= 0)
                throw Fail("KILN0018", At(dimsAt, i), $"size {i} of parameter '{path}' is {k}; parameter sizes must be positive");
        var scale = Scalar.Const(call.Method == "Ones" ? 1 : 0);
        if (scaled)
        {
            scale = TracedFloat(args[0], call.Args[0], call.Method == "Normal" ? "the standard deviation" : "the bound");
            if (scale.IsConst && !(scale.Value >= 0 && !double.IsInfinity(scale.Value)))
                throw Fail("KILN0018", call.Args[0].Loc, $"the {(call.Method == "Normal" ? "standard deviation" : "bound")} of parameter '{path}' is {((float)scale.Value).ToString(CultureInfo.InvariantCulture)}; it must be finite and non-negative");
        }
        var init = new InitRule(call.Method.ToLowerInvariant(), scale);
        var node = NewParam(path, shape, init, f.WeightDecay ?? shape.Length >= 2, call);
        return new TensorV(node);
    }

    /// <summary>The location of item <paramref name="i"/> of a params-array argument (the array's own when it has no items).</summary>
    private static LocationInfo At(Expr arrayArg, int i) => arrayArg is ArrayExpr a && i < a.Items.Count ? a.Items[i].Loc : arrayArg.Loc;

    private Val New(NewExpr e, Scope s)
    {
        if (_instantiating == 0)
        {
            var what = e.Type.StartsWith("module:", StringComparison.Ordinal) ? "module " + Short(e.Type.Substring(7)) : "a " + e.Type + " layer";
            var type = e.Type.StartsWith("module:", StringComparison.Ordinal) ? Short(e.Type.Substring(7)) : e.Type;
            throw Fail("KILN0021", e.Loc, e.Text, what, type);
        }
        var args = e.Args.Select(a => Eval(a, s)).ToList();
        _g.Src = Src(e.Loc, e.Text);
        switch (e.Type)
        {
            case "Linear":
            {
                var l = new LayerV("Linear", s.Path) { In = Size(args[0], e.Args[0], "Linear", "inFeatures"), Out = Size(args[1], e.Args[1], "Linear", "outFeatures") };
                bool bias = Concretize(Traced(args[2], e.Args[2], "bias"), e.Args[2], "whether the layer has a bias") != 0;
                var bound = Scalar.Const(1) / Scalar.Sqrt(Scalar.FromSym(l.In));
                // [ColumnParallel]: output features split (weight rows, bias); [RowParallel]: input features (weight columns).
                var split = _field?.Split;
                ParamSplit? weightSplit = null, biasSplit = null;
                if (split == "row") weightSplit = new ParamSplit(-1, 1);
                else if (split is not null && split.StartsWith("column:", StringComparison.Ordinal))
                {
                    int groups = int.Parse(split.Substring(7), CultureInfo.InvariantCulture);
                    weightSplit = new ParamSplit(-2, groups); biasSplit = new ParamSplit(-1, groups);
                }
                l.Weight = NewParam(s.Path + ".weight", new[] { l.Out, l.In }, new InitRule("uniform", bound), true, e, weightSplit);
                if (bias) l.Bias = NewParam(s.Path + ".bias", new[] { l.Out }, new InitRule("uniform", bound), false, e, biasSplit);
                return l;
            }
            case "Embedding":
            {
                var l = new LayerV("Embedding", s.Path) { In = Size(args[0], e.Args[0], "Embedding", "numEmbeddings"), Out = Size(args[1], e.Args[1], "Embedding", "dim") };
                l.Weight = NewParam(s.Path + ".weight", new[] { l.In, l.Out }, new InitRule("normal", Scalar.Const(1)), true, e);
                return l;
            }
            case "LayerNorm":
            {
                var l = new LayerV("LayerNorm", s.Path) { In = Size(args[0], e.Args[0], "LayerNorm", "dim"), Scalar = TracedFloat(args[1], e.Args[1], "eps") };
                Check(l.Scalar, e.Args[1], $"LayerNorm '{s.Path}' eps", v => v > 0, "the variance floor must be positive");
                l.Out = l.In;
                l.Weight = NewParam(s.Path + ".weight", new[] { l.In }, new InitRule("ones", Scalar.Const(1)), false, e);
                l.Bias = NewParam(s.Path + ".bias", new[] { l.In }, new InitRule("zeros", Scalar.Const(0)), false, e);
                return l;
            }
            case "Dropout":
            {
                var p = TracedFloat(args[0], e.Args[0], "p");
                Check(p, e.Args[0], $"Dropout '{s.Path}' p", v => v >= 0 && v < 1, "a drop probability must be in [0, 1)");
                return new LayerV("Dropout", s.Path) { Scalar = p, Site = ++_dropoutSites };
            }
        }
        var typeName = e.Type.Substring("module:".Length);
        if (!_modules.TryGetValue(typeName, out var spec)) throw Fail("KILN0103", e.Loc, typeName);
        var m = new ModuleV(spec, s.Path);
        for (int i = 0; i < spec.Hypers.Count; i++)
        {
            var h = spec.Hypers[i];
            var a = i < args.Count ? args[i] : null;
            if (a is IntV or FloatV) m.Env[h.Name] = a;
            else throw Fail("KILN0012", i < e.Args.Count ? e.Args[i].Loc : e.Loc, h.Name, "the argument is " + (a?.Describe ?? "missing"));
        }
        Instantiate(m);
        return m;
    }

    /// <summary>A parameter of the table; inside a Repeat template it is stacked over the repeat count.</summary>
    private int NewParam(string name, Sym[] shape, InitRule init, bool decay, Expr at, ParamSplit? split = null)
    {
        var idx = _params.Count;
        var stored = _stacking is { } count ? new[] { count }.Concat(shape).ToArray() : shape;
        _params.Add(new ParamDecl(name, stored, init, decay, Src(at.Loc, at.Text), split));
        var node = _g.Add(Op.Param, Array.Empty<int>(), new ParamAttr(idx, name), stored);
        if (_stacking is { } c) _stacked[node] = (c, shape);
        return node;
    }

    /// <summary>A layer size: a constant must be positive (else KILN0018 at the argument); a symbolic one is checked at the defaults.</summary>
    private Sym Size(Val v, Expr e, string layer, string what)
    {
        var size = Traced(v, e, what);
        if (size.TryConst(out var k) && k <= 0) throw Fail("KILN0018", e.Loc, $"{layer} {what} is {k}; sizes must be positive");
        _defaultRules.Add(new DefaultRule(size.SizeSymbols.ToList(), (sym, _) => size.Eval(sym) > 0,
            (sym, _) => $"{layer} {what} '{e.Text}' is {size.Eval(sym)}, but sizes must be positive"));
        return size;
    }

    /// <summary>A float a layer needs in a range: a constant outside is KILN0018 at the argument; a symbolic one is checked at the defaults.</summary>
    private void Check(Scalar value, Expr e, string what, Func<double, bool> ok, string rule)
    {
        if (value.IsConst)
        {
            if (!ok(value.Value)) throw Fail("KILN0018", e.Loc, $"{what} is {value}; {rule}");
            return;
        }
        var names = FloatNames(value);
        _defaultRules.Add(new DefaultRule(names, (sym, hyper) => ok(value.Eval(hyper, sym)), (sym, hyper) => $"{what} '{e.Text}' is {value.Eval(hyper, sym).ToString(CultureInfo.InvariantCulture)}, but {rule}"));
    }

    /// <summary>The hyperparameters a symbolic float reads (its printed form names them).</summary>
    private List<string> FloatNames(Scalar value) =>
        _rootHypers.Keys.Where(h => System.Text.RegularExpressions.Regex.IsMatch(value.ToString(), @"(?<![\w$])" + System.Text.RegularExpressions.Regex.Escape(h) + @"(?![\w])")).ToList();

    /// <summary>A rule the model needs of its hyperparameters, checked at their defaults (KILN0019 when they break it).</summary>
    private sealed record DefaultRule(IReadOnlyList<string> Hypers, Func<Func<string, long>, Func<string, double>, bool> Holds, Func<Func<string, long>, Func<string, double>, string> Describe);

    private readonly List<DefaultRule> _defaultRules = new();

    /// <summary>
    /// The rules and run-time constraints that the hyperparameters' defaults break (KILN0019 warnings at the first
    /// hyperparameter involved): construction with the defaults would throw.
    /// </summary>
    private List<DiagnosticInfo> CheckDefaults(IEnumerable<Constraint> constraints)
    {
        var warnings = new List<DiagnosticInfo>();
        bool HasDefaults(IEnumerable<string> names) => names.All(n => _rootHypers.TryGetValue(n, out var h) && h.Default is not null);
        long Sym(string n) => (long)_rootHypers[n].Default!.Value;
        double Hyper(string n) => _rootHypers[n].Default!.Value;
        void Warn(IReadOnlyList<string> names, string rule)
        {
            if (names.Count == 0) return;
            var d = DiagnosticInfo.Create("KILN0019", _rootHypers[names[0]].Loc, string.Join(", ", names), rule);
            if (!warnings.Contains(d)) warnings.Add(d);
        }
        foreach (var r in _defaultRules)
            if (r.Hypers.Count > 0 && HasDefaults(r.Hypers))
            {
                try { if (!r.Holds(Sym, Hyper)) Warn(r.Hypers, r.Describe(Sym, Hyper)); }
                catch (DivideByZeroException) { }
            }
        foreach (var c in constraints)
        {
            var names = c.A.Symbols.Concat(c.B.Symbols).Distinct().ToList();
            if (names.Count == 0 || !HasDefaults(names)) continue;
            try
            {
                long a = c.A.Eval(Sym), b = c.B.Eval(Sym);
                bool ok = c.Kind == ConstraintKind.Equal ? a == b : b != 0 && a % b == 0;
                if (!ok) Warn(names, $"{c.Message} ({(c.Kind == ConstraintKind.Equal ? $"{c.A} = {a}, {c.B} = {b}" : $"{a} is not divisible by {b}")})");
            }
            catch (DivideByZeroException) { Warn(names, $"{c.Message} (a division by zero)"); }
        }
        return warnings;
    }

    private static Sym Traced(Val v, Expr e, string what) => v switch
    {
        IntV i => i.Value,
        _ => throw Fail("KILN0012", e.Loc, e.Text, what + " is " + v.Describe),
    };

    private static Scalar TracedFloat(Val v, Expr e, string what) => v switch
    {
        FloatV f => f.Value,
        IntV i => Scalar.FromSym(i.Value),
        _ => throw Fail("KILN0012", e.Loc, e.Text, what + " is " + v.Describe),
    };

    private Val ApplyLayer(LayerV l, Val arg, CallExpr e)
    {
        var x = AsTensor(arg, e.Args[0], "the layer input");
        _g.Src = Src(e.Loc, e.Text);
        // Shape rules of the ops a layer expands to fail at the layer call, not at the model declaration.
        try { return ApplyLayerOps(l, x, e); }
        catch (ShapeException s) { throw Fail(s.Id, e.Loc, s.Message); }
    }

    private Val ApplyLayerOps(LayerV l, int x, CallExpr e)
    {
        var xn = _g[x];
        switch (l.Kind)
        {
            case "Linear":
            {
                if (xn.Rank < 1) throw Fail("KILN1003", e.Loc, $"Linear '{l.Path}' needs an input of rank ≥ 1, got a scalar");
                var inCmp = Sym.Compare(xn.Shape[xn.Rank - 1], l.In);
                if (inCmp is SymCompare.Less or SymCompare.Greater)
                    throw Fail("KILN1001", e.Loc, $"Linear '{l.Path}' expects inputs [..., {l.In}] but got {Shapes.Format(xn.Shape)}");
                var y = _g.MatMul(xn.Rank == 1 ? _g.Reshape(x, new[] { Sym.One, xn.Shape[0] }) : x, l.Weight, false, true);
                if (xn.Rank == 1) y = _g.Reshape(y, new[] { l.Out });
                return new TensorV(l.Bias >= 0 ? _g.Binary(Op.Add, y, l.Bias) : y);
            }
            case "Embedding":
                if (xn.DType != DType.I32)
                    throw Fail("KILN1007", e.Args[0].Loc, $"Embedding '{l.Path}' looks up integer ids (Tensor<int>) but '{e.Args[0].Text}' is a float tensor {Shapes.Format(xn.Shape)}");
                return new TensorV(_g.Add(Op.Gather, new[] { l.Weight, x }));
            case "LayerNorm":
            {
                if (xn.Rank < 1) throw Fail("KILN1003", e.Loc, $"LayerNorm '{l.Path}' needs an input of rank ≥ 1");
                var last = xn.Rank - 1;
                ShapeRules.Broadcast(xn.Shape, new[] { l.In }, $"LayerNorm '{l.Path}' (normalised size {l.In})", _g.Require);
                var mean = DslFunctions.Mean(_g, x, last, true);
                var xc = _g.Binary(Op.Sub, x, mean);
                var variance = DslFunctions.Mean(_g, _g.Unary(Op.Square, xc), last, true);
                var inv = _g.Unary(Op.Rsqrt, _g.Add(Op.AddScalar, new[] { variance }, new ScalarAttr(l.Scalar)));
                var norm = _g.Binary(Op.Mul, xc, inv);
                return new TensorV(_g.Binary(Op.Add, _g.Binary(Op.Mul, norm, l.Weight), l.Bias));
            }
            case "Dropout":
            {
                if (_kind != GraphKind.Train || (l.Scalar.IsConst && l.Scalar.Value == 0)) return new TensorV(x);
                var mask = _g.Add(Op.DropoutMask, Array.Empty<int>(), new DropoutAttr(l.Site, l.Scalar), xn.Shape);
                return new TensorV(_g.Binary(Op.Mul, x, mask));
            }
        }
        throw Fail("KILN0102", e.Loc, l.Kind + ".Forward");
    }

    // ───────────────────────────── methods and statements ─────────────────────────────

    private sealed class Scope
    {
        public Scope(ModuleV module, Dictionary<string, Val> locals, string path) { Module = module; Locals = locals; Path = path; }
        public ModuleV Module { get; }
        public Dictionary<string, Val> Locals { get; }
        public string Path { get; set; }
        /// <summary>Statements here run inside the body of the loop region being lowered (a return there cannot be a region).</summary>
        public bool InRegionBody { get; set; }
    }

    private Val Call(ModuleV m, MethodSpec method, IReadOnlyList<Val> args, LocationInfo at, IReadOnlyList<LocationInfo>? argLocs = null)
    {
        var key = m.Spec.Name + "." + method.Name;
        if (_callStack.Contains(key))
            throw Fail("KILN0015", at, key, string.Join(" → ", _callStack.SkipWhile(k => k != key).Append(key)));
        _callStack.Add(key);
        var locals = new Dictionary<string, Val>(StringComparer.Ordinal);
        for (int i = 0; i < method.Params.Count; i++)
        {
            var p = method.Params[i];
            var a = i < args.Count ? args[i] : throw Fail("KILN0106", at, method.Name, "called with too few arguments", method.Params.Count + " arguments");
            bool ok = p.Type switch
            {
                "tensor" => a is TensorV tv && _g[tv.Node].DType == DType.F32,
                "itensor" => a is TensorV ti && _g[ti.Node].DType == DType.I32,
                "int" or "long" or "bool" => a is IntV,
                "float" or "double" => a is FloatV or IntV,
                _ => false,
            };
            if (!ok) throw Fail(a is TensorV && p.Type is "tensor" or "itensor" ? "KILN1007" : "KILN0106", at,
                p.Type is "tensor" or "itensor" && a is TensorV ? $"argument '{p.Name}' of {key} must be a {(p.Type == "tensor" ? "float Tensor" : "Tensor<int>")}" : p.Name,
                a.Describe, KindName(p.Type));
            locals[p.Name] = a is IntV iv && p.Type is "float" or "double" ? new FloatV(Scalar.FromSym(iv.Value)) : a;
        }
        if (argLocs is not null) CheckDeclaredShapes(m, method, key, args, argLocs);
        var scope = new Scope(m, locals, m.Path);
        var result = Exec(method.Body, scope);
        _callStack.RemoveAt(_callStack.Count - 1);
        return result ?? throw Fail("KILN0105", method.Loc, key);
    }

    /// <summary>
    /// A module method's <c>[Shape]</c> parameters hold at every call: the rank, each constant, each size named by
    /// a hyperparameter of the module, and each free name bound consistently within the call. What cannot be
    /// decided from the hyperparameters becomes a run-time check; what is known to differ is KILN1012 at the argument.
    /// </summary>
    private void CheckDeclaredShapes(ModuleV m, MethodSpec method, string key, IReadOnlyList<Val> args, IReadOnlyList<LocationInfo> argLocs)
    {
        var free = new Dictionary<string, Sym>(StringComparer.Ordinal);
        for (int i = 0; i < method.Params.Count && i < args.Count; i++)
        {
            var p = method.Params[i];
            if (p.Dims is null || args[i] is not TensorV t) continue;
            var dims = p.Dims.Value;
            var actual = _g[t.Node].Shape;
            var loc = i < argLocs.Count ? argLocs[i] : method.Loc;
            string Declared() => "[" + string.Join(", ", dims) + "]";
            if (actual.Length != dims.Count)
                throw Fail("KILN1012", loc, $"argument '{p.Name}' of {key} is declared {Declared()} (rank {dims.Count}) but is {Shapes.Format(actual)} (rank {actual.Length}); reshape the argument or change the [Shape] on the parameter");
            for (int d = 0; d < dims.Count; d++)
            {
                var name = dims[d];
                Sym want;
                if (long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out _)) want = DimSym(name, p.Loc);
                else if (m.Env.TryGetValue(name, out var hv) && hv is IntV hi) want = hi.Value;
                else if (free.TryGetValue(name, out var bound)) want = bound;
                else { DimSym(name, p.Loc); free[name] = actual[d]; continue; }
                var message = $"argument '{p.Name}' of {key} is declared {Declared()} but is {Shapes.Format(actual)}: '{name}' is {want} but axis {d} is {actual[d]}";
                switch (Sym.Compare(actual[d], want))
                {
                    case SymCompare.Equal: break;
                    case SymCompare.Unknown: _g.Require(actual[d], want, message); break;
                    default: throw Fail("KILN1012", loc, message + "; pass a tensor of the declared shape or change the [Shape] on the parameter");
                }
            }
        }
    }

    private Val? Exec(IEnumerable<Stmt> body, Scope s)
    {
        foreach (var st in body)
        {
            switch (st)
            {
                case LocalStmt l: s.Locals[l.Name] = Eval(l.Value, s); break;
                case AssignStmt a:
                {
                    var v = Eval(a.Value, s);
                    if (a.Op != "=")
                    {
                        var cur = Lookup(a.Name, s, a.Loc);
                        v = Binary(a.Op.Substring(0, 1), cur, v, new BinaryExpr(a.Loc, a.Name + " " + a.Op + " ...", a.Op.Substring(0, 1), a.Value, a.Value));
                    }
                    s.Locals[a.Name] = v;
                    break;
                }
                case ReturnStmt r:
                    if (_region is not null && s.InRegionBody) throw new RegionFallback(_region.Key, "the loop body returns");
                    return Eval(r.Value, s);
                case ForEachStmt fe:
                {
                    var coll = Eval(fe.Collection, s);
                    if (coll is RepeatV rep)
                    {
                        LowerLoop(rep.Path, rep.Path, rep.Count, rep.Recompute, fe.Body, s, fe.Loc, "foreach (var " + fe.Variable + " in " + fe.Collection.Text + ")",
                            _ => s.Locals[fe.Variable] = rep.Template);
                        break;
                    }
                    if (coll is not ArrayV arr) throw Fail("KILN0106", fe.Collection.Loc, fe.Collection.Text, coll.Describe, "an array of modules or layers");
                    foreach (var item in arr.Items)
                    {
                        s.Locals[fe.Variable] = item;
                        var r = Exec(fe.Body, s);
                        if (r is not null) return r;
                    }
                    s.Locals.Remove(fe.Variable);
                    break;
                }
                case ForStmt f:
                {
                    var key = $"for@{f.Loc.File}:{f.Loc.Start}";
                    var startSym = Traced(Eval(f.Start, s), f.Start, "the loop start");
                    var endSym = Traced(Eval(f.End, s), f.End, "the loop end");
                    if (!(endSym - startSym).IsConst && !_unroll.Contains(key))
                    {
                        LowerLoop(key, "for " + f.Variable, endSym - startSym, false, f.Body, s, f.Loc, $"for (int {f.Variable} = {f.Start.Text}; {f.Variable} < {f.End.Text}; {f.Variable}++)",
                            r => s.Locals[f.Variable] = new IntV(startSym + Sym.Var(r.LayerSymbol)));
                        break;
                    }
                    long start = Concretize(startSym, f.Start, "a loop bound");
                    long end = Concretize(endSym, f.End, "a loop bound");
                    for (long i = start; i < end; i++)
                    {
                        s.Locals[f.Variable] = new IntV(Sym.Const(i));
                        var r = Exec(f.Body, s);
                        if (r is not null) return r;
                    }
                    s.Locals.Remove(f.Variable);
                    break;
                }
                case IfStmt i:
                {
                    // A condition on hyperparameters only: both branches compiled, as regions that run once or not at all,
                    // the choice made by the values the model is constructed with.
                    var key = $"if@{i.Loc.File}:{i.Loc.Start}";
                    var cv = Eval(i.Condition, s);
                    if (cv is IntV { Value: var c } && !c.IsConst && c.Symbols.All(n => _rootHypers.ContainsKey(n)) && !_unroll.Contains(key))
                    {
                        var taken = Truth(c);
                        var text = "if (" + i.Condition.Text + ")";
                        LowerLoop(key, text, taken, false, i.Then, s, i.Loc, text, _ => { });
                        if (i.Else.Count > 0) LowerLoop(key, "else of " + text, Sym.One - taken, false, i.Else, s, i.Loc, "else", _ => { });
                        break;
                    }
                    var r = Exec(Condition(cv, i.Condition) ? i.Then : i.Else, s);
                    if (r is not null) return r;
                    break;
                }
            }
        }
        return null;
    }

    // ───────────────────────────── loop regions ─────────────────────────────

    /// <summary>
    /// Lowers a loop whose body runs <paramref name="count"/> times into one loop node. Outer locals the body assigns
    /// are carried (each must stay a tensor of the same shape); outer tensors it reads are captured, except stacked
    /// parameters of repeated blocks, which it reads sliced at the iteration. <paramref name="bind"/> binds the loop
    /// variable. Anything a region cannot express throws <see cref="RegionFallback"/> so the loop is unrolled.
    /// </summary>
    private void LowerLoop(string key, string label, Sym count, bool recompute, IReadOnlyList<Stmt> stmts, Scope s, LocationInfo loc, string text, Action<Region> bind)
    {
        if (_region is not null) throw new RegionFallback(key, "a loop inside a loop body is unrolled");
        if (count.TryConst(out var constant) && constant < 0) throw Fail("KILN0018", loc, $"the loop runs {constant} times");
        var carried = new List<string>();
        foreach (var name in AssignedNames(stmts))
        {
            if (!s.Locals.TryGetValue(name, out var v) || carried.Contains(name)) continue;
            if (v is not TensorV) throw new RegionFallback(key, $"the loop body updates '{name}', which is not a tensor");
            carried.Add(name);
        }
        var before = new Dictionary<string, Val>(s.Locals);
        var outer = _g;
        var region = new Region(key, count, "$layer" + (++_regions).ToString(CultureInfo.InvariantCulture));
        var body = new GraphBuilder(outer.NextId) { Src = Src(loc, text) };
        var inits = carried.Select(n => ((TensorV)s.Locals[n]).Node).ToList();
        for (int i = 0; i < carried.Count; i++)
        {
            var init = outer[inits[i]];
            s.Locals[carried[i]] = new TensorV(body.Add(Op.LoopArg, Array.Empty<int>(), new LoopArgAttr(i, init.DType), init.Shape));
        }
        body.ImportOuter = id => ImportIntoBody(region, body, outer, id);
        _g = body; _region = region;
        bool wasInBody = s.InRegionBody;
        s.InRegionBody = true;
        try
        {
            bind(region);
            Exec(stmts, s);
        }
        finally { _g = outer; _region = null; s.InRegionBody = wasInBody; }

        var results = new List<int>();
        for (int i = 0; i < carried.Count; i++)
        {
            if (s.Locals[carried[i]] is not TensorV t) throw new RegionFallback(key, $"the loop body makes '{carried[i]}' something other than a tensor");
            var result = body.Resolve(t.Node);
            var (r, init) = (body[result], outer[inits[i]]);
            if (r.DType != init.DType || !Shapes.Same(r.Shape, init.Shape))
                throw new RegionFallback(key, $"the loop body changes '{carried[i]}' from {IrPrinter.Type(init.DType, init.Shape)} to {IrPrinter.Type(r.DType, r.Shape)}");
            results.Add(result);
        }
        // The iteration index may pick a block; it must not size a tensor or enter arithmetic.
        foreach (var n in body.Nodes)
            if (n.Shape.SelectMany(d => d.Symbols).Contains(region.LayerSymbol) || (n.Attr is not null && string.Join(" ", n.Attr.PrintParts()).Contains(region.LayerSymbol)))
                throw new RegionFallback(key, "the loop index is used as a number in the body");

        // Arguments in the loop's input order: carried, captured, stacked.
        var order = new Dictionary<int, int>();
        for (int i = 0; i < carried.Count; i++) order[body.Nodes.First(n => n.Op == Op.LoopArg && n.A<LoopArgAttr>().Index == i).Id] = i;
        var captured = region.Captured.OrderBy(kv => kv.Value).ToList();
        var stacked = region.Stacked.OrderBy(kv => kv.Value).ToList();
        for (int k = 0; k < captured.Count; k++) order[captured[k].Value] = carried.Count + k;
        for (int k = 0; k < stacked.Count; k++) order[stacked[k].Value] = carried.Count + captured.Count + k;
        var nodes = body.Nodes.Select(n => n.Op == Op.LoopArg ? new Node(n.Id, n.Op, n.Inputs, n.DType, n.Shape, new LoopArgAttr(order[n.Id], n.DType), n.Src) : n).ToList();
        var outputs = results.Select((r, i) => new GraphOutput(OutputRole.Carried, r, i)).ToList();
        var bodyGraph = new Graph(GraphKind.Body, nodes, outputs, Array.Empty<ParamDecl>(), Array.Empty<InputDecl>(), Array.Empty<Constraint>());

        outer.AddConstraints(body.Constraints);
        outer.ReserveIds(body.NextId);
        outer.Src = Src(loc, text);
        var loopInputs = inits.Concat(captured.Select(kv => kv.Key)).Concat(stacked.Select(kv => kv.Key)).ToArray();
        var loop = outer.Add(Op.Loop, loopInputs, new LoopAttr(label, count, bodyGraph, carried.Count, captured.Count, stacked.Count, Recompute: recompute || region.Recompute));
        s.Locals.Clear();
        foreach (var kv in before) s.Locals[kv.Key] = kv.Value;
        for (int i = 0; i < carried.Count; i++) s.Locals[carried[i]] = new TensorV(outer.Add(Op.LoopOut, new[] { loop }, new LoopOutAttr(i)));
    }

    /// <summary>The body argument standing for outer node <paramref name="id"/>: a stacked parameter's slice, or a captured value.</summary>
    private int ImportIntoBody(Region r, GraphBuilder body, GraphBuilder outer, int id)
    {
        var n = outer[id];
        if (_stacked.TryGetValue(id, out var st))
        {
            if (!st.Count.Equals(r.Count)) throw new RegionFallback(r.Key, $"the loop runs {r.Count} times over blocks repeated {st.Count} times");
            var arg = body.Add(Op.LoopArg, Array.Empty<int>(), new LoopArgAttr(-1, n.DType), st.Shape);
            r.Stacked[id] = arg;
            return arg;
        }
        var cap = body.Add(Op.LoopArg, Array.Empty<int>(), new LoopArgAttr(-1, n.DType), n.Shape);
        r.Captured[id] = cap;
        return cap;
    }

    /// <summary>Locals a statement list assigns, in order of first assignment.</summary>
    private static List<string> AssignedNames(IEnumerable<Stmt> stmts)
    {
        var names = new List<string>();
        void Walk(IEnumerable<Stmt> ss)
        {
            foreach (var st in ss)
                switch (st)
                {
                    case AssignStmt a: if (!names.Contains(a.Name)) names.Add(a.Name); break;
                    case ForEachStmt fe: Walk(fe.Body); break;
                    case ForStmt f: Walk(f.Body); break;
                    case IfStmt i: Walk(i.Then); Walk(i.Else); break;
                }
        }
        Walk(stmts);
        return names;
    }

    /// <summary>Whether <paramref name="e"/> mentions the name <paramref name="name"/> (a repeat factory that uses its index).</summary>
    private static bool Mentions(Expr e, string name) => e switch
    {
        NameExpr n => n.Name == name,
        MemberExpr m => Mentions(m.Target, name),
        CallExpr c => (c.Receiver is not null && Mentions(c.Receiver, name)) || c.Args.Any(a => Mentions(a, name)),
        BinaryExpr b => Mentions(b.Left, name) || Mentions(b.Right, name),
        UnaryExpr u => Mentions(u.Operand, name),
        CondExpr c => Mentions(c.Condition, name) || Mentions(c.WhenTrue, name) || Mentions(c.WhenFalse, name),
        NewExpr n => n.Args.Any(a => Mentions(a, name)),
        LambdaExpr l => l.Parameter != name && Mentions(l.Body, name),
        IndexExpr i => Mentions(i.Target, name) || Mentions(i.Index, name),
        ArrayExpr a => a.Items.Any(x => Mentions(x, name)),
        CastExpr c => Mentions(c.Operand, name),
        _ => false,
    };

    private bool Condition(Expr e, Scope s) => Condition(Eval(e, s), e);

    /// <summary>A condition's value (1 or 0) as a symbol: itself when it is a comparison, else whether it is non-zero.</summary>
    private static Sym Truth(Sym v) => v.IsCondition ? v : Sym.Compare(v, "!=", Sym.Zero);

    private bool Condition(Val v, Expr e)
    {
        return v switch
        {
            IntV i => Concretize(i.Value, e, "a condition") != 0,
            FloatV f when f.Value.IsConst => f.Value.Value != 0,
            _ => throw Fail("KILN0108", e.Loc, e.Text, WhyNotKnown(v)),
        };
    }

    private static string WhyNotKnown(Val v) => v switch
    {
        TensorV => "it depends on tensor values",
        FloatV => "it depends on floating-point hyperparameter values, which are fixed only when the model is constructed",
        _ => "it is " + v.Describe,
    };

    /// <summary>
    /// A value the program's structure depends on (a repeat count, a branch). Constant values are used as
    /// they are; hyperparameter expressions are fixed at their defaults and checked when the program is created.
    /// </summary>
    private long Concretize(Sym s, Expr at, string why)
    {
        if (s.TryConst(out var c)) return c;
        if (_region is not null && s.Symbols.Contains(_region.LayerSymbol))
            throw new RegionFallback(_region.Key, $"'{at.Text}' uses the loop index for {why}");
        var syms = s.Symbols.ToList();
        var missing = syms.Where(n => !_rootHypers.TryGetValue(n, out var h) || h.Default is null).ToList();
        if (missing.Count > 0)
        {
            var data = missing.Where(n => !_rootHypers.ContainsKey(n)).ToList();
            if (data.Count > 0) throw Fail("KILN1008", at.Loc, $"'{at.Text}' depends on the data size {string.Join(", ", data)}, but {why} must be known at build time");
            throw Fail("KILN0013", at.Loc, at.Text, why, string.Join(", ", missing));
        }
        long v = s.Eval(n => (long)_rootHypers[n].Default!.Value);
        var names = string.Join(", ", syms);
        _g.Src = Src(at.Loc, at.Text);
        _g.Require(s, Sym.Const(v),
            $"'{at.Text}' sets the model's structure ({why}) and was compiled as {v} from the default of {names}; construct the model with that value, or change the default in the declaration and rebuild");
        return v;
    }

    private Val Lookup(string name, Scope s, LocationInfo loc)
    {
        if (s.Locals.TryGetValue(name, out var v)) return v;
        if (s.Module.Env.TryGetValue(name, out v)) return v;
        var field = s.Module.Spec.Fields.FirstOrDefault(f => f.Name == name);
        if (field is not null && field.Init is null)
            throw Fail("KILN0012", loc, name, "field '" + name + "' has no initializer");
        throw Fail("KILN0104", loc, $"'{name}' is not available in {s.Module.Spec.Name} (Kiln sees hyperparameters, fields with initializers, parameters and locals)");
    }

    // ───────────────────────────── expressions ─────────────────────────────

    private Val Eval(Expr e, Scope s)
    {
        switch (e)
        {
            case LitExpr l:
                if (l.Type == "error") throw new LowerException(DiagnosticInfo.Create("KILN0101", null, "", "")); // already reported by the parser
                return l.Type is "int" or "bool" ? new IntV(Sym.Const((long)l.Value)) : new FloatV(Scalar.Const(l.Value));
            case NameExpr n: return Lookup(n.Name, s, n.Loc);
            case MemberExpr m: return Member(Eval(m.Target, s), m);
            case BinaryExpr b: return Binary(b.Op, Eval(b.Left, s), Eval(b.Right, s), b);
            case UnaryExpr u:
            {
                var v = Eval(u.Operand, s);
                if (u.Op == "+") return v;
                if (u.Op == "!") return v is IntV bi ? new IntV(Sym.Compare(Truth(bi.Value), "==", Sym.Zero)) : throw Fail("KILN0108", u.Loc, u.Text, WhyNotKnown(v));
                return v switch
                {
                    TensorV t => new TensorV(WithSrc(u, () => _g.Unary(Op.Neg, RequireFloatTensor(t.Node, u, "negation")))),
                    IntV i => new IntV(-i.Value),
                    FloatV f => new FloatV(-f.Value),
                    _ => throw Fail("KILN0106", u.Loc, u.Operand.Text, v.Describe, "a number or tensor"),
                };
            }
            case CondExpr c: return Condition(c.Condition, s) ? Eval(c.WhenTrue, s) : Eval(c.WhenFalse, s);
            case CastExpr c:
            {
                var v = Eval(c.Operand, s);
                return (c.Type, v) switch
                {
                    ("int" or "long", IntV) => v,
                    ("float" or "double", IntV i) => new FloatV(Scalar.FromSym(i.Value)),
                    ("float" or "double", FloatV) => v,
                    ("int" or "long", FloatV f) when f.Value.IsConst => new IntV(Sym.Const((long)f.Value.Value)),
                    _ => throw Fail("KILN0101", c.Loc, "This cast", c.Text),
                };
            }
            case NewExpr n: return New(n, s);
            case LambdaExpr l: return new LambdaV(l);
            case ArrayExpr a:
            {
                var items = new List<Val>();
                var basePath = s.Path;
                for (int i = 0; i < a.Items.Count; i++)
                {
                    s.Path = basePath + "." + i.ToString(CultureInfo.InvariantCulture);
                    items.Add(Eval(a.Items[i], s));
                }
                s.Path = basePath;
                return new ArrayV(items);
            }
            case IndexExpr ix:
            {
                var target = Eval(ix.Target, s);
                var idx = Eval(ix.Index, s);
                if (target is RepeatV rep)
                {
                    // blocks[i] with i the index of a region over the same count picks the (stacked) template.
                    if (_region is not null && idx is IntV li && li.Value.Equals(Sym.Var(_region.LayerSymbol)) && rep.Count.Equals(_region.Count))
                    {
                        _region.Recompute |= rep.Recompute;
                        return rep.Template;
                    }
                    throw new RegionFallback(rep.Path, $"'{ix.Text}' picks one of the repeated blocks");
                }
                if (target is not ArrayV arr) throw Fail("KILN0101", ix.Loc, "Indexing into " + target.Describe, ix.Text);
                long i = Concretize(Traced(idx, ix.Index, "the index"), ix.Index, "an array index");
                if (i < 0 || i >= arr.Items.Count) throw Fail("KILN1003", ix.Loc, $"index {i} is outside the {arr.Items.Count} items of '{ix.Target.Text}'");
                return arr.Items[(int)i];
            }
            case CallExpr c: return CallExpression(c, s);
        }
        throw Fail("KILN0101", e.Loc, "This expression", e.Text);
    }

    private int WithSrc(Expr e, Func<int> build)
    {
        _g.Src = Src(e.Loc, e.Text);
        try { return build(); }
        catch (ShapeException x) { throw Fail(x.Id, e.Loc, x.Message); }
    }

    private int RequireFloatTensor(int node, Expr e, string what)
    {
        if (_g[node].DType != DType.F32) throw Fail("KILN1007", e.Loc, $"{what} needs a float tensor but '{e.Text}' is an integer tensor; convert it with Ops.ToFloat(...)");
        return node;
    }

    private Val Member(Val target, MemberExpr m)
    {
        switch (target, m.Member)
        {
            case (TensorV t, "T"):
            {
                var n = _g[t.Node];
                if (n.Rank < 2) throw Fail("KILN1003", m.Loc, $"'.T' needs a tensor of rank ≥ 2, got {Shapes.Format(n.Shape)}");
                var order = Enumerable.Range(0, n.Rank).ToArray();
                (order[n.Rank - 2], order[n.Rank - 1]) = (order[n.Rank - 1], order[n.Rank - 2]);
                return new TensorV(WithSrc(m, () => _g.Add(Op.Permute, new[] { t.Node }, new PermuteAttr(order))));
            }
            case (TensorV t, "Rank"): return new IntV(Sym.Const(_g[t.Node].Rank));
            case (LayerV l, "Weight"):
                if (l.Weight < 0) throw Fail("KILN0104", m.Loc, $"{l.Kind} '{l.Path}' has no weight");
                return new TensorV(l.Weight);
            case (LayerV l, "Bias"):
                if (l.Bias < 0) throw Fail("KILN0104", m.Loc, $"{l.Kind} '{l.Path}' was declared without a bias; construct it with bias: true to use .Bias");
                return new TensorV(l.Bias);
            case (LayerV l, "InFeatures" or "NumEmbeddings" or "Dim"): return new IntV(l.Kind == "Embedding" && m.Member == "Dim" ? l.Out : l.In);
            case (LayerV l, "OutFeatures"): return new IntV(l.Out);
            case (LayerV l, "Eps" or "P"): return new FloatV(l.Scalar);
            case (LayerV l, "HasBias"): return new IntV(Sym.Const(l.Bias >= 0 ? 1 : 0));
            case (ArrayV a, "Length"): return new IntV(Sym.Const(a.Items.Count));
            case (RepeatV r, "Length"): return new IntV(r.Count);
            case (ModuleV mod, _):
                if (mod.Env.TryGetValue(m.Member, out var v)) return v;
                break;
        }
        throw Fail("KILN0104", m.Loc, $"'{m.Text}': {target.Describe} has no member '{m.Member}' that Kiln can compile");
    }

    private Val Binary(string op, Val a, Val b, BinaryExpr e)
    {
        if (a is TensorV || b is TensorV) return new TensorV(WithSrc(e, () => TensorBinary(op, a, b, e)));
        if (op is "&&" or "||")
        {
            // Symbolic when a side depends on hyperparameters: decided when the model is constructed.
            var x = Truth(Traced(a, e.Left, "a condition")); var y = Truth(Traced(b, e.Right, "a condition"));
            return new IntV(Sym.Compare(x + y, op == "&&" ? "==" : ">=", op == "&&" ? Sym.Const(2) : Sym.One));
        }
        if (a is IntV ia && b is IntV ib)
        {
            switch (op)
            {
                case "+": return new IntV(ia.Value + ib.Value);
                case "-": return new IntV(ia.Value - ib.Value);
                case "*": return new IntV(ia.Value * ib.Value);
                case "/":
                    if (ib.Value.TryConst(out var dv) && dv == 0) throw Fail("KILN0101", e.Loc, "Division by zero", e.Text);
                    var q = Sym.Div(ia.Value, ib.Value);
                    if (!(q * ib.Value).Equals(ia.Value))
                    {
                        _g.Src = Src(e.Loc, e.Text);
                        if (ia.Value.IsConst && ib.Value.IsConst) return new IntV(q);
                        _g.RequireDivisible(ia.Value, ib.Value, $"'{e.Text}': {e.Left.Text} must be divisible by {e.Right.Text}");
                    }
                    return new IntV(q);
                case "%":
                    return new IntV(Sym.Const(Concretize(ia.Value, e.Left, "a remainder") % Math.Max(1, Concretize(ib.Value, e.Right, "a remainder"))));
                default:
                    var cmp = Sym.Compare(ia.Value, ib.Value);
                    // Unknown until the sizes are bound: a symbolic comparison (an if on it compiles both branches;
                    // anything that must know it now fixes it at the defaults and checks them at construction).
                    if (cmp == SymCompare.Unknown) return new IntV(Sym.Compare(ia.Value, op, ib.Value));
                    bool r = op switch
                    {
                        "<" => cmp == SymCompare.Less, ">" => cmp == SymCompare.Greater, "<=" => cmp != SymCompare.Greater,
                        ">=" => cmp != SymCompare.Less, "==" => cmp == SymCompare.Equal, _ => cmp != SymCompare.Equal,
                    };
                    return new IntV(Sym.Const(r ? 1 : 0));
            }
        }
        var fa = ToScalar(a, e.Left); var fb = ToScalar(b, e.Right);
        switch (op)
        {
            case "+": return new FloatV(fa + fb);
            case "-": return new FloatV(fa - fb);
            case "*": return new FloatV(fa * fb);
            case "/": return new FloatV(fa / fb);
        }
        if (fa.IsConst && fb.IsConst)
        {
            double x = fa.Value, y = fb.Value;
            bool r = op switch { "<" => x < y, ">" => x > y, "<=" => x <= y, ">=" => x >= y, "==" => x == y, "!=" => x != y, _ => false };
            return new IntV(Sym.Const(r ? 1 : 0));
        }
        throw Fail("KILN0108", e.Loc, e.Text, WhyNotKnown(new FloatV(fa.IsConst ? fb : fa)));
    }

    private static Scalar ToScalar(Val v, Expr e) => v switch
    {
        FloatV f => f.Value,
        IntV i => Scalar.FromSym(i.Value),
        _ => throw Fail("KILN0106", e.Loc, e.Text, v.Describe, "a number"),
    };

    private int TensorBinary(string op, Val a, Val b, BinaryExpr e)
    {
        if (op is not ("+" or "-" or "*" or "/"))
            throw Fail("KILN0101", e.Loc, $"The operator '{op}' on tensors (use Ops.Greater/Less/Equal for masks)", e.Text);
        if (a is TensorV ta && b is TensorV tb)
        {
            RequireFloatTensor(ta.Node, e.Left, "'" + op + "'"); RequireFloatTensor(tb.Node, e.Right, "'" + op + "'");
            return _g.Binary(op switch { "+" => Op.Add, "-" => Op.Sub, "*" => Op.Mul, _ => Op.Div }, ta.Node, tb.Node);
        }
        if (a is TensorV t1)
        {
            RequireFloatTensor(t1.Node, e.Left, "'" + op + "'");
            var s = ToScalar(b, e.Right);
            return op switch
            {
                "+" => _g.Add(Op.AddScalar, new[] { t1.Node }, new ScalarAttr(s)),
                "-" => _g.Add(Op.AddScalar, new[] { t1.Node }, new ScalarAttr(-s)),
                "*" => _g.Scale(t1.Node, s),
                _ => _g.Scale(t1.Node, Scalar.Const(1) / s),
            };
        }
        var t2 = ((TensorV)b).Node;
        RequireFloatTensor(t2, e.Right, "'" + op + "'");
        var sa = ToScalar(a, e.Left);
        return op switch
        {
            "+" => _g.Add(Op.AddScalar, new[] { t2 }, new ScalarAttr(sa)),
            "-" => _g.Add(Op.AddScalar, new[] { _g.Unary(Op.Neg, t2) }, new ScalarAttr(sa)),
            "*" => _g.Scale(t2, sa),
            _ => _g.Binary(Op.Div, _g.Fill(sa, Array.Empty<Sym>()), t2),
        };
    }

    private Val CallExpression(CallExpr c, Scope s)
    {
        switch (c.Kind)
        {
            case CallKind.Op: return OpCall(c, s);
            case CallKind.TensorMember:
            {
                var t = AsTensorVal(Eval(c.Receiver!, s), c.Receiver!);
                var n = _g[t];
                if (c.Method == "Dim") return new IntV(n.Shape[Axis(Eval(c.Args[0], s), c.Args[0], n.Rank)]);
                throw Fail("KILN0102", c.Loc, "Tensor." + c.Method);
            }
            case CallKind.Layer:
            {
                var recv = Eval(c.Receiver!, s);
                if (recv is not LayerV l) throw Fail("KILN0106", c.Receiver!.Loc, c.Receiver!.Text, recv.Describe, "a layer");
                return ApplyLayer(l, Eval(c.Args[0], s), c);
            }
            case CallKind.Module:
            case CallKind.Self:
            {
                var target = c.Kind == CallKind.Self ? s.Module : Eval(c.Receiver!, s) as ModuleV
                    ?? throw Fail("KILN0106", c.Receiver!.Loc, c.Receiver!.Text, "not a module", "a module");
                var method = target.Spec.Methods.FirstOrDefault(m => m.Name == c.Method)
                    ?? throw Fail("KILN0007", c.Loc, target.Spec.Name, c.Method);
                var args = c.Args.Select(a => Eval(a, s)).ToList();
                return Call(target, method, args, c.Loc, c.Args.Select(a => a.Loc).ToList());
            }
            case CallKind.Math when c.Method == "RoundUp":
            {
                // Module.RoundUp(value, multiple): the one place a size divides with rounding (a floor quotient), where '/'
                // on sizes demands exact division.
                var value = Traced(Eval(c.Args[0], s), c.Args[0], "the value to round up");
                var multiple = Traced(Eval(c.Args[1], s), c.Args[1], "the multiple");
                if (multiple.TryConst(out var m) && m <= 0) throw Fail("KILN0018", c.Args[1].Loc, $"Module.RoundUp rounds to a multiple of {m}; the multiple must be positive");
                return new IntV(Sym.Div(value + multiple - Sym.One, multiple) * multiple);
            }
            case CallKind.Math:
            {
                var args = c.Args.Select((a, i) => ToScalar(Eval(a, s), c.Args[i])).ToList();
                var argVals = c.Args.Select(a => Eval(a, s)).ToList();
                switch (c.Method)
                {
                    case "Sqrt": return new FloatV(Scalar.Sqrt(args[0]));
                    case "Max" or "Min" when argVals.All(v => v is IntV):
                    {
                        long x = Concretize(((IntV)argVals[0]).Value, c.Args[0], c.Method), y = Concretize(((IntV)argVals[1]).Value, c.Args[1], c.Method);
                        return new IntV(Sym.Const(c.Method == "Max" ? Math.Max(x, y) : Math.Min(x, y)));
                    }
                }
                if (args.All(a => a.IsConst))
                {
                    var v = args.Select(a => a.Value).ToList();
                    return new FloatV(Scalar.Const(c.Method switch
                    {
                        "Max" => Math.Max(v[0], v[1]), "Min" => Math.Min(v[0], v[1]), "Abs" => Math.Abs(v[0]),
                        "Pow" => Math.Pow(v[0], v[1]), "Exp" => Math.Exp(v[0]), _ => Math.Log(v[0]),
                    }));
                }
                throw Fail("KILN0012", c.Loc, c.Text, "Math." + c.Method + " of a hyperparameter is only supported for Sqrt (and Max/Min of integers)");
            }
            case CallKind.Parameter:
                throw Fail("KILN0017", c.Loc, $"'{c.Text}' declares a parameter outside a field initializer");
            case CallKind.Repeat:
            {
                if (_instantiating == 0) throw Fail("KILN0021", c.Loc, c.Text, "repeated modules", "Module[]");
                var count = Traced(Eval(c.Args[0], s), c.Args[0], "the repeat count");
                if (count.TryConst(out var negative) && negative < 0)
                    throw Fail("KILN0018", c.Args[0].Loc, $"Module.Repeat creates {negative} modules; the count must be zero or more");
                if (c.Args[1] is not LambdaExpr lam) throw Fail("KILN0101", c.Args[1].Loc, "A factory that is not a lambda", c.Args[1].Text);
                // Same-shaped blocks (a factory that ignores its index) become one template with stacked parameters,
                // unless a loop over them could not be a region, or they repeat inside another repeated block.
                if (!Mentions(lam.Body, lam.Parameter) && _stacking is null && !_unroll.Contains(s.Path))
                {
                    _stacking = count;
                    try
                    {
                        var inner = new Scope(s.Module, new Dictionary<string, Val>(s.Locals) { [lam.Parameter] = new IntV(Sym.Zero) }, s.Path);
                        var template = Eval(lam.Body, inner);
                        bool recompute = (_field?.Recompute ?? false) || (template is ModuleV tm && tm.Spec.Recompute);
                        return new RepeatV(count, template, s.Path, recompute);
                    }
                    finally { _stacking = null; }
                }
                var n = Concretize(count, c.Args[0], "how many modules Module.Repeat creates");
                var items = new List<Val>();
                var basePath = s.Path;
                for (long i = 0; i < n; i++)
                {
                    s.Path = basePath + "." + i.ToString(CultureInfo.InvariantCulture);
                    var inner = new Scope(s.Module, new Dictionary<string, Val>(s.Locals) { [lam.Parameter] = new IntV(Sym.Const(i)) }, s.Path);
                    items.Add(Eval(lam.Body, inner));
                }
                s.Path = basePath;
                return new ArrayV(items);
            }
        }
        throw Fail("KILN0102", c.Loc, c.Text);
    }

    private int AsTensor(Val v, Expr e, string what) => v is TensorV t ? t.Node : throw Fail("KILN0106", e.Loc, e.Text, v.Describe, what + " (a tensor)");
    private static int AsTensorVal(Val v, Expr e) => v is TensorV t ? t.Node : throw Fail("KILN0106", e.Loc, e.Text, v.Describe, "a tensor");

    private int Axis(Val v, Expr e, int rank)
    {
        if (v is not IntV i || !i.Value.TryConst(out var a))
            throw Fail("KILN1008", e.Loc, $"the axis '{e.Text}' must be a build-time constant");
        var ax = a < 0 ? a + rank : a;
        if (ax < 0 || ax >= rank) throw Fail("KILN1003", e.Loc, $"axis {a} is out of range for a rank-{rank} tensor");
        return (int)ax;
    }

    private Val OpCall(CallExpr c, Scope s)
    {
        var call = new LoweredCall(this, c, c.Args.Select(a => Eval(a, s)).ToList());
        return new TensorV(WithSrc(c, () => DslFunctions.Lower(call) ?? throw Fail("KILN0102", c.Loc, "Ops." + c.Method)));
    }

    /// <summary>An <c>Ops</c> call of model code, with misuse of an argument reported at that argument.</summary>
    private sealed class LoweredCall : DslCall
    {
        private readonly Lowerer _l;
        private readonly CallExpr _c;
        private readonly List<Val> _args;

        public LoweredCall(Lowerer l, CallExpr c, List<Val> args) { _l = l; _c = c; _args = args; }

        public override GraphBuilder G => _l._g;
        public override string Name => _c.Method;
        public override int Count => _args.Count;
        public override bool IsTensor(int i) => _args[i] is TensorV;
        public override int Tensor(int i, string what = "an operand") => _l.AsTensor(_args[i], _c.Args[i], what);
        public override int Float(int i) => _l.RequireFloatTensor(Tensor(i), _c.Args[i], "Ops." + _c.Method);
        public override int Axis(int i, int rank) => _l.Axis(_args[i], _c.Args[i], rank);
        public override long Constant(int i, string what) => _l.Concretize(Traced(_args[i], _c.Args[i], what), _c.Args[i], what);
        public override Sym Size(int i, string what) => Traced(_args[i], _c.Args[i], what);
        public override Scalar Number(int i) => ToScalar(_args[i], _c.Args[i]);

        public override IReadOnlyList<Sym> Sizes(int i, string what) =>
            (_args[i] as ArrayV ?? throw Lowerer.Fail("KILN1008", _c.Args[i].Loc, $"{_c.Method} needs the {what} as separate arguments or an array literal"))
                .Items.Select(v => Traced(v, _c.Args[i], "a dimension")).ToList();

        public override IReadOnlyList<int> Axes(int i, int rank, string what) =>
            (_args[i] as ArrayV ?? throw Lowerer.Fail("KILN1008", _c.Args[i].Loc, $"{_c.Method} needs the {what} as separate arguments or an array literal"))
                .Items.Select(v => _l.Axis(v, _c.Args[i], rank)).ToList();

        public override IReadOnlyList<int> Tensors(int i, string what) =>
            _args[i] is ArrayV a ? a.Items.Select(v => _l.AsTensor(v, _c.Args[i], what)).ToList() : new List<int>();

        public override Exception Fail(string id, string message) => Lowerer.Fail(id, _c.Loc, message);
    }
}

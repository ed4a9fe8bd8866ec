using System;
using System.Collections.Generic;
using System.Linq;
using Kiln.Generators.Ir;
using Kiln.Generators.Passes;
using Kiln.Generators.Tests.Reference;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// Checks every gradient rule of the IR: a tiny graph per op (or a small lowered model for composites)
/// is reduced to a scalar loss Σ op(x)·W with a fixed random W, differentiated by <see cref="Autodiff"/>,
/// evaluated in float64 by the reference interpreter and compared with central finite differences of
/// the forward loss. Step h = 1e-6·max(1, |θ|); tolerance |g − fd| ≤ 1e-6 + 1e-5·|g|. StopGradient nodes
/// are held at their unperturbed values while differencing, which is what stopping the gradient means.
/// </summary>
public class GradientCheckTests
{
    private const double AbsTol = 1e-6, RelTol = 1e-5;

    private readonly ITestOutputHelper _out;
    public GradientCheckTests(ITestOutputHelper output) => _out = output;

    public static IEnumerable<object[]> CaseNames => GradCases.All.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Gradient_matches_central_finite_differences(string op)
    {
        var seed = TestSeeds.For(op);
        var why = $"{op}: {TestSeeds.Describe(op)}";
        var c = GradCases.All[op](new Random(seed));
        _out.WriteLine(why);
        CheckGradients(c, why);
    }

    [Fact]
    public void Every_op_of_the_IR_appears_in_some_gradient_case()
    {
        var seen = new HashSet<Op>();
        foreach (var (name, make) in GradCases.All)
        {
            var c = make(new Random(TestSeeds.For(name)));
            void See(Graph g)
            {
                foreach (var n in g.Nodes)
                {
                    seen.Add(n.Op);
                    if (n.Attr is LoopAttr loop) See(loop.Body);
                }
            }
            See(c.Forward);
            See(Autodiff.Run(c.Forward));
        }
        var missing = Enum.GetValues(typeof(Op)).Cast<Op>().Where(o => !seen.Contains(o)).ToList();
        Assert.True(missing.Count == 0, "ops no gradient case exercises: " + string.Join(", ", missing));
    }

    [Fact]
    public void Finite_difference_check_detects_a_wrong_gradient_rule()
    {
        // The harness itself must be able to fail: corrupt the autodiff graph's gradient by scaling it.
        var c = GradCases.All["Tanh"](new Random(TestSeeds.For("Tanh")));
        var train = Autodiff.Run(c.Forward);
        var gradOut = train.Outputs.First(o => o.Role == OutputRole.ParamGrad);
        var b = new GraphBuilder();
        foreach (var n in train.Nodes) b.Import(n);
        var wrong = b.Scale(gradOut.Node, 1.01);
        var outputs = train.Outputs.Select(o => o == gradOut ? o with { Node = wrong } : o).ToList();
        var corrupted = train.WithNodes(b.Nodes.ToList(), outputs);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => CompareWithFiniteDifferences(c, corrupted, "corrupted Tanh"));
    }

    internal static void CheckGradients(GradCase c, string why)
    {
        Verifier.Verify(c.Forward, "gradient-case construction");
        var train = Autodiff.Run(c.Forward);
        Verifier.Verify(train, "autodiff");
        CompareWithFiniteDifferences(c, train, why);

        // Simplify (StopGradient removal, CSE, dead-code elimination) must not change loss or gradients.
        var simplified = Simplify.Run(train);
        Verifier.Verify(simplified, "simplify");
        var a = ReferenceInterpreter.Run(train, c.Run);
        var s = ReferenceInterpreter.Run(simplified, c.Run);
        Assert.True(Math.Abs(a.Loss!.Value - s.Loss!.Value) <= 1e-12 * (1 + Math.Abs(a.Loss.Value)), $"{why}: simplify changed the loss {a.Loss} → {s.Loss}");
        for (int p = 0; p < train.Parameters.Count; p++)
        {
            var ga = a.ParamGrads[p]; var gs = s.ParamGrads[p];
            Assert.True((ga is null) == (gs is null), $"{why}: simplify changed whether {train.Parameters[p].Name} has a gradient");
            if (ga is null) continue;
            for (int i = 0; i < ga.Length; i++)
                Assert.True(Math.Abs(ga[i] - gs![i]) <= 1e-12 * (1 + Math.Abs(ga[i])), $"{why}: simplify changed grad({train.Parameters[p].Name})[{i}] {ga[i]} → {gs[i]}");
        }
    }

    private static void CompareWithFiniteDifferences(GradCase c, Graph train, string why)
    {
        var res = ReferenceInterpreter.Run(train, c.Run);
        var fwd = ReferenceInterpreter.Run(c.Forward, c.Run);
        Assert.True(Math.Abs(res.Loss!.Value - fwd.Loss!.Value) <= 1e-12 * (1 + Math.Abs(fwd.Loss.Value)), $"{why}: autodiff changed the loss");

        var fdRun = c.Run.Clone();
        foreach (var n in c.Forward.Nodes.Where(n => n.Op == Op.StopGradient)) fdRun.Frozen[n.Id] = fwd.Values[n.Id];

        double maxGrad = 0;
        for (int p = 0; p < c.Forward.Parameters.Count; p++)
        {
            var name = c.Forward.Parameters[p].Name;
            var theta = c.Run.Params[p];
            Assert.True(res.ParamGrads[p] is not null, $"{why}: autodiff produced no gradient for {name}");
            var g = res.ParamGrads[p]!;
            Assert.Equal(theta.Length, g.Length);
            var values = c.Run.Params.Select(v => (double[])v.Clone()).ToArray();
            fdRun.Params = values;
            for (int j = 0; j < theta.Length; j++)
            {
                double h = 1e-6 * Math.Max(1, Math.Abs(theta[j]));
                values[p][j] = theta[j] + h;
                double up = ReferenceInterpreter.Run(c.Forward, fdRun).Loss!.Value;
                values[p][j] = theta[j] - h;
                double down = ReferenceInterpreter.Run(c.Forward, fdRun).Loss!.Value;
                values[p][j] = theta[j];
                double fd = (up - down) / (2 * h);
                Assert.True(Math.Abs(g[j] - fd) <= AbsTol + RelTol * Math.Abs(g[j]),
                    $"{why}: grad({name})[{j}] autodiff {g[j]:R} vs finite difference {fd:R} (θ = {theta[j]:R})");
                maxGrad = Math.Max(maxGrad, Math.Abs(g[j]));
            }
        }
        Assert.True(maxGrad > 1e-3, $"{why}: every gradient is ~0 (max {maxGrad}); the case checks nothing");
    }
}

/// <summary>A forward graph whose single output is a scalar loss, and the values to evaluate it with.</summary>
internal sealed class GradCase
{
    public GradCase(Graph forward, ReferenceRun run) { Forward = forward; Run = run; }
    public Graph Forward { get; }
    public ReferenceRun Run { get; }
}

/// <summary>Builds a tiny graph of parameters and inputs, then closes it with loss = Σ y·W.</summary>
internal sealed class TinyGraph
{
    private readonly List<ParamDecl> _params = new();
    private readonly List<double[]> _values = new();
    private readonly List<InputDecl> _inputs = new();

    public TinyGraph(Random rng) => Rng = rng;

    public GraphBuilder G { get; } = new();
    public ReferenceRun Run { get; } = new();
    public Random Rng { get; }

    public static Sym[] Dims(params object[] dims) => dims.Select(d => d switch
    {
        int i => Sym.Const(i),
        long l => Sym.Const(l),
        string s => Sym.Var(s),
        Sym s => s,
        _ => throw new ArgumentException("dimension " + d),
    }).ToArray();

    public long[] Eval(Sym[] shape) => shape.Select(d => d.Eval(n => Run.Symbols[n])).ToArray();

    // Value generators.
    public static double Any(Random r) => r.NextDouble() * 3 - 1.5;
    public static double Positive(Random r) => 0.5 + r.NextDouble() * 1.5;
    public static double AwayFromZero(Random r) => (0.2 + r.NextDouble()) * (r.Next(2) == 0 ? -1 : 1);

    /// <summary>Values that are pairwise at least 0.05 apart (no ties for max).</summary>
    public static double[] Distinct(Random r, long n)
    {
        var v = Enumerable.Range(0, checked((int)n)).Select(i => i * 0.1 - n * 0.05 + r.NextDouble() * 0.05).ToArray();
        for (int i = v.Length - 1; i > 0; i--) { int j = r.Next(i + 1); (v[i], v[j]) = (v[j], v[i]); }
        return v;
    }

    public int Param(string name, Sym[] shape, Func<Random, double>? gen = null) =>
        ParamValues(name, shape, n => Enumerable.Range(0, checked((int)n)).Select(_ => (gen ?? Any)(Rng)).ToArray());

    public int Param(string name, params object[] dims) => Param(name, Dims(dims));

    public int ParamValues(string name, Sym[] shape, Func<long, double[]> values)
    {
        int idx = _params.Count;
        _params.Add(new ParamDecl(name, shape, new InitRule("normal", Scalar.Const(1)), false, SourceRef.None));
        _values.Add(values(ReferenceInterpreter.Numel(Eval(shape))));
        return G.Add(Op.Param, Array.Empty<int>(), new ParamAttr(idx, name), shape);
    }

    public int Input(string name, Sym[] shape, Func<Random, double>? gen = null)
    {
        var s = Eval(shape);
        var data = Enumerable.Range(0, checked((int)ReferenceInterpreter.Numel(s))).Select(_ => (gen ?? Any)(Rng)).ToArray();
        return InputValues(name, shape, data);
    }

    public int InputValues(string name, Sym[] shape, double[] data)
    {
        _inputs.Add(new InputDecl(name, DType.F32, shape, shape.Select(d => d.ToString()).ToArray()));
        Run.Inputs[name] = RefTensor.Float(data, Eval(shape));
        return G.Add(Op.Input, Array.Empty<int>(), new InputAttr(name, DType.F32), shape);
    }

    public int IntInput(string name, Sym[] shape, int[] data)
    {
        _inputs.Add(new InputDecl(name, DType.I32, shape, shape.Select(d => d.ToString()).ToArray()));
        Run.Inputs[name] = RefTensor.Int(data, Eval(shape));
        return G.Add(Op.Input, Array.Empty<int>(), new InputAttr(name, DType.I32), shape);
    }

    /// <summary>loss = Σ y ⊙ W with W a random constant input of y's shape.</summary>
    public GradCase Finish(int y)
    {
        var shape = G[y].Shape;
        var w = Input("__w", shape, r => (0.5 + r.NextDouble()) * (r.Next(2) == 0 ? -1 : 1));
        var flat = G.Reshape(G.Binary(Op.Mul, y, w), new[] { Shapes.Numel(shape) });
        var loss = G.Reduce(Op.ReduceSum, flat, 0, false);
        Run.Params = _values.ToArray();
        var graph = new Graph(GraphKind.Train, G.Nodes.ToList(), new[] { new GraphOutput(OutputRole.Loss, loss, -1) }, _params.ToList(), _inputs.ToList(), G.Constraints.ToList());
        return new GradCase(graph, Run);
    }
}

/// <summary>The gradient cases, one per op or op variant.</summary>
internal static class GradCases
{
    internal const string PipelineStageSource = """
        using Kiln;
        namespace S;

        [Module]
        public partial class Block(int dim)
        {
            Linear fc = new(dim, dim);
            public Tensor Forward(Tensor x) => x + Ops.Tanh(fc.Forward(x));
        }

        [Model, Parallel(Pipeline = 2, MicroBatches = 2)]
        public partial class Staged(int dim = 3, int layers = 2)
        {
            Linear input = new(dim, dim);
            Block[] blocks = Module.Repeat(layers, _ => new Block(dim));
            [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x)
            {
                var h = input.Forward(x);
                foreach (var block in blocks) h = block.Forward(h);
                return Ops.Mean(Ops.Square(h));
            }
        }
        """;

    private static Sym[] D(params object[] dims) => TinyGraph.Dims(dims);

    public static readonly IReadOnlyDictionary<string, Func<Random, GradCase>> All = Build();

    private static Dictionary<string, Func<Random, GradCase>> Build()
    {
        var cases = new Dictionary<string, Func<Random, GradCase>>(StringComparer.Ordinal);
        void Add(string name, Func<TinyGraph, int> body) => cases.Add(name, r => { var t = new TinyGraph(r); return t.Finish(body(t)); });

        // ── unary elementwise ──
        Add("Neg", t => t.G.Unary(Op.Neg, t.Param("x", 3, 4)));
        Add("Exp", t => t.G.Unary(Op.Exp, t.Param("x", 3, 4)));
        Add("Log_of_positive", t => t.G.Unary(Op.Log, t.Param("x", D(3, 4), TinyGraph.Positive)));
        Add("Sqrt_of_positive", t => t.G.Unary(Op.Sqrt, t.Param("x", D(3, 4), TinyGraph.Positive)));
        Add("Rsqrt_of_positive", t => t.G.Unary(Op.Rsqrt, t.Param("x", D(3, 4), TinyGraph.Positive)));
        Add("Square", t => t.G.Unary(Op.Square, t.Param("x", 3, 4)));
        Add("Abs_away_from_zero", t => t.G.Unary(Op.Abs, t.Param("x", D(3, 4), TinyGraph.AwayFromZero)));
        Add("Sign_times_x", t => { var x = t.Param("x", D(3, 4), TinyGraph.AwayFromZero); return t.G.Binary(Op.Mul, t.G.Unary(Op.Sign, x), x); });
        Add("Tanh", t => t.G.Unary(Op.Tanh, t.Param("x", 3, 4)));
        Add("Sin", t => t.G.Unary(Op.Sin, t.Param("x", D(3, 4), r => r.NextDouble() * 8 - 4)));
        Add("Cos", t => t.G.Unary(Op.Cos, t.Param("x", D(3, 4), r => r.NextDouble() * 8 - 4)));
        // The reference computes in float64 and treats the cast as exact; its gradient is the identity (straight-through).
        Add("Cast", t => t.G.Unary(Op.Tanh, t.G.Unary(Op.Cast, t.Param("x", 3, 4))));
        Add("Relu_away_from_zero", t => t.G.Unary(Op.Relu, t.Param("x", D(3, 4), TinyGraph.AwayFromZero)));
        Add("Gelu", t => t.G.Unary(Op.Gelu, t.Param("x", D(3, 4), r => r.NextDouble() * 8 - 4)));
        Add("Sigmoid", t => t.G.Unary(Op.Sigmoid, t.Param("x", 3, 4)));
        Add("Scale", t => t.G.Add(Op.Scale, new[] { t.Param("x", 3, 4) }, new ScalarAttr(Scalar.Const(-1.75))));
        Add("Scale_by_float_hyperparameter_expression", t =>
        {
            t.Run.FloatHypers["alpha"] = 0.3; t.Run.Symbols["n"] = 4;
            return t.G.Add(Op.Scale, new[] { t.Param("x", 3, "n") }, new ScalarAttr(Scalar.Hyper("alpha") * Scalar.FromSym(Sym.Var("n")) - Scalar.Sqrt(Scalar.Hyper("alpha"))));
        });
        Add("AddScalar", t => t.G.Unary(Op.Square, t.G.AddScalar(t.Param("x", 3, 4), 0.7)));
        Add("PowScalar_cube", t => t.G.Add(Op.PowScalar, new[] { t.Param("x", 3, 4) }, new ScalarAttr(Scalar.Const(3))));
        Add("PowScalar_fractional_of_positive", t => t.G.Add(Op.PowScalar, new[] { t.Param("x", D(3, 4), TinyGraph.Positive) }, new ScalarAttr(Scalar.Const(1.5))));
        Add("PowScalar_negative_of_positive", t => t.G.Add(Op.PowScalar, new[] { t.Param("x", D(3, 4), TinyGraph.Positive) }, new ScalarAttr(Scalar.Const(-0.5))));
        Add("PowScalar_hyperparameter_exponent", t =>
        {
            t.Run.FloatHypers["p"] = 2.5;
            return t.G.Add(Op.PowScalar, new[] { t.Param("x", D(3, 4), TinyGraph.Positive) }, new ScalarAttr(Scalar.Hyper("p")));
        });
        Add("StopGradient_blocks_one_path", t => { var x = t.Param("x", 3, 4); return t.G.Binary(Op.Mul, t.G.Unary(Op.StopGradient, x), x); });
        Add("BroadcastTo_3x1_to_2x3x4", t => t.G.BroadcastTo(t.Param("x", 3, 1), D(2, 3, 4)));
        Add("BroadcastTo_scalar", t => t.G.BroadcastTo(t.Param("x", D()), D(2, 3)));

        // ── integer inputs ──
        Add("ToFloat_scales_x", t =>
        {
            var i = t.IntInput("i", D(3, 4), Enumerable.Range(0, 12).Select(_ => t.Rng.Next(-3, 4)).ToArray());
            var x = t.Param("x", 3, 4);
            return t.G.Binary(Op.Add, t.G.Binary(Op.Mul, t.G.Add(Op.ToFloat, new[] { i }), x), x);
        });
        Add("IndexMask_masks_x", t =>
        {
            var i = t.IntInput("i", D(3, 4), Enumerable.Range(0, 12).Select(k => k % 3 == 0 ? -1 : t.Rng.Next(0, 4)).ToArray());
            return t.G.Binary(Op.Mul, t.G.Add(Op.IndexMask, new[] { i }, new IgnoreAttr(-1)), t.Param("x", 3, 4));
        });

        // ── binary elementwise with broadcasting ──
        var shapes = new (string Name, object[] A, object[] B)[]
        {
            ("same_shape", new object[] { 3, 4 }, new object[] { 3, 4 }),
            ("3x1_by_1x4", new object[] { 3, 1 }, new object[] { 1, 4 }),
            ("2x3x4_by_4", new object[] { 2, 3, 4 }, new object[] { 4 }),
            ("4_by_2x3x4", new object[] { 4 }, new object[] { 2, 3, 4 }),
            ("scalar_by_3x4", Array.Empty<object>(), new object[] { 3, 4 }),
            ("2x1x4_by_3x1", new object[] { 2, 1, 4 }, new object[] { 3, 1 }),
        };
        foreach (var op in new[] { Op.Add, Op.Sub, Op.Mul, Op.Div, Op.Maximum, Op.Minimum })
            foreach (var (sn, sa, sb) in shapes)
            {
                var o = op;
                Add($"{op}_{sn}", t =>
                {
                    var a = t.Param("a", sa);
                    var b = o == Op.Div ? t.Param("b", D(sb), TinyGraph.AwayFromZero) : t.Param("b", sb);
                    return t.G.Binary(o, a, b);
                });
            }
        foreach (var op in new[] { Op.Greater, Op.Less })
        {
            var o = op;
            Add($"{op}_mask_times_a", t =>
            {
                var a = t.Param("a", 3, 4);
                var c = t.Input("c", D(1, 4));
                return t.G.Binary(Op.Mul, t.G.Binary(o, a, c), a);
            });
        }
        Add("Equal_mask_times_a", t =>
        {
            var x = t.Input("x", D(3, 4), r => r.Next(3));
            var y = t.Input("y", D(3, 4), r => r.Next(3));
            return t.G.Binary(Op.Mul, t.G.Binary(Op.Equal, x, y), t.Param("a", 3, 4));
        });
        Add("Where_same_shape", t =>
        {
            var cond = t.Input("cond", D(3, 4), r => r.Next(2));
            return t.G.Add(Op.Where, new[] { cond, t.Param("a", 3, 4), t.Param("b", 3, 4) });
        });
        Add("Where_broadcasting_3x4_3x1_4", t =>
        {
            var cond = t.Input("cond", D(3, 4), r => r.Next(2));
            return t.G.Add(Op.Where, new[] { cond, t.Param("a", 3, 1), t.Param("b", 4) });
        });
        Add("Where_condition_broadcasts", t =>
        {
            var cond = t.Input("cond", D(2, 1, 4), r => r.Next(2));
            return t.G.Add(Op.Where, new[] { cond, t.Param("a", 2, 3, 4), t.G.Fill(0.5, D()) });
        });

        // ── reductions ──
        foreach (var op in new[] { Op.ReduceSum, Op.ReduceMax })
            for (int axis = 0; axis < 3; axis++)
                foreach (var keep in new[] { false, true })
                {
                    var (o, ax, k) = (op, axis, keep);
                    Add($"{op}_axis{axis}{(keep ? "_keepDim" : "")}", t =>
                        t.G.Reduce(o, t.ParamValues("x", D(2, 3, 4), n => TinyGraph.Distinct(t.Rng, n)), ax, k));
                }
        Add("ReduceSum_rank1_to_scalar", t => t.G.Reduce(Op.ReduceSum, t.Param("x", 5), 0, false));
        Add("ReduceMax_rank1_to_scalar", t => t.G.Reduce(Op.ReduceMax, t.ParamValues("x", D(5), n => TinyGraph.Distinct(t.Rng, n)), 0, false));
        foreach (var (name, to) in new (string, object[])[]
        {
            ("3x4", new object[] { 3, 4 }), ("3x1", new object[] { 3, 1 }), ("1x3x1", new object[] { 1, 3, 1 }),
            ("4", new object[] { 4 }), ("scalar", Array.Empty<object>()), ("2x1x4", new object[] { 2, 1, 4 }),
        })
        {
            var target = to;
            Add($"SumTo_2x3x4_to_{name}", t => t.G.SumTo(t.Param("x", 2, 3, 4), D(target)));
        }

        // ── matmul ──
        void MM(string name, object[] a, object[] b, bool ta, bool tb, Action<TinyGraph>? bind = null) =>
            Add("MatMul_" + name, t => { bind?.Invoke(t); return t.G.MatMul(t.Param("a", a), t.Param("b", b), ta, tb); });
        MM("plain_3x4_4x5", new object[] { 3, 4 }, new object[] { 4, 5 }, false, false);
        MM("transA", new object[] { 4, 3 }, new object[] { 4, 5 }, true, false);
        MM("transB", new object[] { 3, 4 }, new object[] { 5, 4 }, false, true);
        MM("transA_transB", new object[] { 4, 3 }, new object[] { 5, 4 }, true, true);
        MM("batched_2x3x4_by_rank2_4x5", new object[] { 2, 3, 4 }, new object[] { 4, 5 }, false, false);
        MM("batched_2x3x4_by_rank2_transB", new object[] { 2, 3, 4 }, new object[] { 5, 4 }, false, true);
        MM("batched_transA_by_rank2", new object[] { 2, 4, 3 }, new object[] { 4, 5 }, true, false);
        MM("batched_transA_transB_by_rank2", new object[] { 2, 4, 3 }, new object[] { 5, 4 }, true, true);
        MM("batched_2x3x4_by_2x4x5", new object[] { 2, 3, 4 }, new object[] { 2, 4, 5 }, false, false);
        MM("batched_transB_2x3x4_by_2x5x4", new object[] { 2, 3, 4 }, new object[] { 2, 5, 4 }, false, true);
        MM("batch_broadcast_2x1x3x4_by_1x2x4x5", new object[] { 2, 1, 3, 4 }, new object[] { 1, 2, 4, 5 }, false, false);
        MM("batch_broadcast_transposed_2x1x4x3_by_1x2x5x4", new object[] { 2, 1, 4, 3 }, new object[] { 1, 2, 5, 4 }, true, true);
        MM("rank2_3x4_by_batched_2x4x5", new object[] { 3, 4 }, new object[] { 2, 4, 5 }, false, false);
        MM("rank3_by_rank4_batch_broadcast", new object[] { 2, 3, 4 }, new object[] { 3, 1, 4, 2 }, false, false);
        MM("symbolic_batch_Bx3x4_by_4x2", new object[] { "B", 3, 4 }, new object[] { 4, 2 }, false, false, t => t.Run.Symbols["B"] = 3);
        MM("outer_product_3x1_by_1x4", new object[] { 3, 1 }, new object[] { 1, 4 }, false, false);

        // ── movement ──
        Add("Reshape_2x3x4_to_6x4", t => t.G.Reshape(t.Param("x", 2, 3, 4), D(6, 4)));
        Add("Reshape_to_4x1x6_then_square", t => t.G.Unary(Op.Square, t.G.Reshape(t.Param("x", 2, 3, 4), D(4, 1, 6))));
        Add("Permute_2_0_1", t => t.G.Add(Op.Permute, new[] { t.Param("x", 2, 3, 4) }, new PermuteAttr(new[] { 2, 0, 1 })));
        Add("Permute_1_0", t => t.G.Add(Op.Permute, new[] { t.Param("x", 3, 4) }, new PermuteAttr(new[] { 1, 0 })));
        Add("Permute_0_2_1_3", t => t.G.Add(Op.Permute, new[] { t.Param("x", 2, 3, 4, 2) }, new PermuteAttr(new[] { 0, 2, 1, 3 })));
        for (int axis = 0; axis < 3; axis++)
        {
            var ax = axis;
            Add($"Slice_axis{axis}", t => t.G.Add(Op.Slice, new[] { t.Param("x", 3, 4, 5) }, new SliceAttr(ax, Sym.Const(1), Sym.Const(3))));
            Add($"Pad_axis{axis}", t => t.G.Add(Op.Pad, new[] { t.Param("x", 2, 3, 4) }, new PadAttr(ax, Sym.Const(1), Sym.Const(2))));
            Add($"Concat_three_parts_axis{axis}", t =>
            {
                object[] Shape(int len) => new object[] { ax == 0 ? len : 2, ax == 1 ? len : 3, ax == 2 ? len : 2 };
                return t.G.Add(Op.Concat, new[] { t.Param("a", Shape(1)), t.Param("b", Shape(3)), t.Param("c", Shape(2)) }, new AxisAttr(ax));
            });
        }
        Add("Slice_symbolic_bounds", t =>
        {
            t.Run.Symbols["n"] = 6; t.Run.Symbols["k"] = 2;
            return t.G.Add(Op.Slice, new[] { t.Param("x", 3, "n") }, new SliceAttr(1, Sym.Var("k"), Sym.Var("n") - Sym.Const(1)));
        });
        Add("Concat_same_tensor_twice", t => { var x = t.Param("x", 2, 3); return t.G.Add(Op.Concat, new[] { x, t.G.Unary(Op.Tanh, x) }, new AxisAttr(1)); });

        // ── indexing ──
        Add("Gather_rows_with_repeats", t =>
        {
            var idx = t.IntInput("idx", D(2, 4), new[] { 0, 4, 2, 2, 1, 0, 4, 4 });
            return t.G.Add(Op.Gather, new[] { t.Param("table", 5, 3), idx });
        });
        Add("Gather_at_decode_positions", t =>
        {
            // A decode program's absolute positions (offset 2) looking up a learned position table.
            t.Run.Symbols["__decode_position"] = 2;
            var positions = t.G.Add(Op.Positions, Array.Empty<int>(), null, D(3));
            return t.G.Add(Op.Gather, new[] { t.Param("table", 6, 3), positions });
        });
        Add("PickLast_with_ignore_index", t =>
        {
            var idx = t.IntInput("idx", D(2, 3), new[] { 1, -100, 4, 0, 4, -100 });
            return t.G.Add(Op.PickLast, new[] { t.Param("x", 2, 3, 5), idx }, new IgnoreAttr(-100));
        });

        // ── fused attention (the loss reads the output columns, not the log-sum-exp column) ──
        foreach (var (label, causal, masked, tq, tk) in new[] { ("causal", true, false, 4, 4), ("full_cross", false, false, 3, 5), ("causal_cross", true, false, 5, 3), ("masked", false, true, 3, 4) })
        {
            var (cz, mz, nq, nk) = (causal, masked, tq, tk);
            Add("Attention_" + label, t =>
            {
                int q = t.Param("q", 2, 2, nq, 3), k = t.Param("k", 2, 2, nk, 3), v = t.Param("v", 2, 2, nk, 3);
                var inputs = new List<int> { q, k, v };
                if (mz) inputs.Add(t.InputValues("keep", D(2, nk), new double[] { 1, 0, 1, 1, 0, 1, 1, 0 }));
                var fused = t.G.Add(Op.Attention, inputs.ToArray(), new AttentionAttr(cz, mz));
                return t.G.Add(Op.Slice, new[] { fused }, new SliceAttr(3, Sym.Zero, Sym.Const(3)));
            });
        }

        // ── composites lowered from small models ──
        foreach (var (name, type) in CompositeModels.Cases)
        {
            var typeName = type;
            cases.Add(name, r => CompositeModels.Case(CompositeModels.Source, typeName, r));
        }

        // ── loop regions: repeated blocks, a for loop over a hyperparameter (recomputed), two carried values, an unrolled loop ──
        foreach (var type in new[] { "L.Looped", "L.IndexedFor", "L.TwoStreams", "L.UsesIndex", "L.Branches" })
        {
            var typeName = type;
            cases.Add("Loop_" + type.Substring(2), r => CompositeModels.Case(LoopTests.Source, typeName, r));
        }

        // ── a pipeline stage program (one stage: StageInput/StageOutput and their gradients pass through) ──
        cases.Add("Pipeline_stage", r => CompositeModels.Case(PipelineStageSource, "S.Staged", r));

        // ── every differentiable Ops function of tensors only, through a generated model (no case to write by hand) ──
        foreach (var fn in DslGradientModels.Functions)
        {
            var typeName = DslGradientModels.TypeName(fn);
            cases.Add("Ops." + fn, r => CompositeModels.Case(DslGradientModels.Source, typeName, r));
        }
        return cases;
    }
}

/// <summary>Small models whose lowering builds composite ops (softmax, cross-entropy, layer norm, attention, dropout).</summary>
internal static class CompositeModels
{
    public static readonly (string Name, string Type)[] Cases =
    {
        ("Softmax_last_axis", "G.SoftmaxLast"),
        ("Softmax_axis0", "G.SoftmaxFirst"),
        ("LogSoftmax", "G.LogSoftmaxModel"),
        ("CrossEntropy_with_ignored_targets", "G.CrossEntropyModel"),
        ("CrossEntropy_rank3_custom_ignore_index", "G.CrossEntropySeq"),
        ("LayerNorm_with_float_hyperparameter_eps", "G.LayerNormModel"),
        ("MseLoss", "G.MseModel"),
        ("Mean_keepDim_and_Mean_all", "G.MeanModel"),
        ("Linear_on_rank1_input", "G.VectorModel"),
        ("Attention_with_causal_mask", "G.AttentionModel"),
        ("Dropout_with_fixed_masks", "G.DropoutModel"),
        ("Pow_hyperparameter_and_scalar_division", "G.PowModel"),
        ("Max_over_axis_and_Where_constant", "G.MaxModel"),
    };

    public const string Source = """
        using System;
        using Kiln;
        namespace G;

        [Model] public partial class SoftmaxLast(int d = 3, int c = 5)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "c")] Tensor w) => Ops.Sum(Ops.Softmax(fc.Forward(x), -1) * w);
        }

        [Model] public partial class SoftmaxFirst(int d = 3, int c = 4)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "c")] Tensor w) => Ops.Sum(Ops.Softmax(fc.Forward(x), 0) * w);
        }

        [Model] public partial class LogSoftmaxModel(int d = 3, int c = 5)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "c")] Tensor w) => Ops.Sum(Ops.LogSoftmax(fc.Forward(x)) * w);
        }

        [Model] public partial class CrossEntropyModel(int d = 3, int c = 4)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B")] Tensor<int> t) => Ops.CrossEntropy(fc.Forward(x), t);
        }

        [Model] public partial class CrossEntropySeq(int d = 3, int c = 4)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "T", "d")] Tensor x, [Shape("B", "T")] Tensor<int> t) => Ops.CrossEntropy(fc.Forward(x), t, 1);
        }

        [Model] public partial class LayerNormModel(int d = 3, int c = 5, float eps = 0.01f)
        {
            Linear fc = new(d, c);
            LayerNorm ln = new(c, eps);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "c")] Tensor w) => Ops.Sum(ln.Forward(fc.Forward(x)) * w);
        }

        [Model] public partial class MseModel(int d = 3, int c = 2)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "c")] Tensor y) => Ops.MseLoss(Ops.Tanh(fc.Forward(x)), y);
        }

        [Model] public partial class MeanModel(int d = 3, int c = 4)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("c")] Tensor w)
            {
                var h = fc.Forward(x);
                var centered = h - Ops.Mean(h, 0, true);
                return Ops.Mean(Ops.Square(centered) * w) + Ops.Sum(Ops.Mean(h, -1) * 0.5f);
            }
        }

        [Model] public partial class VectorModel(int d = 4, int c = 3)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("d")] Tensor x, [Shape("c")] Tensor w) => Ops.Sum(Ops.Sigmoid(fc.Forward(x)) * w);
        }

        [Model] public partial class AttentionModel(int vocab = 5, int dim = 4)
        {
            Embedding emb = new(vocab, dim);
            Linear q = new(dim, dim, false), k = new(dim, dim, false), v = new(dim, dim);
            Linear head = new(dim, vocab);
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> tokens, [Shape("B", "T")] Tensor<int> targets)
            {
                var h = emb.Forward(tokens);
                var t = tokens.Dim(1);
                var pos = Ops.ToFloat(Ops.Arange(t));
                var allowed = Ops.Less(Ops.Reshape(pos, 1, t), Ops.Reshape(pos, t, 1) + 0.5f);
                var scores = Ops.MatMul(q.Forward(h), k.Forward(h).T) / (float)Math.Sqrt(dim);
                var att = Ops.Softmax(Ops.Where(allowed, scores, -1e9f), -1);
                var mixed = h + Ops.MatMul(att, v.Forward(h));
                return Ops.CrossEntropy(head.Forward(mixed), targets);
            }
        }

        [Model] public partial class DropoutModel(int d = 3, int c = 5)
        {
            Linear fc = new(d, c);
            Dropout drop = new(0.5f);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "c")] Tensor w) => Ops.Sum(Ops.Gelu(drop.Forward(fc.Forward(x))) * w);
        }

        [Model] public partial class PowModel(int d = 3, int c = 4, float p = 1.5f)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B", "c")] Tensor w) =>
                Ops.Sum(Ops.Pow(Ops.Abs(fc.Forward(x)) + 1f, p) * w) + Ops.Sum(2f / (Ops.Square(fc.Forward(x)) + 1f));
        }

        [Model] public partial class MaxModel(int d = 3, int c = 4)
        {
            Linear fc = new(d, c);
            [Loss] public Tensor Loss([Shape("B", "d")] Tensor x, [Shape("B")] Tensor w)
            {
                var h = fc.Forward(x);
                var m = Ops.Max(h, -1);
                return Ops.Sum(Ops.Where(Ops.Greater(m, w), m, 0.25f) + Ops.Minimum(m, w));
            }
        }
        """;

    public static GradCase Case(string source, string type, Random rng)
    {
        var spec = ModelGraphs.Spec(source, type);
        var fwd = ModelGraphs.Forward(spec, GraphKind.Train);
        var run = new ReferenceRun();
        ModelGraphs.BindDefaultHypers(spec, run);
        ModelGraphs.RandomInputs(fwd, run, rng, name => name == "T" ? 4 : 3);
        run.Params = ModelGraphs.RandomParams(fwd, run, rng);
        // Fixed masks: each element dropped (0) or kept (1/(1−p)) at random, the same in every evaluation.
        var masks = new Dictionary<(int, long), double[]>();
        var maskRng = new Random(rng.Next());
        run.Masks = (site, layer, p, shape) =>
        {
            lock (masks)
            {
                if (!masks.TryGetValue((site, layer), out var m))
                    masks[(site, layer)] = m = Enumerable.Range(0, checked((int)ReferenceInterpreter.Numel(shape))).Select(_ => maskRng.NextDouble() < p ? 0.0 : 1.0 / (1.0 - p)).ToArray();
                return m;
            }
        };
        return new GradCase(fwd, run);
    }
}

/// <summary>Known answers for the reference interpreter itself, so gradient checks do not rest on a wrong forward semantics.</summary>
public class ReferenceInterpreterTests
{
    private static Sym[] D(params object[] dims) => TinyGraph.Dims(dims);

    /// <summary>Evaluates one op applied to float inputs of the given shapes and values.</summary>
    private static RefTensor Eval(Op op, (long[] Shape, double[] Data)[] inputs, OpAttr? attr = null, Sym[]? shape = null, int[][]? intInputs = null, long[][]? intShapes = null)
    {
        var t = new TinyGraph(new Random(1));
        var ids = new List<int>();
        for (int i = 0; i < inputs.Length; i++) ids.Add(t.InputValues("f" + i, inputs[i].Shape.Select(d => Sym.Const(d)).ToArray(), inputs[i].Data));
        for (int i = 0; i < (intInputs?.Length ?? 0); i++) ids.Add(t.IntInput("i" + i, intShapes![i].Select(d => Sym.Const(d)).ToArray(), intInputs![i]));
        var y = t.G.Add(op, ids.ToArray(), attr, shape);
        var c = t.Finish(y);
        return ReferenceInterpreter.Run(c.Forward, c.Run).Values[y];
    }

    private static (long[], double[]) T(long[] shape, params double[] data) => (shape, data);

    [Fact]
    public void MatMul_plain_and_transposed_give_known_products()
    {
        var a = T(new long[] { 2, 2 }, 1, 2, 3, 4); var b = T(new long[] { 2, 2 }, 5, 6, 7, 8);
        Assert.Equal(new double[] { 19, 22, 43, 50 }, Eval(Op.MatMul, new[] { a, b }, new MatMulAttr(false, false)).Floats);
        Assert.Equal(new double[] { 26, 30, 38, 44 }, Eval(Op.MatMul, new[] { a, b }, new MatMulAttr(true, false)).Floats);
        Assert.Equal(new double[] { 17, 23, 39, 53 }, Eval(Op.MatMul, new[] { a, b }, new MatMulAttr(false, true)).Floats);
        // Batch broadcasting: [2,1,1,2] @ [1,2,2,1] → [2,2,1,1].
        var r = Eval(Op.MatMul, new[] { T(new long[] { 2, 1, 1, 2 }, 1, 2, 3, 4), T(new long[] { 1, 2, 2, 1 }, 1, 10, 100, 1000) }, new MatMulAttr(false, false));
        Assert.Equal(new long[] { 2, 2, 1, 1 }, r.Shape);
        Assert.Equal(new double[] { 21, 2100, 43, 4300 }, r.Floats);
    }

    [Fact]
    public void Movement_ops_move_the_right_elements()
    {
        var x = T(new long[] { 2, 3 }, 0, 1, 2, 3, 4, 5);
        Assert.Equal(new double[] { 0, 3, 1, 4, 2, 5 }, Eval(Op.Permute, new[] { x }, new PermuteAttr(new[] { 1, 0 })).Floats);
        Assert.Equal(new double[] { 1, 2, 4, 5 }, Eval(Op.Slice, new[] { x }, new SliceAttr(1, Sym.Const(1), Sym.Const(3))).Floats);
        Assert.Equal(new double[] { 0, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0 }, Eval(Op.Pad, new[] { x }, new PadAttr(0, Sym.One, Sym.One)).Floats);
        Assert.Equal(new double[] { 0, 1, 2, 9, 3, 4, 5, 8 }, Eval(Op.Concat, new[] { x, T(new long[] { 2, 1 }, 9, 8) }, new AxisAttr(1)).Floats);
        var p = Eval(Op.Permute, new[] { T(new long[] { 2, 3, 2 }, Enumerable.Range(0, 12).Select(i => (double)i).ToArray()) }, new PermuteAttr(new[] { 2, 0, 1 }));
        Assert.Equal(new long[] { 2, 2, 3 }, p.Shape);
        Assert.Equal(new double[] { 0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11 }, p.Floats);
    }

    [Fact]
    public void Reductions_and_broadcasts_give_known_values()
    {
        var x = T(new long[] { 2, 3 }, 1, 5, 2, -1, 0, 7);
        Assert.Equal(new double[] { 5, 7 }, Eval(Op.ReduceMax, new[] { x }, new ReduceAttr(1, false)).Floats);
        var s = Eval(Op.ReduceSum, new[] { x }, new ReduceAttr(0, true));
        Assert.Equal(new long[] { 1, 3 }, s.Shape);
        Assert.Equal(new double[] { 0, 5, 9 }, s.Floats);
        Assert.Equal(new double[] { 14 }, Eval(Op.SumTo, new[] { x }, shape: D(1, 1)).Floats);
        Assert.Equal(new double[] { 8, 6 }, Eval(Op.SumTo, new[] { x }, shape: D(2, 1)).Floats);
        Assert.Equal(new double[] { 11, 21, 31, 12, 22, 32 }, Eval(Op.Add, new[] { T(new long[] { 2, 1 }, 1, 2), T(new long[] { 3 }, 10, 20, 30) }).Floats);
        Assert.Equal(new double[] { 1, 0, 1, 0 }, Eval(Op.Where, new[] { T(new long[] { 4 }, 1, 0, -2, 0), T(new long[] { 1 }, 1), T(Array.Empty<long>(), 0) }).Floats);
    }

    [Fact]
    public void Indexing_ops_respect_indices_and_the_ignore_index()
    {
        var table = T(new long[] { 3, 2 }, 0, 1, 10, 11, 20, 21);
        Assert.Equal(new double[] { 20, 21, 0, 1, 20, 21 }, Eval(Op.Gather, new[] { table }, intInputs: new[] { new[] { 2, 0, 2 } }, intShapes: new[] { new long[] { 3 } }).Floats);
        Assert.Equal(new double[] { 2, 2, 0, 0, 4, 4 },
            Eval(Op.GatherGrad, new[] { T(new long[] { 3, 2 }, 1, 1, 4, 4, 1, 1) }, new GatherGradAttr(Sym.Const(3)), intInputs: new[] { new[] { 0, 2, 0 } }, intShapes: new[] { new long[] { 3 } }).Floats);
        var logits = T(new long[] { 3, 2 }, 1, 2, 3, 4, 5, 6);
        Assert.Equal(new double[] { 2, 0, 5 }, Eval(Op.PickLast, new[] { logits }, new IgnoreAttr(-100), intInputs: new[] { new[] { 1, -100, 0 } }, intShapes: new[] { new long[] { 3 } }).Floats);
        Assert.Equal(new double[] { 0, 7, 0, 8, 9, 0 },
            Eval(Op.PickLastGrad, new[] { T(new long[] { 3 }, 7, 8, 9) }, new PickGradAttr(-1, Sym.Const(2)), intInputs: new[] { new[] { 1, 1, 0 } }, intShapes: new[] { new long[] { 3 } }).Floats);
        Assert.Equal(new double[] { 0, 0, 0, 0, 9, 0 },
            Eval(Op.PickLastGrad, new[] { T(new long[] { 3 }, 7, 8, 9) }, new PickGradAttr(1, Sym.Const(2)), intInputs: new[] { new[] { 1, 1, 0 } }, intShapes: new[] { new long[] { 3 } }).Floats);
        Assert.Equal(new double[] { 1, 0, 1 }, Eval(Op.IndexMask, Array.Empty<(long[], double[])>(), new IgnoreAttr(5), intInputs: new[] { new[] { 0, 5, -1 } }, intShapes: new[] { new long[] { 3 } }).Floats);
    }

    [Fact]
    public void Softplus_is_finite_for_large_inputs_and_its_gradient_is_the_sigmoid_even_at_zero()
    {
        const string source = """
            using Kiln;
            namespace S;
            [Model] public partial class SoftplusModel(int d = 1)
            {
                Linear fc = new(d, 1, false);
                [Loss] public Tensor Loss([Shape("B", "d")] Tensor x) => Ops.Sum(Ops.Softplus(fc.Forward(x)));
            }
            """;
        var train = ModelGraphs.Train(ModelGraphs.Spec(source, "S.SoftplusModel"));
        var xs = new[] { -100.0, -1, 0, 1, 100 };
        var run = new ReferenceRun { Params = new[] { new[] { 1.0 } } };
        run.Symbols["d"] = 1;
        run.Inputs["x"] = RefTensor.Float(xs, xs.Length, 1);
        var r = ReferenceInterpreter.Run(train, run);
        double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));
        // softplus(±100) = 100 + 3.7e-44 and 3.7e-44: no overflow, no NaN.
        Assert.Equal(Math.Log(1 + Math.Exp(-100)) + Math.Log(1 + Math.Exp(-1)) + Math.Log(2) + Math.Log(1 + Math.E) + 100, r.Loss!.Value, 12);
        // d/dw Σ softplus(w·x) = Σ σ(w·x)·x.
        Assert.Equal(xs.Sum(v => Sigmoid(v) * v), r.ParamGrads[0]![0], 12);
        // At argument 0 (w = 0, x = 1) the slope is σ(0) = ½, not the 0 that max(x, 0) + log(1 + e^−|x|) would give.
        run.Params = new[] { new[] { 0.0 } };
        run.Inputs["x"] = RefTensor.Float(new[] { 1.0 }, 1, 1);
        Assert.Equal(0.5, ReferenceInterpreter.Run(train, run).ParamGrads[0]![0], 15);
    }

    [Fact]
    public void Gelu_and_its_derivative_match_known_values()
    {
        Assert.Equal(0.8411919906082768, ReferenceInterpreter.Gelu(1), 12);
        Assert.Equal(-0.0036373920817729943, ReferenceInterpreter.Gelu(-3), 12);
        foreach (var x in new[] { -3.0, -1.2, -0.3, 0, 0.4, 1, 2.5 })
        {
            double h = 1e-5, fd = (ReferenceInterpreter.Gelu(x + h) - ReferenceInterpreter.Gelu(x - h)) / (2 * h);
            Assert.Equal(fd, ReferenceInterpreter.GeluDerivative(x), 8);
        }
    }

    [Fact]
    public void Dropout_masks_come_from_the_provider_only_when_training()
    {
        var t = new TinyGraph(new Random(1));
        var m = t.G.Add(Op.DropoutMask, Array.Empty<int>(), new DropoutAttr(3, Scalar.Const(0.5)), D(2, 2));
        var c = t.Finish(m);
        c.Run.Masks = (site, layer, p, shape) => { Assert.Equal(3, site); Assert.Equal(0, layer); Assert.Equal(0.5, p); return new double[] { 2, 0, 0, 2 }; };
        Assert.Equal(new double[] { 2, 0, 0, 2 }, ReferenceInterpreter.Run(c.Forward, c.Run).Values[m].Floats);
        c.Run.Training = false;
        Assert.Equal(new double[] { 1, 1, 1, 1 }, ReferenceInterpreter.Run(c.Forward, c.Run).Values[m].Floats);
    }

    [Fact]
    public void Unknown_ops_and_wrong_declared_shapes_are_rejected()
    {
        var t = new TinyGraph(new Random(1));
        var x = t.Param("x", 2, 2);
        var c = t.Finish(x);
        var bogus = new Node(999, (Op)12345, new[] { x }, DType.F32, D(2, 2));
        var g = new Graph(GraphKind.Train, c.Forward.Nodes.Append(bogus).ToList(), c.Forward.Outputs, c.Forward.Parameters, c.Forward.Inputs, c.Forward.Constraints);
        Assert.Throws<NotSupportedException>(() => ReferenceInterpreter.Run(g, c.Run));

        var wrong = new Node(999, Op.Neg, new[] { x }, DType.F32, D(4));
        var g2 = new Graph(GraphKind.Train, c.Forward.Nodes.Append(wrong).ToList(), c.Forward.Outputs, c.Forward.Parameters, c.Forward.Inputs, c.Forward.Constraints);
        Assert.Throws<InvalidOperationException>(() => ReferenceInterpreter.Run(g2, c.Run));
    }
}

/// <summary>
/// A model per <c>Ops</c> function whose parameters are all float tensors and through which a gradient flows
/// (primitive or composite): loss = Σ F(σ(W₁x) + ½, σ(W₂x) + ½)·w. Arguments lie in (½, 1½), inside every such
/// function's domain (log, sqrt, division) and away from kinks. A new function of that shape is checked without a
/// hand-written case; one that cannot be generated this way needs a case in <see cref="CompositeModels"/>.
/// </summary>
internal static class DslGradientModels
{
    /// <summary>Functions that take float tensors but whose operands must have other shapes than [B, c] each.</summary>
    private static readonly string[] Excluded = { "MatMul" };

    public static IReadOnlyList<string> Functions { get; } = typeof(Kiln.Ops).GetMethods(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(m => m.ReturnType == typeof(Kiln.Tensor) && m.GetParameters().Length is 1 or 2 && m.GetParameters().All(p => p.ParameterType == typeof(Kiln.Tensor)))
        .Select(m => m.Name).Distinct().Where(n => !Excluded.Contains(n))
        .Where(n => DslFunctions.Primitive(n) is not { Differentiable: false })
        .OrderBy(n => n, StringComparer.Ordinal).ToList();

    public static string TypeName(string fn) => "D.Auto" + fn;

    public static string Source { get; } = BuildSource();

    private static string BuildSource()
    {
        var sb = new System.Text.StringBuilder("using Kiln;\nnamespace D;\n");
        foreach (var fn in Functions)
        {
            int arity = typeof(Kiln.Ops).GetMethods().First(m => m.Name == fn && m.GetParameters().All(p => p.ParameterType == typeof(Kiln.Tensor))).GetParameters().Length;
            var args = arity == 1 ? "Ops.Sigmoid(a.Forward(x)) + 0.5f" : "Ops.Sigmoid(a.Forward(x)) + 0.5f, Ops.Sigmoid(b.Forward(x)) + 0.5f";
            sb.Append($"[Model] public partial class Auto{fn}(int d = 3, int c = 4) {{ Linear a = new(d, c){(arity == 2 ? ", b = new(d, c)" : "")}; ")
              .Append($"[Loss] public Tensor Loss([Shape(\"B\", \"d\")] Tensor x, [Shape(\"B\", \"c\")] Tensor w) => Ops.Sum(Ops.{fn}({args}) * w); }}\n");
        }
        return sb.ToString();
    }
}

using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Text;
using Kiln.Generators.Ir;
using Kiln.Generators.Passes;
using Kiln.Generators.Tests.Reference;
using Kiln.Runtime;
using Kiln.Runtime.Cpu;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>
/// Runs generated CPU programs (fp32) on random parameters and inputs and compares the loss, every
/// gradient, EvalLoss and Forward with the float64 reference interpreter run on an independently lowered
/// graph (lowering → shape inference → autodiff; no simplify, fusion or memory plan). Tolerance per
/// element: |fp32 − fp64| ≤ 1e-4 + 1e-3·max(|fp64|, ‖fp64 tensor‖∞ / 10).
/// </summary>
public class CompiledVsReferenceTests
{
    private readonly ITestOutputHelper _out;
    public CompiledVsReferenceTests(ITestOutputHelper output)
    {
        _out = output;
        // Results do not depend on how rows are split across threads, so lowering the threshold for every
        // test is harmless and makes the larger models exercise the multi-threaded kernel paths.
        Kiln.Runtime.Cpu.KilnParallel.MinParallelElements = 1 << 12;
    }

    private static readonly Lazy<Assembly> Models = new(() => GeneratorHarness.Build(HandWritten.Source));

    public static IEnumerable<object[]> ModelNames => HandWritten.Types.Select(t => new object[] { t });

    [Theory]
    [MemberData(nameof(ModelNames))]
    public void Compiled_program_matches_reference_loss_gradients_eval_and_forward(string model)
    {
        var why = $"{model}: {TestSeeds.Describe(model)}";
        _out.WriteLine(why);
        CompiledCheck.Run(Models.Value, HandWritten.Source, model, new Random(TestSeeds.For(model)), why, _out, HandWritten.Inputs(model), HandWritten.Sizes(model));
    }

    public static IEnumerable<object[]> NonDefault => HandWritten.NonDefaultHypers.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(NonDefault))]
    public void Compiled_program_with_non_default_hyperparameters_matches_reference(string model)
    {
        var hypers = HandWritten.NonDefaultHypers[model];
        var why = $"{model}({string.Join(", ", hypers.Select(kv => kv.Key + ": " + kv.Value))}): {TestSeeds.Describe(model + " hypers")}";
        _out.WriteLine(why);
        CompiledCheck.Run(Models.Value, HandWritten.Source, model, new Random(TestSeeds.For(model + " hypers")), why, _out, HandWritten.Inputs(model), null, hypers);
    }

    [Fact]
    public void Comparison_detects_a_wrong_gradient()
    {
        // The harness must be able to fail: a gradient slab perturbed in one element is reported.
        const string model = "C.Mlp";
        var asm = Models.Value;
        var program = GeneratorHarness.CreateProgram(asm, model);
        var spec = ModelGraphs.Spec(HandWritten.Source, model);
        var train = ModelGraphs.Train(spec);
        var rng = new Random(TestSeeds.For("wrong gradient"));
        var (run, batch) = CompiledCheck.Prepare(spec, train, null, program, rng, 3, 4, null);
        program.ZeroGrads();
        program.TrainStep(batch, new StepContext(1, 0, 0));
        var reference = ReferenceInterpreter.Run(train, run);
        CompiledCheck.AssertGradients("unperturbed", program, train, reference, 1);
        program.Grads[program.Parameters[0].Offset + 1] += 0.01f * (1 + Math.Abs(program.Grads[program.Parameters[0].Offset + 1]));
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => CompiledCheck.AssertGradients("perturbed", program, train, reference, 1));
    }
}

/// <summary>The comparison of one compiled model with the reference.</summary>
internal static class CompiledCheck
{
    public const double AbsTol = 1e-4, RelTol = 1e-3;

    /// <summary>Overrides the random value of some inputs (name, shape, rng → tensor or null for the default).</summary>
    public delegate RefTensor? InputOverride(string name, long[] shape, Random rng);

    /// <summary>The data sizes (B, T) and optimizer step of the default runs: two sizes, so the program rebinds its sizes and regrows its arena.</summary>
    public static readonly (long B, long T, long Step)[] DefaultSizes = { (3, 4, 0), (5, 2, 7) };

    public static void Run(Assembly asm, string source, string typeName, Random rng, string why, ITestOutputHelper? log = null, InputOverride? inputs = null,
        (long B, long T, long Step)[]? sizes = null, IReadOnlyDictionary<string, double>? hypers = null)
    {
        var spec = ModelGraphs.Spec(source, typeName);
        var train = ModelGraphs.Train(spec);
        var eval = ModelGraphs.Forward(spec, GraphKind.Eval);
        var root = spec.Modules.First(m => m.FullName == spec.RootModule);
        var predict = root.Methods.Any(m => m.Name == "Forward") ? ModelGraphs.Forward(spec, GraphKind.Predict) : null;
        var (compiled, diags) = Pipeline.Compile(spec, false);
        Assert.True(compiled is not null, $"{why}: the pipeline failed: {string.Join("; ", diags.Select(d => d.Id + " " + string.Join(",", d.Args)))}");

        var args = root.Hypers.Select(h => hypers is not null && hypers.TryGetValue(h.Name, out var v) ? (object?)v : null).ToArray();
        var program = GeneratorHarness.CreateProgram(asm, typeName, args);
        Assert.Equal(train.Parameters.Count, program.Parameters.Count);
        for (int p = 0; p < train.Parameters.Count; p++)
            Assert.True(train.Parameters[p].Name == program.Parameters[p].Name, $"{why}: parameter #{p} is {program.Parameters[p].Name} in the program but {train.Parameters[p].Name} in the reference");

        foreach (var (b, t, step) in sizes ?? DefaultSizes)
        {
            var what = $"{why} [B={b}, T={t}]";
            var (run, batch) = Prepare(spec, train, predict, program, rng, b, t, inputs, hypers);
            var ctx = new StepContext((ulong)rng.Next(1, int.MaxValue), step, rng.Next(3));
            run.Masks = (site, layer, p, shape) =>
            {
                // In a loop body, iteration l draws elements [l·n, (l + 1)·n) of the site's stream.
                var mask = new float[ReferenceInterpreter.Numel(shape)];
                DropoutKernels.FillMask(mask, (float)p, ctx.Seed, DropoutKernels.Stream(ctx.Step, ctx.MicroStep, site), (ulong)(layer * mask.Length));
                return mask.Select(v => (double)v).ToArray();
            };

            var reference = ReferenceInterpreter.Run(train, run);
            log?.WriteLine($"{what}: reference loss {reference.Loss:R}");

            // The optimised graph the program was emitted from (ignoring its groups and plan) computes the same.
            var optimised = ReferenceInterpreter.Run(compiled!.Train, run);
            AssertClose($"{what}: optimised-IR loss", new[] { optimised.Loss!.Value }, new[] { reference.Loss!.Value }, 1e-9, 1e-9);
            for (int p = 0; p < train.Parameters.Count; p++)
            {
                long len = program.Parameters[p].Length;
                AssertClose($"{what}: optimised-IR grad({train.Parameters[p].Name})", optimised.GradOrZero(p, len), reference.GradOrZero(p, len), 1e-9, 1e-9);
            }

            // Where the float64 reference itself moves when its parameters move by fp32 rounding (a Max that nearly
            // ties, a Relu input next to zero), the fp32 program may legitimately land on the other side of the kink.
            var perturbed = new Lazy<ReferenceResult[]>(() => Perturbed(train, run, (int)(ctx.Seed % int.MaxValue)));
            program.ZeroGrads();
            float loss = program.TrainStep(batch, ctx);
            AssertClose($"{what}: TrainStep loss", new double[] { loss }, new[] { reference.Loss!.Value }, AbsTol, RelTol);
            AssertGradients($"{what}: TrainStep", program, train, reference, 1, perturbed, log);

            // EvalLoss and Forward run between the two train steps: they share the arena.
            var evalRun = run.Clone(); evalRun.Training = false;
            var evalRef = ReferenceInterpreter.Run(eval, evalRun);
            float evalLoss = program.EvalLoss(batch);
            AssertClose($"{what}: EvalLoss", new double[] { evalLoss }, new[] { evalRef.Loss!.Value }, AbsTol, RelTol);
            if (predict is not null)
            {
                var predRef = ReferenceInterpreter.Run(predict, evalRun).Prediction!;
                var pred = program.Forward(batch);
                Assert.True(pred.Shape.Select(d => (long)d).SequenceEqual(predRef.Shape), $"{what}: Forward shape [{string.Join(", ", pred.Shape)}] vs reference {predRef}");
                if (predRef.IsInt) Assert.Equal(predRef.Ints, pred.Ints!);
                else AssertClose($"{what}: Forward", pred.Floats!.Select(v => (double)v).ToArray(), predRef.Floats, AbsTol, RelTol);
            }

            // Gradient accumulation: a second step without ZeroGrads adds the same gradient again.
            float loss2 = program.TrainStep(batch, ctx);
            AssertClose($"{what}: second TrainStep loss", new double[] { loss2 }, new[] { reference.Loss!.Value }, AbsTol, RelTol);
            AssertGradients($"{what}: accumulated over two TrainSteps", program, train, reference, 2, perturbed, log);
        }
    }

    /// <summary>Random fp32-representable parameters and inputs, written to the program and to a reference run.</summary>
    public static (ReferenceRun Run, Batch Batch) Prepare(Parsing.ModelSpec spec, Graph train, Graph? predict, ModelProgram program, Random rng, long b, long t,
        InputOverride? inputs, IReadOnlyDictionary<string, double>? hypers = null)
    {
        var run = new ReferenceRun();
        ModelGraphs.BindDefaultHypers(spec, run);
        foreach (var (name, value) in hypers ?? new Dictionary<string, double>())
        {
            if (run.FloatHypers.ContainsKey(name)) run.FloatHypers[name] = value;
            else run.Symbols[name] = (long)value;
        }
        long Size(string name) => name switch { "B" => b, "T" => t, _ => 3 };
        ModelGraphs.RandomInputs(train, run, rng, Size);
        if (predict is not null) ModelGraphs.RandomInputs(new Graph(GraphKind.Predict, predict.Nodes, predict.Outputs, predict.Parameters,
            predict.Inputs.Where(i => !run.Inputs.ContainsKey(i.Name)).ToList(), predict.Constraints), run, rng, Size);
        if (inputs is not null)
            foreach (var name in run.Inputs.Keys.ToList())
                if (inputs(name, run.Inputs[name].Shape, rng) is { } replaced) run.Inputs[name] = replaced;

        // Round float inputs to fp32 so both sides see the same numbers.
        var items = new List<(string, TensorData)>();
        foreach (var name in run.Inputs.Keys.ToList())
        {
            var v = run.Inputs[name];
            var shape = v.Shape.Select(d => checked((int)d)).ToArray();
            if (v.IsInt) { items.Add((name, TensorData.Int((int[])v.Ints.Clone(), shape))); continue; }
            var f = v.Floats.Select(x => (float)x).ToArray();
            run.Inputs[name] = RefTensor.Float(f.Select(x => (double)x).ToArray(), v.Shape);
            items.Add((name, TensorData.Float(f, shape)));
        }

        var values = new double[program.Parameters.Count][];
        for (int p = 0; p < program.Parameters.Count; p++)
        {
            var info = program.Parameters[p];
            values[p] = new double[info.Length];
            for (long i = 0; i < info.Length; i++)
            {
                float v = (float)((rng.NextDouble() * 2 - 1) * 0.6);
                program.Params[info.Offset + i] = v;
                values[p][i] = v;
            }
        }
        run.Params = values;
        return (run, new Batch(items.ToArray()));
    }

    /// <summary>
    /// The reference at two points whose parameters and float inputs are moved by a few fp32 ulps (relative 2⁻²⁰, random
    /// signs): how far the exact gradient moves under the rounding the fp32 program cannot avoid.
    /// </summary>
    public static ReferenceResult[] Perturbed(Graph train, ReferenceRun run, int seed)
    {
        var rng = new Random(seed);
        const double eps = 1.0 / (1 << 20);
        double Jiggle(double v) => v * (1 + eps * (rng.Next(2) * 2 - 1));
        var results = new ReferenceResult[2];
        for (int k = 0; k < results.Length; k++)
        {
            var moved = run.Clone();
            moved.Params = run.Params!.Select(p => p.Select(Jiggle).ToArray()).ToArray();
            foreach (var name in run.Inputs.Keys.ToList())
                if (!run.Inputs[name].IsInt) moved.Inputs[name] = RefTensor.Float(run.Inputs[name].Floats.Select(Jiggle).ToArray(), run.Inputs[name].Shape);
            results[k] = ReferenceInterpreter.Run(train, moved);
        }
        return results;
    }

    public static void AssertGradients(string what, ModelProgram program, Graph train, ReferenceResult reference, double times,
        Lazy<ReferenceResult[]>? perturbed = null, ITestOutputHelper? log = null)
    {
        for (int p = 0; p < program.Parameters.Count; p++)
        {
            var info = program.Parameters[p];
            var expected = reference.GradOrZero(p, info.Length).Select(v => v * times).ToArray();
            var actual = new double[info.Length];
            for (long i = 0; i < info.Length; i++) actual[i] = program.Grads[info.Offset + i];
            Func<int, double>? slack = perturbed is null ? null : i =>
            {
                // Four times the largest move of the exact gradient under fp32-sized perturbations.
                double move = perturbed.Value.Max(r => Math.Abs(r.GradOrZero(p, info.Length)[i] * times - expected[i]));
                if (move > 0) log?.WriteLine($"{what} grad({info.Name})[{i}]: the reference moves by {move:G3} under fp32-sized perturbations");
                return 4 * move;
            };
            // A gradient element sums products whose terms may be far larger than the result (a softmax over a whole
            // tensor, a reduction of large upstream gradients): its fp32 error scales with the tensor, so the relative
            // tolerance is taken against the gradient's largest element, not against each element.
            AssertClose($"{what} grad({info.Name})", actual, expected, AbsTol * times, RelTol, slack, floor: 1.0);
        }
    }

    public static void AssertClose(string what, double[] actual, double[] expected, double atol, double rtol, Func<int, double>? slack = null, double floor = 0.1)
    {
        Assert.True(actual.Length == expected.Length, $"{what}: {actual.Length} elements vs {expected.Length} in the reference");
        double norm = expected.Length == 0 ? 0 : expected.Max(Math.Abs);
        var bad = new StringBuilder();
        int count = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double tol = atol + rtol * Math.Max(Math.Abs(expected[i]), norm * floor);
            if (!(Math.Abs(actual[i] - expected[i]) <= tol) && slack is not null) tol += slack(i);
            if (!(Math.Abs(actual[i] - expected[i]) <= tol))
            {
                if (count < 6) bad.Append($"\n  [{i}] got {actual[i]:G9}, reference {expected[i]:G9} (tolerance {tol:G3})");
                count++;
            }
        }
        Assert.True(count == 0, $"{what}: {count} of {actual.Length} elements differ from the reference (‖ref‖∞ = {norm:G4}):{bad}");
    }
}

/// <summary>Hand-written models covering the DSL: activations, modules, attention, masks, regression, sequences, dropout.</summary>
internal static class HandWritten
{
    public static readonly string[] Types =
    {
        "C.Mlp", "C.ResNet", "C.TinyAttention", "C.Masked", "C.Regression", "C.SeqPool", "C.Mixer", "C.TokenTagger",
        "C.TiedEmbedding", "C.Broadcasts", "C.Wide", "C.Positions", "C.VectorNoForward", "C.Twins", "C.LoopedBlocks", "C.TwoCarried",
        "C.Staged",
    };

    /// <summary>Hyperparameters other than the defaults the programs were generated with (sizes are symbols in the program).</summary>
    public static readonly IReadOnlyDictionary<string, Dictionary<string, double>> NonDefaultHypers = new Dictionary<string, Dictionary<string, double>>
    {
        ["C.Mlp"] = new() { ["din"] = 4, ["hidden"] = 9, ["dout"] = 2 },
        ["C.TinyAttention"] = new() { ["vocab"] = 5, ["dim"] = 12, ["heads"] = 3 },
        ["C.Mixer"] = new() { ["seq"] = 3, ["dim"] = 7, ["classes"] = 2 },
        ["C.TokenTagger"] = new() { ["vocab"] = 4, ["dim"] = 6, ["tags"] = 5, ["eps"] = 0.05 },
        ["C.Positions"] = new() { ["maxLen"] = 5, ["p"] = 0.6, ["dim"] = 3 },
        ["C.Regression"] = new() { ["din"] = 3, ["dim"] = 8 },
        ["C.ResNet"] = new() { ["features"] = 2, ["dim"] = 9, ["hidden"] = 4, ["classes"] = 6, ["depth"] = 5 },
        ["C.LoopedBlocks"] = new() { ["vocab"] = 5, ["dim"] = 8, ["hidden"] = 6, ["layers"] = 1 },
        ["C.TwoCarried"] = new() { ["din"] = 2, ["dim"] = 4, ["steps"] = 6 },
        ["C.Staged"] = new() { ["din"] = 2, ["dim"] = 4, ["layers"] = 3 },
    };

    /// <summary>C.Wide runs on tensors of ≥ 2^15 elements so the kernels take their multi-threaded paths.</summary>
    public static (long B, long T, long Step)[]? Sizes(string model) => model == "C.Wide" ? new[] { (48L, 16L, 3L), (7L, 3L, 4L) } : null;

    /// <summary>Input overrides: the mask input of C.Masked holds zeros and ones.</summary>
    public static CompiledCheck.InputOverride? Inputs(string model) => model switch
    {
        "C.Masked" => (name, shape, rng) => name == "m"
            ? RefTensor.Float(Enumerable.Range(0, checked((int)ReferenceInterpreter.Numel(shape))).Select(_ => (double)rng.Next(2)).ToArray(), shape)
            : null,
        _ => null,
    };

    public const string Source = """
        using System;
        using Kiln;
        namespace C;

        [Model]
        public partial class Mlp(int din = 5, int hidden = 7, int dout = 3)
        {
            Linear fc1 = new(din, hidden), fc2 = new(hidden, hidden), fc3 = new(hidden, hidden), fc4 = new(hidden, dout);
            public Tensor Forward([Shape("B", "din")] Tensor x) =>
                fc4.Forward(Ops.Sigmoid(fc3.Forward(Ops.Gelu(fc2.Forward(Ops.Relu(Ops.Tanh(fc1.Forward(x)) * 2f))))));
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }

        [Module]
        public partial class Block(int dim, int hidden)
        {
            LayerNorm norm = new(dim);
            Linear up = new(dim, hidden);
            Linear down = new(hidden, dim);
            public Tensor Forward(Tensor x) => x + down.Forward(Ops.Gelu(up.Forward(norm.Forward(x))));
        }

        [Model]
        public partial class ResNet(int features = 3, int dim = 6, int hidden = 10, int classes = 4, int depth = 3)
        {
            Linear embed = new(features, dim);
            Block[] blocks = Module.Repeat(depth, _ => new Block(dim, hidden));
            LayerNorm final = new(dim);
            Linear head = new(dim, classes);
            public Tensor Forward([Shape("B", "features")] Tensor x)
            {
                var h = embed.Forward(x);
                foreach (var block in blocks) h = block.Forward(h);
                return head.Forward(final.Forward(h));
            }
            [Loss] public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> label) => Ops.CrossEntropy(Forward(x), label);
        }

        [Model]
        public partial class TinyAttention(int vocab = 7, int dim = 8, int heads = 2)
        {
            Embedding tok = new(vocab, dim);
            LayerNorm ln = new(dim);
            Linear qkv = new(dim, dim * 3);
            Linear proj = new(dim, dim);
            Linear head = new(dim, vocab);
            public Tensor Forward([Shape("B", "T")] Tensor<int> tokens)
            {
                var b = tokens.Dim(0);
                var t = tokens.Dim(1);
                var dh = dim / heads;
                var x = tok.Forward(tokens);
                var z = qkv.Forward(ln.Forward(x));
                var q = Ops.Slice(z, -1, 0, dim);
                var k = Ops.Slice(z, -1, dim, 2 * dim);
                var v = Ops.Slice(z, -1, 2 * dim, 3 * dim);
                var qh = Ops.Permute(Ops.Reshape(q, b, t, heads, dh), 0, 2, 1, 3);
                var kh = Ops.Transpose(Ops.Reshape(k, b, t, heads, dh), 1, 2);
                var vh = Ops.Permute(Ops.Reshape(v, b, t, heads, dh), 0, 2, 1, 3);
                var pos = Ops.ToFloat(Ops.Arange(t));
                var allowed = Ops.Less(Ops.Reshape(pos, 1, t), Ops.Reshape(pos, t, 1) + 0.5f);
                var scores = Ops.MatMul(qh, kh.T) * (1f / (float)Math.Sqrt(dh));
                var att = Ops.Softmax(Ops.Where(allowed, scores, -1e9f), -1);
                var o = Ops.Reshape(Ops.Transpose(Ops.MatMul(att, vh), 1, 2), b, t, dim);
                var h = x + proj.Forward(o);
                var rolled = Ops.Concat(-1, Ops.Slice(h, -1, 1, dim), Ops.Slice(h, -1, 0, 1));
                return head.Forward(h + 0.5f * rolled);
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> tokens, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(tokens), targets);
        }

        [Model]
        public partial class Masked(int din = 4, int dim = 6, int dout = 2)
        {
            Linear a = new(din, dim), b = new(din, dim), c = new(dim, dout);
            public Tensor Forward([Shape("B", "din")] Tensor x, [Shape("B", "dim")] Tensor m)
            {
                var ha = a.Forward(x);
                var hb = b.Forward(x);
                var h = Ops.Where(Ops.Greater(ha, hb), ha, hb * 0.5f) + Ops.Where(Ops.Less(ha, m), Ops.Abs(hb), -0.25f);
                var g = Ops.Maximum(h, Ops.Tanh(ha)) - Ops.Minimum(ha, hb) + Ops.Where(m, ha, hb) * Ops.Equal(m, Ops.StopGradient(m));
                return c.Forward(g);
            }
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dim")] Tensor m, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x, m), y);
        }

        [Model]
        public partial class Regression(int din = 6, int dim = 5)
        {
            Linear fc = new(din, dim);
            Linear output = new(dim, 1);
            public Tensor Forward([Shape("B", "din")] Tensor x)
            {
                var h = fc.Forward(x);
                var centered = h - Ops.Mean(h, -1, true);
                var scale = Ops.Sqrt(Ops.Mean(Ops.Square(centered), -1, true) + 1e-3f);
                var n = centered / scale;
                var p = Ops.Pow(Ops.Abs(n) + 0.5f, 1.5f) - Ops.Exp(-Ops.Square(n)) + Ops.Log(Ops.Sigmoid(n) + 0.1f) + Ops.Rsqrt(Ops.Square(n) + 1f);
                return output.Forward(p + Ops.Sum(h, 1, true) * 0.1f - Ops.Max(h, 1, true));
            }
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }

        [Model]
        public partial class SeqPool(int vocab = 9, int dim = 6, int classes = 3)
        {
            Embedding emb = new(vocab, dim);
            Linear mix = new(dim, dim);
            Dropout drop = new(0.25f);
            Linear head = new(dim, classes);
            public Tensor Forward([Shape("B", "T")] Tensor<int> tokens)
            {
                var h = Ops.Tanh(mix.Forward(drop.Forward(emb.Forward(tokens))));
                var pooled = Ops.Mean(h, 1) + Ops.Max(h, 1);
                return head.Forward(pooled);
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> tokens, [Shape("B")] Tensor<int> label) => Ops.CrossEntropy(Forward(tokens), label, 0);
        }

        [Model]
        public partial class Mixer(int seq = 4, int dim = 5, int classes = 3)
        {
            Linear tokenMix = new(seq, seq);
            Linear chan = new(dim, dim);
            LayerNorm ln1 = new(dim), ln2 = new(dim);
            Linear head = new(dim, classes);
            public Tensor Forward([Shape("B", "seq", "dim")] Tensor x)
            {
                var t = Ops.Transpose(tokenMix.Forward(Ops.Transpose(ln1.Forward(x), 1, 2)), 1, 2);
                var h = x + t;
                var c = Ops.MatMul(ln2.Forward(h), chan.Weight.T) + chan.Bias;
                var w = Ops.MatMul(chan.Weight, Ops.Gelu(c).T);
                h = h + Ops.Transpose(w, 1, 2);
                var both = Ops.Concat(1, h, Ops.Slice(h, 1, 1, seq));
                var pooled = Ops.Sum(both, 1) / (float)(2 * seq - 1);
                return head.Forward(pooled);
            }
            [Loss] public Tensor Loss([Shape("B", "seq", "dim")] Tensor x, [Shape("B")] Tensor<int> label) => Ops.CrossEntropy(Forward(x), label);
        }

        [Model]
        public partial class TokenTagger(int vocab = 6, int dim = 4, int tags = 3, float eps = 0.001f)
        {
            Embedding emb = new(vocab, dim);
            LayerNorm ln = new(dim, eps);
            Linear up = new(dim * 2, dim);
            Linear head = new(dim, tags);
            public Tensor Forward([Shape("B", "T")] Tensor<int> tokens)
            {
                var e = emb.Forward(tokens);
                var ctx = Ops.Mean(e, 1, true);
                var h = up.Forward(Ops.Concat(-1, e, e - ctx));
                h = ln.Forward(Ops.Gelu(h)) + e;
                return head.Forward(h);
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> tokens, [Shape("B", "T")] Tensor<int> labels) => Ops.CrossEntropy(Forward(tokens), labels, 2);
        }

        [Model]
        public partial class TiedEmbedding(int vocab = 7, int dim = 5)
        {
            Embedding emb = new(vocab, dim);
            Linear mix = new(dim, dim);
            Linear unused = new(dim, 2);
            public Tensor Forward([Shape("B", "T")] Tensor<int> tokens)
            {
                var h = emb.Forward(tokens);
                h = h + Ops.Tanh(mix.Forward(h));
                return Ops.MatMul(h, emb.Weight.T) + Ops.Sum(mix.Bias) * 0f;
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> tokens, [Shape("B", "T")] Tensor<int> next) =>
                Ops.CrossEntropy(Forward(tokens), next) + Ops.Sum(mix.Bias) * 0.1f;
        }

        [Model]
        public partial class Broadcasts(int dim = 3, int seq = 4)
        {
            Linear fc = new(dim, dim);
            LayerNorm ln = new(seq);
            Embedding table = new(seq, dim);
            public Tensor Forward([Shape("B", "seq", "dim")] Tensor x)
            {
                var h = fc.Forward(x);
                var col = Ops.Reshape(ln.Weight, 1, seq, 1);
                var row = Ops.Reshape(fc.Bias, 1, 1, dim);
                var g = h * col + row * Ops.Mean(h, 1, true);
                var t = Ops.Transpose(g, 0, 2);
                var u = Ops.Sigmoid(t * Ops.Reshape(ln.Bias, 1, seq, 1));
                var w = Ops.Permute(u, 2, 1, 0) + table.Weight;
                var m = Ops.MatMul(Ops.Reshape(table.Weight, 1, seq, dim), Ops.Transpose(w, 1, 2));
                return Ops.Sum(m, -1) + Ops.Max(w, 2) * Ops.Reshape(ln.Weight, 1, seq);
            }
            [Loss] public Tensor Loss([Shape("B", "seq", "dim")] Tensor x, [Shape("B", "seq")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }

        [Model]
        public partial class Positions(int vocab = 6, int dim = 4, int maxLen = 8, float p = 0.3f)
        {
            Embedding tok = new(vocab, dim), pos = new(maxLen, dim);
            Dropout drop = new(p);
            Linear head = new(dim + 1, vocab);
            public Tensor Forward([Shape("B", "T")] Tensor<int> tokens)
            {
                var b = tokens.Dim(0);
                var t = tokens.Dim(1);
                var e = tok.Forward(tokens) + pos.Forward(Ops.Arange(t));
                var feature = Ops.Reshape(Ops.ToFloat(tokens), b, t, 1) * 0.1f;
                return head.Forward(Ops.Concat(-1, drop.Forward(e), feature));
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> tokens, [Shape("B", "T")] Tensor<int> next) => Ops.CrossEntropy(Forward(tokens), next);
        }

        [Model]
        public partial class VectorNoForward(int din = 4, int dout = 3)
        {
            Linear fc = new(din, dout);
            LayerNorm ln = new(dout);
            [Loss] public Tensor Loss([Shape("din")] Tensor x, [Shape("dout")] Tensor y) => Ops.MseLoss(ln.Forward(Ops.Tanh(fc.Forward(x))), y) + Ops.Mean(Ops.Square(fc.Weight)) * 0.01f;
        }

        [Model]
        public partial class Twins(int din = 3, int dim = 5, int classes = 4)
        {
            Linear a = new(din, dim), b = new(din, dim);
            Linear head = new(dim, classes);
            public Tensor Forward([Shape("B", "T", "din")] Tensor x)
            {
                var t = x.Dim(1);
                var h = Ops.Tanh(a.Forward(x) + b.Forward(x));
                var shifted = Ops.Concat(1, Ops.Slice(h, 1, 0, 1), Ops.Slice(h, 1, 0, t - 1) + Ops.Slice(h, 1, 1, t));
                return head.Forward(shifted);
            }
            [Loss] public Tensor Loss([Shape("B", "T", "din")] Tensor x, [Shape("B", "T")] Tensor<int> y) => Ops.CrossEntropy(Forward(x), y);
        }

        [Model]
        public partial class Wide(int din = 37, int dim = 64, int hidden = 130, int classes = 11)
        {
            Linear inp = new(din, dim);
            LayerNorm ln = new(dim);
            Linear up = new(dim, hidden), down = new(hidden, dim);
            Linear head = new(dim, classes);
            public Tensor Forward([Shape("B", "T", "din")] Tensor x)
            {
                var h = inp.Forward(x);
                h = h + down.Forward(Ops.Gelu(up.Forward(ln.Forward(h))));
                var mixed = Ops.Transpose(Ops.Softmax(Ops.Transpose(h, 1, 2), -1), 1, 2) * h;
                var att = Ops.Softmax(Ops.MatMul(h, h.T) * 0.05f, -1);
                return head.Forward(Ops.MatMul(att, mixed) + Ops.Concat(2, Ops.Slice(h, 2, 1, dim), Ops.Slice(h, 2, 0, 1)));
            }
            [Loss] public Tensor Loss([Shape("B", "T", "din")] Tensor x, [Shape("B", "T")] Tensor<int> y) => Ops.CrossEntropy(Forward(x), y);
        }

        /// <summary>Repeated blocks with dropout and a declared gain: a loop region whose masks differ per layer.</summary>
        [Module]
        public partial class DropBlock(int dim, int hidden)
        {
            LayerNorm norm = new(dim);
            Linear up = new(dim, hidden), down = new(hidden, dim);
            Tensor gain = Parameter.Ones(dim);
            Dropout drop = new(0.3f);
            public Tensor Forward(Tensor x) => x + drop.Forward(down.Forward(Ops.Gelu(up.Forward(norm.Forward(x))))) * gain;
        }

        [Model]
        public partial class LoopedBlocks(int vocab = 7, int dim = 8, int hidden = 12, int layers = 3)
        {
            Embedding emb = new(vocab, dim);
            DropBlock[] blocks = Module.Repeat(layers, _ => new DropBlock(dim, hidden));
            LayerNorm final = new(dim);
            public Tensor Forward([Shape("B", "T")] Tensor<int> tokens)
            {
                var h = emb.Forward(tokens);
                foreach (var b in blocks) h = b.Forward(h);
                return Ops.MatMul(final.Forward(h), emb.Weight.T);
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> tokens, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(tokens), targets);
        }

        /// <summary>A for loop over a hyperparameter picking recomputed blocks, with two carried values and a captured parameter.</summary>
        [Module, Recompute]
        public partial class Mix(int dim)
        {
            Linear a = new(dim, dim), b = new(dim, dim, false);
            public Tensor Forward(Tensor x, Tensor y) => Ops.Tanh(a.Forward(x) + b.Forward(y));
        }

        [Model]
        public partial class TwoCarried(int din = 3, int dim = 6, int steps = 3)
        {
            Linear inp = new(din, dim);
            Mix[] mix = Module.Repeat(steps, _ => new Mix(dim));
            Tensor shared = Parameter.Normal(0.5f, dim);
            public Tensor Forward([Shape("B", "din")] Tensor x)
            {
                var u = inp.Forward(x);
                var v = Ops.Sigmoid(u);
                for (int i = 0; i < steps; i++)
                {
                    var next = mix[i].Forward(u, v) + v * shared;
                    v = u;
                    u = next;
                }
                return u - v;
            }
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dim")] Tensor t) => Ops.MseLoss(Forward(x), t);
        }

        // A pipeline stage program with tensor-parallel blocks, run on one rank: the stage boundaries and the collectives
        // are identities (a view, an in-place reduce, copies), and every backend must agree on that.
        [Module]
        public partial class SplitBlock(int dim, int tensor)
        {
            LayerNorm norm = new(dim);
            [ColumnParallel] Linear up = new(dim, 2 * dim / tensor);
            [RowParallel] Linear down = new(2 * dim / tensor, dim);
            public Tensor Forward(Tensor x) =>
                x + Ops.TensorReduce(Ops.MatMul(Ops.Gelu(up.Forward(Ops.TensorReplicate(norm.Forward(x)))), down.Weight.T)) + down.Bias;
        }

        [Model, Parallel(Pipeline = 2, MicroBatches = 2)]
        public partial class Staged(int din = 3, int dim = 6, int dout = 2, int layers = 2, int tensor = 1)
        {
            Linear inp = new(din, dim), head = new(dim, dout);
            SplitBlock[] blocks = Module.Repeat(layers, _ => new SplitBlock(dim, tensor));
            public Tensor Forward([Shape("B", "din")] Tensor x)
            {
                var h = inp.Forward(x);
                foreach (var block in blocks) h = block.Forward(h);
                return head.Forward(h);
            }
            [Loss] public Tensor Loss([Shape("B", "din")] Tensor x, [Shape("B", "dout")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }
        """;
}

using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Reflection;
using System.Text;
using Kiln.Generators.Tests.Reference;
using Xunit.Abstractions;

namespace Kiln.Generators.Tests;

/// <summary>The source of one generated model.</summary>
internal sealed record RandomModel(int Index, string TypeName, string Source, string Summary);

/// <summary>
/// Generates the source of random small models: depth 1–3, dimensions 2–9, a random mix of activations,
/// linear layers, residual blocks, LayerNorm, gating, concat/slice, masks, softmax, reductions and
/// attention-like mixing (for sequences), optionally a [Module] block repeated with Module.Repeat, and an
/// MSE or cross-entropy loss (sometimes with an ignore index). Inputs are dense [B, din], sequences
/// [B, T, din] or tokens [B, T].
/// </summary>
internal static class RandomModels
{
    private enum InputKind { Dense, Sequence, Tokens }

    private static string F(double v) => v.ToString("0.0##", CultureInfo.InvariantCulture) + "f";

    /// <summary>Writes statements h = f(h) that keep h's shape [..., dim] and declares the fields they use.</summary>
    private sealed class Body
    {
        private readonly Random _r;
        private readonly string _prefix;
        private readonly long _dim;
        public Body(Random r, string prefix, long dim) { _r = r; _prefix = prefix; _dim = dim; }
        public List<string> Fields { get; } = new();
        public List<string> Statements { get; } = new();
        public List<string> Kinds { get; } = new();
        private int _n;

        private string Lin(string args) { var n = $"{_prefix}l{_n++}"; Fields.Add($"Linear {n} = new({args});"); return n; }
        private string Norm() { var n = $"{_prefix}ln{_n++}"; Fields.Add($"LayerNorm {n} = new(dim{(_r.Next(2) == 0 ? "" : ", 1e-3f")});"); return n; }
        private string Act() => new[] { "Tanh", "Relu", "Gelu", "Sigmoid" }[_r.Next(4)];

        public void Add(bool sequence, bool allowDropout)
        {
            var kinds = new List<string> { "act", "linear", "residual", "gate", "concat", "roll", "softmax", "leaky", "maxmin", "norm", "center", "pow", "rowmax", "weight", "bounded", "div", "transposed", "flatsoftmax", "split" };
            // LayerNorm over two features maps every row to ±(nearly the same point): later maxima would be
            // near-ties whose gradient split fp32 rounding decides. Normalise only three or more features.
            if (_dim < 3) { kinds.Remove("norm"); kinds.Remove("residual"); }
            if (sequence) { kinds.Add("attend"); kinds.Add("seqmean"); }
            if (allowDropout) kinds.Add("dropout");
            var k = kinds[_r.Next(kinds.Count)];
            Kinds.Add(k);
            string s;
            switch (k)
            {
                case "act": s = $"h = Ops.{Act()}(h);"; break;
                case "linear": s = $"h = {Lin(_r.Next(3) == 0 ? "dim, dim, false" : "dim, dim")}.Forward(h);"; break;
                case "residual":
                {
                    var ln = Norm(); var up = Lin("dim, hidden"); var down = Lin("hidden, dim");
                    s = $"h = h + {down}.Forward(Ops.{Act()}({up}.Forward({ln}.Forward(h))));";
                    break;
                }
                case "gate": s = $"h = h * Ops.Sigmoid({Lin("dim, dim")}.Forward(h));"; break;
                case "concat": s = $"h = {Lin("dim * 2, dim")}.Forward(Ops.Concat(-1, h, Ops.{Act()}(h)));"; break;
                case "roll":
                {
                    long shift = _dim <= 1 ? 0 : 1 + _r.Next((int)_dim - 1);
                    s = shift == 0 ? "h = h * 1.5f;" : $"h = Ops.Concat(-1, Ops.Slice(h, -1, {shift}, dim), Ops.Slice(h, -1, 0, {shift})) + h * {F(0.5)};";
                    break;
                }
                case "softmax": s = $"h = Ops.Softmax(h, -1) * {F(1 + _r.Next(3))} + h;"; break;
                case "leaky": s = "h = Ops.Where(Ops.Greater(h, h * 0f), h, h * 0.1f);"; break;
                case "maxmin": s = $"h = Ops.Maximum(h, {Lin("dim, dim")}.Forward(h)) + Ops.Minimum(h, Ops.Tanh(h)) * 0.5f;"; break;
                case "norm": s = $"h = {Norm()}.Forward(h);"; break;
                case "center": s = "h = (h - Ops.Mean(h, -1, true)) / Ops.Sqrt(Ops.Mean(Ops.Square(h - Ops.Mean(h, -1, true)), -1, true) + 0.1f);"; break;
                // The base is bounded (Tanh) so that chains of powers stay inside fp32: |h|^2.5 repeated seven times overflowed.
                case "pow": s = $"h = Ops.Pow(Ops.Abs(Ops.Tanh(h)) + 0.5f, {F(new[] { 1.5, 2.5, 0.5, 3 }[_r.Next(4)])}) - Ops.Exp(-Ops.Square(h));"; break;
                case "rowmax": s = "h = h - Ops.Max(h, -1, true) + Ops.Sum(h, -1, true) * 0.25f;"; break;
                case "weight": { var l = Lin("dim, dim"); s = $"h = Ops.MatMul(h, {l}.Weight.T) + {l}.Bias;"; break; }
                case "bounded": s = "h = Ops.Exp(Ops.Tanh(h)) - Ops.Log(Ops.Sigmoid(h) + 0.5f);"; break;
                case "div": s = "h = h / (Ops.Abs(h) + 1f) + Ops.Rsqrt(Ops.Square(h) + 1f);"; break;
                case "transposed": s = $"h = Ops.MatMul({Lin("dim, dim")}.Weight, h.T).T + h;"; break;
                case "flatsoftmax":
                    s = sequence
                        ? "h = Ops.Reshape(Ops.Softmax(Ops.Reshape(h, -1, 1), 0), h.Dim(0), h.Dim(1), dim) * 4f + h;"
                        : "h = Ops.Reshape(Ops.Softmax(Ops.Reshape(h, -1, 1), 0), h.Dim(0), dim) * 4f + h;";
                    break;
                case "split":
                {
                    long at = _dim <= 1 ? 0 : 1 + _r.Next((int)_dim - 1);
                    s = at == 0 ? "h = h * 0.75f;" : $"h = Ops.Concat(-1, Ops.Slice(h, -1, 0, {at}) * 2f, Ops.{Act()}(Ops.Slice(h, -1, {at}, dim)));";
                    break;
                }
                case "attend": s = $"h = h + Ops.MatMul(Ops.Softmax(Ops.MatMul(h, h.T) * {F(0.5)}, -1), h);"; break;
                case "seqmean": s = "h = h + Ops.Mean(h, 1, true) - Ops.Max(h, 1, true) * 0.5f;"; break;
                case "dropout": { var n = $"{_prefix}dp{_n++}"; Fields.Add($"Dropout {n} = new({F(new[] { 0.1, 0.25, 0.5 }[_r.Next(3)])});"); s = $"h = {n}.Forward(h);"; break; }
                default: throw new InvalidOperationException(k);
            }
            Statements.Add(s);
        }
    }

    public static RandomModel Generate(Random r, int index)
    {
        var kind = (InputKind)r.Next(3);
        long din = r.Next(2, 10), dim = r.Next(2, 10), hidden = r.Next(2, 10), dout = r.Next(2, 10), depth = r.Next(1, 4);
        bool ce = r.Next(2) == 0;
        bool pool = kind != InputKind.Dense && r.Next(2) == 0;
        bool useModule = r.Next(2) == 0;
        bool sequence = kind != InputKind.Dense;
        string ns = "R" + index.ToString(CultureInfo.InvariantCulture), name = "Rand" + index.ToString(CultureInfo.InvariantCulture);

        var main = new Body(r, "m", dim);
        int before = useModule ? r.Next(0, 2) : (int)depth, after = r.Next(0, 2);
        for (int i = 0; i < before; i++) main.Add(sequence, true);
        var pre = main.Statements.ToList(); main.Statements.Clear();
        for (int i = 0; i < after; i++) main.Add(sequence, true);
        var post = main.Statements.ToList();

        var sb = new StringBuilder();
        sb.AppendLine("using System;").AppendLine("using Kiln;").AppendLine($"namespace {ns};").AppendLine();
        Body? block = null;
        if (useModule)
        {
            block = new Body(r, "b", dim);
            int n = r.Next(1, 4);
            for (int i = 0; i < n; i++) block.Add(sequence, r.Next(3) == 0);
            sb.AppendLine("[Module]").AppendLine($"public partial class Blk{index}(int dim, int hidden)").AppendLine("{");
            foreach (var f in block.Fields) sb.AppendLine("    " + f);
            sb.AppendLine("    public Tensor Forward(Tensor x)").AppendLine("    {").AppendLine("        var h = x;");
            foreach (var s in block.Statements) sb.AppendLine("        " + s);
            sb.AppendLine("        return h;").AppendLine("    }").AppendLine("}").AppendLine();
        }

        sb.AppendLine("[Model]").AppendLine($"public partial class {name}(int din = {din}, int dim = {dim}, int hidden = {hidden}, int dout = {dout}, int depth = {depth})").AppendLine("{");
        // Tokens get a position embedding: equal tokens at two positions would otherwise give exactly tied
        // maxima, whose gradient split is decided by fp32 rounding.
        sb.AppendLine(kind == InputKind.Tokens ? "    Embedding inp = new(din, dim), pos = new(8, dim);" : "    Linear inp = new(din, dim);");
        foreach (var f in main.Fields) sb.AppendLine("    " + f);
        if (useModule)
            sb.AppendLine(r.Next(2) == 0
                ? $"    Blk{index}[] blocks = Module.Repeat(depth, _ => new Blk{index}(dim, hidden));"
                : $"    Blk{index} first = new(dim, hidden), second = new(dim, hidden);");
        sb.AppendLine("    Linear head = new(dim, dout);");
        var xParam = kind switch
        {
            InputKind.Dense => "[Shape(\"B\", \"din\")] Tensor x",
            InputKind.Sequence => "[Shape(\"B\", \"T\", \"din\")] Tensor x",
            _ => "[Shape(\"B\", \"T\")] Tensor<int> x",
        };
        sb.AppendLine($"    public Tensor Forward({xParam})").AppendLine("    {")
          .AppendLine(kind == InputKind.Tokens ? "        var h = inp.Forward(x) + pos.Forward(Ops.Arange(x.Dim(1)));" : "        var h = inp.Forward(x);");
        foreach (var s in pre) sb.AppendLine("        " + s);
        if (useModule)
            sb.AppendLine(sb.ToString().Contains("Module.Repeat")
                ? "        foreach (var blk in blocks) h = blk.Forward(h);"
                : "        h = second.Forward(first.Forward(h));");
        foreach (var s in post) sb.AppendLine("        " + s);
        if (pool) sb.AppendLine(r.Next(2) == 0 ? "        h = Ops.Mean(h, 1);" : "        h = Ops.Sum(h, 1) * 0.5f;");
        sb.AppendLine("        return head.Forward(h);").AppendLine("    }");

        var outDims = kind == InputKind.Dense || pool ? "\"B\"" : "\"B\", \"T\"";
        string target, loss;
        string ignore = "";
        if (ce)
        {
            ignore = r.Next(3) switch { 0 => "", 1 => ", -1", _ => ", " + r.Next((int)dout).ToString(CultureInfo.InvariantCulture) };
            target = $"[Shape({outDims})] Tensor<int> t";
            loss = $"Ops.CrossEntropy(Forward(x), t{ignore})";
        }
        else
        {
            target = $"[Shape({outDims}, \"dout\")] Tensor t";
            loss = "Ops.MseLoss(Forward(x), t)";
        }
        sb.AppendLine($"    [Loss] public Tensor Loss({xParam}, {target}) => {loss};").AppendLine("}");

        var summary = $"{name}: {kind}{(pool ? " pooled" : "")}, din={din} dim={dim} hidden={hidden} dout={dout} depth={depth}, " +
            $"{(ce ? "cross-entropy" + ignore : "MSE")}, main [{string.Join(", ", main.Kinds)}]" +
            (block is null ? "" : $", module [{string.Join(", ", block.Kinds)}]");
        return new RandomModel(index, ns + "." + name, sb.ToString(), summary);
    }
}

/// <summary>
/// Compiles ≥ 20 random models per run (fresh seed, printed; fixed with KILN_TEST_SEED) in one generator
/// run and compares each program with the reference as <see cref="CompiledVsReferenceTests"/> does.
/// </summary>
public class RandomModelTests
{
    public const int Count = 24;

    private readonly ITestOutputHelper _out;
    public RandomModelTests(ITestOutputHelper output) => _out = output;

    private sealed class Suite
    {
        public Suite(RandomModel[] models, Assembly? assembly, Dictionary<int, string> buildErrors) { Models = models; Assembly = assembly; BuildErrors = buildErrors; }
        public RandomModel[] Models { get; }
        public Assembly? Assembly { get; }
        /// <summary>Models that did not compile, with the error (then the others are built one by one).</summary>
        public Dictionary<int, string> BuildErrors { get; }
        public Dictionary<int, Assembly> Single { get; } = new();
    }

    private static readonly Lazy<Suite> Models = new(() =>
    {
        var rng = new Random(TestSeeds.For("random models"));
        var models = Enumerable.Range(0, Count).Select(i => RandomModels.Generate(rng, i)).ToArray();
        try
        {
            return new Suite(models, GeneratorHarness.Build(models.Select(m => m.Source).ToArray()), new Dictionary<int, string>());
        }
        catch (InvalidOperationException)
        {
            // Find which models break the build, and build the others on their own.
            var errors = new Dictionary<int, string>();
            var suite = new Suite(models, null, errors);
            foreach (var m in models)
            {
                try { suite.Single[m.Index] = GeneratorHarness.Build(m.Source); }
                catch (InvalidOperationException e) { errors[m.Index] = e.Message; }
            }
            return suite;
        }
    });

    public static IEnumerable<object[]> Indices => Enumerable.Range(0, Count).Select(i => new object[] { i });

    [Theory]
    [MemberData(nameof(Indices))]
    public void Random_model_compiled_program_matches_reference(int index)
    {
        var suite = Models.Value;
        var model = suite.Models[index];
        var why = $"random model #{index} ({TestSeeds.Describe("random models")}) {model.Summary}";
        _out.WriteLine(why);
        _out.WriteLine(model.Source);
        Assert.False(suite.BuildErrors.ContainsKey(index), $"{why}: did not compile:\n{(suite.BuildErrors.TryGetValue(index, out var e) ? e : "")}\n{model.Source}");
        var asm = suite.Assembly ?? suite.Single[index];
        try
        {
            CompiledCheck.Run(asm, model.Source, model.TypeName, new Random(TestSeeds.For("random model " + index)), why, _out);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException($"{why}: {ex.GetType().Name}: {ex.Message}\n{model.Source}", ex);
        }
    }

    [Fact]
    public void Random_models_cover_every_statement_kind_over_a_few_runs()
    {
        // A sanity check of the generator itself: over 200 draws every kind of statement and both losses appear.
        var rng = new Random(TestSeeds.For("random model coverage"));
        var text = string.Join("\n", Enumerable.Range(0, 200).Select(i => RandomModels.Generate(rng, i)).Select(m => m.Summary));
        foreach (var k in new[] { "act", "linear", "residual", "gate", "concat", "roll", "softmax", "leaky", "maxmin", "norm", "center", "pow", "rowmax", "weight", "bounded", "div", "transposed", "flatsoftmax", "split", "attend", "seqmean", "dropout", "cross-entropy", "MSE", "Tokens", "Sequence", "Dense", "pooled", "module" })
            Assert.Contains(k, text);
    }
}

using System;
using System.IO;
using System.Linq;
using Kiln.Generators.Ir;
using Kiln.Generators.Passes;

namespace Kiln.Generators.Tests;

/// <summary>
/// Pins the optimised training IR and the full generated C# of three representative models to files under
/// <c>Golden/</c>. A mismatch writes <c>*.actual.txt</c> next to the golden in the test output directory and
/// names the first differing line. After reviewing the change, re-bless with <c>KILN_BLESS=1 dotnet test</c>,
/// which rewrites the goldens in the source tree.
/// </summary>
public class GoldenTests
{
    private const string BlessVariable = "KILN_BLESS";

    /// <summary>A two-layer perceptron regressor: Linear → Tanh → Linear, MSE loss.</summary>
    public const string Mlp = """
        using Kiln;
        namespace Golden;

        [Model]
        public partial class Mlp(int dim = 3, int hidden = 8)
        {
            Linear fc1 = new(dim, hidden), fc2 = new(hidden, 1);

            public Tensor Forward([Shape("B", "dim")] Tensor x) => fc2.Forward(Ops.Tanh(fc1.Forward(x)));

            [Loss]
            public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
        }
        """;

    /// <summary>The spirals classifier: pre-norm residual blocks built with Module.Repeat, cross-entropy loss.</summary>
    public const string Residual = """
        using Kiln;
        namespace Golden;

        [Module]
        public partial class ResidualBlock(int dim, int hidden)
        {
            LayerNorm norm = new(dim);
            Linear up = new(dim, hidden);
            Linear down = new(hidden, dim);

            public Tensor Forward(Tensor x) => x + down.Forward(Ops.Gelu(up.Forward(norm.Forward(x))));
        }

        [Model]
        public partial class SpiralClassifier(int features = 2, int dim = 16, int hidden = 32, int classes = 2, int depth = 2)
        {
            Linear embed = new(features, dim);
            ResidualBlock[] blocks = Module.Repeat(depth, _ => new ResidualBlock(dim, hidden));
            LayerNorm final = new(dim);
            Linear head = new(dim, classes);

            public Tensor Forward([Shape("B", "features")] Tensor x)
            {
                var h = embed.Forward(x);
                foreach (var block in blocks)
                    h = block.Forward(h);
                return head.Forward(final.Forward(h));
            }

            [Loss]
            public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> label) =>
                Ops.CrossEntropy(Forward(x), label);
        }
        """;

    /// <summary>A tiny next-token model: token + position embeddings, one softmax attention mixing step, cross-entropy.</summary>
    public const string Sequence = """
        using System;
        using Kiln;
        namespace Golden;

        [Model]
        public partial class TinySequenceModel(int vocab = 16, int dim = 8, int context = 4)
        {
            Embedding tokens = new(vocab, dim);
            Embedding positions = new(context, dim);
            Linear query = new(dim, dim, bias: false), key = new(dim, dim, bias: false);
            Linear head = new(dim, vocab);

            public Tensor Forward([Shape("B", "context")] Tensor<int> ids)
            {
                var h = tokens.Forward(ids) + positions.Forward(Ops.Arange(context));
                var scores = Ops.MatMul(query.Forward(h), key.Forward(h).T) / (float)Math.Sqrt(dim);
                h = h + Ops.MatMul(Ops.Softmax(scores, -1), h);
                return head.Forward(h);
            }

            [Loss]
            public Tensor Loss([Shape("B", "context")] Tensor<int> ids, [Shape("B", "context")] Tensor<int> next) =>
                Ops.CrossEntropy(Forward(ids), next);
        }
        """;

    [Theory]
    [InlineData("Mlp", Mlp)]
    [InlineData("SpiralClassifier", Residual)]
    [InlineData("TinySequenceModel", Sequence)]
    public void Optimised_train_IR_matches_its_golden_file(string name, string source)
    {
        var (model, diagnostics) = Pipeline.Compile(GeneratorHarness.Spec(source), false);
        Assert.True(model is not null, $"{name} did not compile: " + string.Join("; ", diagnostics.Select(d => d.Id + " " + string.Join(", ", d.Args))));
        AssertMatchesGolden(name + ".ir.txt", IrPrinter.Print(model!.Train));
    }

    [Theory]
    [InlineData("Mlp", Mlp)]
    [InlineData("SpiralClassifier", Residual)]
    [InlineData("TinySequenceModel", Sequence)]
    public void Generated_csharp_matches_its_golden_file(string name, string source)
    {
        var (_, diagnostics, result) = GeneratorHarness.Run(source);
        Assert.Empty(diagnostics.Where(d => d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error));
        var generated = result.Results.Single().GeneratedSources.Single(s => s.HintName == $"Golden.{name}.g.cs");
        AssertMatchesGolden(name + ".g.cs.txt", generated.SourceText.ToString());
    }

    internal static void AssertMatchesGolden(string fileName, string actual)
    {
        actual = Normalize(actual);
        if (Environment.GetEnvironmentVariable(BlessVariable) == "1")
        {
            var target = Path.Combine(SourceGoldenDirectory(), fileName);
            File.WriteAllText(target, actual);
            return;
        }

        var goldenPath = Path.Combine(AppContext.BaseDirectory, "Golden", fileName);
        var expected = File.Exists(goldenPath) ? Normalize(File.ReadAllText(goldenPath)) : null;
        if (expected == actual) return;

        var actualPath = Path.Combine(AppContext.BaseDirectory, "Golden", Path.GetFileNameWithoutExtension(fileName) + ".actual.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(actualPath)!);
        File.WriteAllText(actualPath, actual);
        var how = $"Review the difference, then re-bless with `{BlessVariable}=1 dotnet test tests/Kiln.Generators.Tests --filter FullyQualifiedName~Golden` " +
                  $"(rewrites tests/Kiln.Generators.Tests/Golden/{fileName}).";
        if (expected is null)
            Assert.Fail($"There is no golden file {fileName}; the actual text is in {actualPath}. {how}");

        var e = expected.Split('\n');
        var a = actual.Split('\n');
        int line = 0;
        while (line < e.Length && line < a.Length && e[line] == a[line]) line++;
        Assert.Fail($"{fileName} differs from its golden file at line {line + 1}:\n" +
                    $"  golden: {(line < e.Length ? e[line] : "<end of file>")}\n" +
                    $"  actual: {(line < a.Length ? a[line] : "<end of file>")}\n" +
                    $"The actual text is in {actualPath}. {how}");
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n");

    /// <summary>tests/Kiln.Generators.Tests/Golden in the source tree, found by walking up from the test assembly.</summary>
    private static string SourceGoldenDirectory()
    {
        var golden = RepoFiles.Path("tests/Kiln.Generators.Tests/Golden");
        Directory.CreateDirectory(golden);
        return golden;
    }
}

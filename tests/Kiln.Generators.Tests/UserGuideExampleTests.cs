using System;
using System.Linq;
using System.Text.RegularExpressions;
using Kiln.Runtime;
using Xunit;

namespace Kiln.Generators.Tests;

/// <summary>
/// The model and module declarations in docs/user-guide.md compile as written and the model trains at depths
/// other than its default, so the guide cannot drift from what the generator accepts.
/// </summary>
public class UserGuideExampleTests
{
    /// <summary>The guide's C# blocks that declare models or modules, joined into one file.</summary>
    private static string Declarations()
    {
        var guide = RepoFiles.Read("docs/user-guide.md").Replace("\r\n", "\n");
        var blocks = Regex.Matches(guide, "```csharp\n(?<code>.*?)```", RegexOptions.Singleline)
            .Select(m => m.Groups["code"].Value)
            .Where(c => c.Contains("[Module]", StringComparison.Ordinal) || c.Contains("[Model]", StringComparison.Ordinal))
            .ToList();
        Assert.True(blocks.Count >= 2, "the user guide should declare its example model and the user-written modules");
        var body = string.Join("\n", blocks).Replace("using Kiln;", "");
        return "using Kiln;\nnamespace Guide;\n" + body;
    }

    [Fact]
    public void The_guide_declarations_compile_and_the_example_model_runs_at_any_depth()
    {
        var asm = GeneratorHarness.Build(Declarations());
        foreach (var depth in new[] { 1, 2, 5 })
        {
            var program = GeneratorHarness.CreateProgram(asm, "Guide.Regressor", 8, 16, depth);
            program.InitParameters(3);
            var up = program.Parameters.Single(p => p.Name == "blocks.up.weight");
            Assert.Equal(new[] { depth, 64, 16 }, up.Shape);
            var rng = new Random(depth);
            var x = Enumerable.Range(0, 4 * 8).Select(_ => (float)rng.NextDouble()).ToArray();
            var loss = program.EvalLoss(new Batch(("x", TensorData.Float(x, 4, 8)), ("y", TensorData.Float(new float[] { 1, 0, 1, 0 }, 4, 1))));
            Assert.True(float.IsFinite(loss), $"depth {depth}: loss {loss}");
        }
    }
}

using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace Kiln.Generators.Tests;

/// <summary>What the parallelism tests share: the library GPT as source, and a slab comparison that names the parameter.</summary>
internal static class ParallelTestModels
{
    /// <summary>
    /// A GPT from the module library (tied embedding, learned positions, GptBlock loop, final LayerNorm) in namespace
    /// <paramref name="ns"/>, with the [Parallel] declaration <paramref name="parallel"/> (null: none) and, with
    /// <paramref name="tensor"/>, a <c>tensor</c> hyperparameter passed to the blocks.
    /// </summary>
    public static string Gpt(string ns, string name, string? parallel, int vocab, int context, int dim, int heads, int layers, bool tensor) => $$"""
        using Kiln;
        using Kiln.Nn;
        namespace {{ns}};

        [Model{{(parallel is null ? "" : $", Parallel({parallel})")}}]
        public partial class {{name}}(int vocab = {{vocab}}, int context = {{context}}, int dim = {{dim}}, int heads = {{heads}}, int layers = {{layers}}{{(tensor ? ", int tensor = 1" : "")}})
        {
            TiedEmbedding tokens = new(vocab, dim);
            LearnedPositions positions = new(context, dim);
            GptBlock[] blocks = Module.Repeat(layers, _ => new GptBlock(dim, heads{{(tensor ? ", tensor" : "")}}));
            LayerNorm final = new(dim);

            public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
            {
                var x = tokens.Forward(idx) + positions.Forward(idx.Dim(1));
                foreach (var block in blocks) x = block.Forward(x);
                return tokens.Logits(final.Forward(x));
            }

            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
        }
        """;

    /// <summary>
    /// Every value within <paramref name="rtol"/> × the largest expected magnitude (at least 1e-3); a failure names the
    /// parameter of <paramref name="names"/> the element belongs to.
    /// </summary>
    public static void AssertClose(string what, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double rtol, IReadOnlyList<Kiln.Runtime.ParameterInfo>? names = null)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 1e-3;
        foreach (var v in expected) scale = Math.Max(scale, Math.Abs(v));
        for (int i = 0; i < expected.Length; i++)
        {
            if (Math.Abs(actual[i] - expected[i]) <= rtol * scale) continue;
            var p = names?.FirstOrDefault(x => x.Offset <= i && i < x.Offset + x.Length);
            Assert.Fail($"{what}[{i}]{(p is null ? "" : $" ({p.Name} element {i - p.Offset})")}: {actual[i]:R} vs one device {expected[i]:R} (tolerance {rtol * scale:G3})");
        }
    }
}

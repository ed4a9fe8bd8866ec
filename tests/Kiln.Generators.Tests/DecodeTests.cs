using System;
using System.Linq;
using System.Reflection;
using Kiln.Runtime;
using Xunit;

namespace Kiln.Generators.Tests;

/// <summary>
/// Generation with a KV cache: the decode program the generator derives from Forward (new positions only, attention
/// against cached keys and values) gives the full forward's logits position by position, and cached generation gives
/// the same tokens as uncached generation (greedy and sampled, past the context window), for GPT-2 and Llama blocks,
/// with head sizes on both CPU kernel paths. Models that do not qualify have no decode program, and a model whose
/// decode program would be wrong is refused at the first step.
/// </summary>
public sealed class DecodeTests
{
    private const string Source = """
        using Kiln;
        using Kiln.Nn;
        namespace D;

        // Fused attention, but the sequence mean mixes positions outside it: its decode program would be wrong.
        [Model]
        public partial class Mixer(int vocab = 21, int dim = 32, int heads = 2)
        {
            TiedEmbedding tokens = new(vocab, dim);
            CausalSelfAttention attention = new(dim, heads);
            public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
            {
                var x = tokens.Forward(idx);
                x = x + attention.Forward(x) + Ops.Mean(x, 1, true);
                return tokens.Logits(x);
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
        }

        // Attention written as the composition: no decode program.
        [Model]
        public partial class Composed(int vocab = 21, int dim = 16)
        {
            TiedEmbedding tokens = new(vocab, dim);
            public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
            {
                var x = tokens.Forward(idx);
                var t = idx.Dim(1);
                var pos = Ops.ToFloat(Ops.Arange(t));
                var causal = Ops.Less(Ops.Reshape(pos, 1, t), Ops.Reshape(pos, t, 1) + 0.5f);
                var a = Ops.Softmax(Ops.Where(causal, Ops.MatMul(x, Ops.Transpose(x, 1, 2)), float.NegativeInfinity), -1);
                return tokens.Logits(x + Ops.MatMul(a, x));
            }
            [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
        }
        """;

    private static readonly Lazy<Assembly> Models = new(() => GeneratorHarness.Build(Source));

    private static ModelProgram Program(string model, int dim)
    {
        // D.Gpt and D.Llama are the library's models (L.GptModel, L.LlamaModel) at these sizes: vocabulary 21, context 16,
        // dim 32 (or the given one), 2 heads, 2 layers, Llama's hidden 3 × dim.
        int width = dim == 0 ? 32 : dim;
        var program = model switch
        {
            "D.Gpt" => GeneratorHarness.CreateProgram(LibraryModuleTests.Models, "L.GptModel", 21, 16, width, 2, 2),
            "D.Llama" => GeneratorHarness.CreateProgram(LibraryModuleTests.Models, "L.LlamaModel", 21, width, 2, 3 * width, 2),
            _ => GeneratorHarness.CreateProgram(Models.Value, model),
        };
        program.InitParameters(17);
        // Larger weights than the init so the logits are far from uniform (a wrong cache would show).
        for (int i = 0; i < program.Params.Length; i++) program.Params[i] *= 3f;
        program.ParametersChanged();
        return program;
    }

    [Theory]
    [InlineData("D.Gpt", 0)]
    [InlineData("D.Gpt", 128)]
    [InlineData("D.Llama", 0)]
    [InlineData("D.Llama", 128)]
    public void Decoding_position_by_position_gives_the_full_forward_logits(string model, int dim)
    {
        var program = Program(model, dim);
        Assert.True(program.SupportsDecode, $"{model} should have a decode program");
        Assert.Contains(program.Programs, p => p.Name == "decode");
        var rng = new Random(4);
        var sequence = Enumerable.Range(0, 14).Select(_ => rng.Next(21)).ToArray();
        program.ResetDecode(16);
        // Prefill 5 tokens, then one at a time (and once two at a time).
        var chunks = new[] { 5, 1, 1, 2, 1, 1, 1, 1, 1 };
        int at = 0;
        foreach (int n in chunks)
        {
            var step = program.Decode(new Batch(("idx", TensorData.Int(sequence.AsSpan(at, n).ToArray(), 1, n)))).Floats!;
            at += n;
            var full = program.Forward(new Batch(("idx", TensorData.Int(sequence.AsSpan(0, at).ToArray(), 1, at)))).Floats!;
            int vocab = full.Length / at;
            Assert.Equal(n * vocab, step.Length);
            for (int r = 0; r < n; r++)
                for (int v = 0; v < vocab; v++)
                {
                    float a = step[r * vocab + v], b = full[(at - n + r) * vocab + v];
                    if (float.IsNegativeInfinity(b)) { Assert.True(float.IsNegativeInfinity(a)); continue; }
                    Assert.True(Math.Abs(a - b) <= 1e-4f * (1 + Math.Abs(b)), $"{model} dim {dim}: position {at - n + r}, logit {v}: cached {a} vs full {b}");
                }
        }
        Assert.Equal(at, program.DecodePosition);
        var over = Assert.Throws<InvalidOperationException>(() => program.Decode(new Batch(("idx", TensorData.Int(new int[3], 1, 3)))));
        Assert.Contains("holds 16 positions", over.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("D.Gpt", 0, 0f)]
    [InlineData("D.Gpt", 0, 1f)]
    [InlineData("D.Gpt", 128, 0.8f)]
    [InlineData("D.Llama", 0, 1f)]
    public void Cached_and_uncached_generation_give_the_same_tokens(string model, int dim, float temperature)
    {
        var program = Program(model, dim);
        var sampling = new SamplingOptions { Temperature = temperature, TopK = temperature > 0 ? 10 : 0, Seed = 9 };
        var prompt = new[] { 3, 1, 4, 1, 5 };
        // 30 new tokens with a 16-token context: the window slides past the cache's capacity too.
        var uncached = Generation.Generate(program, prompt, 30, 16, sampling, useCache: false);
        var cached = Generation.Generate(program, prompt, 30, 16, sampling, useCache: true);
        Assert.Equal(uncached, cached);
        Assert.Equal(30, cached.Length);
        // A stop token ends both at its first occurrence (and is kept).
        int stop = uncached[4];
        var expected = uncached.Take(Array.IndexOf(uncached, stop) + 1).ToArray();
        Assert.Equal(expected, Generation.Generate(program, prompt, 30, 16, sampling, stopToken: stop, useCache: true));
        Assert.Equal(expected, Generation.Generate(program, prompt, 30, 16, sampling, stopToken: stop, useCache: false));
    }

    [Fact]
    public void A_model_that_mixes_positions_outside_attention_is_refused_at_the_first_cached_step()
    {
        var program = Program("D.Mixer", 0);
        Assert.True(program.SupportsDecode);
        var e = Assert.Throws<InvalidOperationException>(() => Generation.Generate(program, new[] { 1, 2, 3 }, 5, 16, new SamplingOptions { Temperature = 0 }));
        Assert.Contains("mixes positions outside Ops.Attention", e.Message, StringComparison.Ordinal);
        Assert.Equal(5, Generation.Generate(program, new[] { 1, 2, 3 }, 5, 16, new SamplingOptions { Temperature = 0 }, useCache: false).Length);
    }

    [Fact]
    public void A_model_without_fused_causal_attention_has_no_decode_program()
    {
        var program = Program("D.Composed", 0);
        Assert.False(program.SupportsDecode);
        Assert.DoesNotContain(program.Programs, p => p.Name == "decode");
        var e = Assert.Throws<NotSupportedException>(() => program.ResetDecode(8));
        Assert.Contains("no decode program", e.Message, StringComparison.Ordinal);
        // Generation falls back to the uncached path by itself.
        Assert.Equal(4, Generation.Generate(program, new[] { 1, 2 }, 4, 8, new SamplingOptions { Temperature = 0 }).Length);
    }
}

// Kiln's library of modules, written in the same DSL as user code. The Kiln generator adds this file to every
// compilation that uses it (as Kiln.Nn.g.cs), so these modules compile, differentiate and fuse like the user's own.
// They are internal: each assembly has its own copy, and a model uses them as fields (Kiln.Nn.GptBlock block = new(...)).
#nullable enable
namespace Kiln.Nn
{
    using global::System;

    /// <summary>RMSNorm: x / √(mean(x²) + eps) · gain, over the last axis (no mean subtraction, no bias).</summary>
    [Module]
    internal partial class RmsNorm(int dim, float eps = 1e-6f)
    {
        Tensor gain = Parameter.Ones(dim);

        public Tensor Forward(Tensor x) => x * Ops.Rsqrt(Ops.Mean(Ops.Square(x), -1, true) + eps) * gain;
    }

    /// <summary>
    /// The GPT-2 MLP: Linear(dim → hidden), GELU, Linear(hidden → dim). With <paramref name="tensor"/> &gt; 1 this is one
    /// tensor-parallel rank's part (Megatron): <c>up</c> column-parallel, <c>down</c> row-parallel, one all-reduce forward
    /// and one backward; <paramref name="hidden"/> must divide by <paramref name="tensor"/>.
    /// </summary>
    [Module]
    internal partial class GeluMlp(int dim, int hidden, int tensor = 1)
    {
        [ColumnParallel] Linear up = new(dim, hidden / tensor);
        [RowParallel] Linear down = new(hidden / tensor, dim);

        public Tensor Forward(Tensor x) =>
            Ops.TensorReduce(Ops.MatMul(Ops.Gelu(up.Forward(Ops.TensorReplicate(x))), down.Weight.T)) + down.Bias;
    }

    /// <summary>The gated MLP of Llama and PaLM: down(SiLU(gate(x)) · up(x)), without biases; tensor-parallel like <see cref="GeluMlp"/>.</summary>
    [Module]
    internal partial class SwiGlu(int dim, int hidden, int tensor = 1)
    {
        [ColumnParallel] Linear gate = new(dim, hidden / tensor, false);
        [ColumnParallel] Linear up = new(dim, hidden / tensor, false);
        [RowParallel] Linear down = new(hidden / tensor, dim, false);

        public Tensor Forward(Tensor x)
        {
            var shared = Ops.TensorReplicate(x);
            return Ops.TensorReduce(down.Forward(Ops.Silu(gate.Forward(shared)) * up.Forward(shared)));
        }
    }

    /// <summary>
    /// Rotary position embedding (RoPE, in the half-split layout of GPT-NeoX and Llama) of per-head vectors
    /// [B, heads, T, headDim]: the two halves of each vector are rotated by angles p·10000^(−2i/headDim) for position p.
    /// No parameters. <paramref name="headDim"/> must be even.
    /// </summary>
    [Module]
    internal partial class RotaryEmbedding(int headDim)
    {
        public Tensor Forward(Tensor x)
        {
            var t = x.Dim(2);
            var half = headDim / 2;
            var frequencies = Ops.Exp(Ops.ToFloat(Ops.Arange(half)) * (-2f * MathF.Log(10000f) / headDim));
            var angles = Ops.Reshape(Ops.ToFloat(Ops.Arange(t)), t, 1) * Ops.Reshape(frequencies, 1, half);
            var cos = Ops.Cos(angles);
            var sin = Ops.Sin(angles);
            var x1 = Ops.Slice(x, -1, 0, half);
            var x2 = Ops.Slice(x, -1, half, headDim);
            return Ops.Concat(-1, x1 * cos - x2 * sin, x2 * cos + x1 * sin);
        }
    }

    /// <summary>
    /// Causal multi-head self-attention with one fused Q/K/V projection: each position attends to itself and the ones
    /// before it, through the fused attention op (Ops.Attention: the T×T scores are never stored). With
    /// <paramref name="rotary"/>, queries and keys get rotary position embeddings. With <paramref name="tensor"/> &gt; 1
    /// this is one tensor-parallel rank's part (Megatron): it holds heads / tensor whole heads — the Q/K/V projection
    /// column-parallel in three groups, the output projection row-parallel — and <paramref name="heads"/> must divide
    /// by <paramref name="tensor"/>.
    /// </summary>
    [Module]
    internal partial class CausalSelfAttention(int dim, int heads, bool rotary = false, int tensor = 1)
    {
        [ColumnParallel(Groups = 3)] Linear qkv = new(dim, 3 * (dim / tensor));
        [RowParallel] Linear proj = new(dim / tensor, dim);
        RotaryEmbedding rope = new(dim / heads);

        public Tensor Forward(Tensor x)
        {
            var b = x.Dim(0);
            var t = x.Dim(1);
            var dh = dim / heads;
            var local = dim / tensor;
            var h = heads / tensor;
            var z = qkv.Forward(Ops.TensorReplicate(x));
            var q = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 0, local), b, t, h, dh), 0, 2, 1, 3);
            var k = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, local, 2 * local), b, t, h, dh), 0, 2, 1, 3);
            var v = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 2 * local, 3 * local), b, t, h, dh), 0, 2, 1, 3);
            if (rotary)
            {
                q = rope.Forward(q);
                k = rope.Forward(k);
            }
            // Fused (flash-style) attention: the T×T scores never exist in memory.
            var attention = Ops.Attention(q, k, v, true);
            return Ops.TensorReduce(Ops.MatMul(Ops.Reshape(Ops.Permute(attention, 0, 2, 1, 3), b, t, local), proj.Weight.T)) + proj.Bias;
        }
    }

    /// <summary>
    /// Multi-head attention of queries from <c>x</c> [B, T, dim] over keys and values from <c>memory</c> [B, S, dim]
    /// (cross-attention in an encoder–decoder; self-attention without a mask when memory is x).
    /// </summary>
    [Module]
    internal partial class MultiHeadAttention(int dim, int heads)
    {
        Linear query = new(dim, dim);
        Linear keyValue = new(dim, 2 * dim);
        Linear proj = new(dim, dim);

        public Tensor Forward(Tensor x, Tensor memory)
        {
            var b = x.Dim(0);
            var t = x.Dim(1);
            var s = memory.Dim(1);
            var dh = dim / heads;
            var q = Ops.Permute(Ops.Reshape(query.Forward(x), b, t, heads, dh), 0, 2, 1, 3);
            var kv = keyValue.Forward(memory);
            var k = Ops.Permute(Ops.Reshape(Ops.Slice(kv, -1, 0, dim), b, s, heads, dh), 0, 2, 1, 3);
            var v = Ops.Permute(Ops.Reshape(Ops.Slice(kv, -1, dim, 2 * dim), b, s, heads, dh), 0, 2, 1, 3);
            return proj.Forward(Ops.Reshape(Ops.Permute(Ops.Attention(q, k, v), 0, 2, 1, 3), b, t, dim));
        }

        /// <summary>As <see cref="Forward"/>, attending only to the memory positions where <c>keep</c> [B, S] is 1 (0: padding).</summary>
        public Tensor Masked(Tensor x, Tensor memory, Tensor keep)
        {
            var b = x.Dim(0);
            var t = x.Dim(1);
            var s = memory.Dim(1);
            var dh = dim / heads;
            var q = Ops.Permute(Ops.Reshape(query.Forward(x), b, t, heads, dh), 0, 2, 1, 3);
            var kv = keyValue.Forward(memory);
            var k = Ops.Permute(Ops.Reshape(Ops.Slice(kv, -1, 0, dim), b, s, heads, dh), 0, 2, 1, 3);
            var v = Ops.Permute(Ops.Reshape(Ops.Slice(kv, -1, dim, 2 * dim), b, s, heads, dh), 0, 2, 1, 3);
            return proj.Forward(Ops.Reshape(Ops.Permute(Ops.Attention(q, k, v, keep), 0, 2, 1, 3), b, t, dim));
        }
    }

    /// <summary>
    /// A GPT-2 block: x + attention(LayerNorm(x)), then + MLP(LayerNorm(x)) with a 4·dim GELU MLP. With
    /// <paramref name="tensor"/> &gt; 1, one tensor-parallel rank's part (attention heads and MLP units split, norms replicated).
    /// </summary>
    [Module]
    internal partial class GptBlock(int dim, int heads, int tensor = 1)
    {
        LayerNorm ln1 = new(dim), ln2 = new(dim);
        CausalSelfAttention attention = new(dim, heads, false, tensor);
        GeluMlp mlp = new(dim, 4 * dim, tensor);

        public Tensor Forward(Tensor x)
        {
            x = x + attention.Forward(ln1.Forward(x));
            return x + mlp.Forward(ln2.Forward(x));
        }
    }

    /// <summary>A Llama block: pre-norm with RMSNorm, rotary causal attention and a SwiGLU MLP of <paramref name="hidden"/> units; tensor-parallel like <see cref="GptBlock"/>.</summary>
    [Module]
    internal partial class LlamaBlock(int dim, int heads, int hidden, int tensor = 1)
    {
        RmsNorm norm1 = new(dim), norm2 = new(dim);
        CausalSelfAttention attention = new(dim, heads, true, tensor);
        SwiGlu mlp = new(dim, hidden, tensor);

        public Tensor Forward(Tensor x)
        {
            x = x + attention.Forward(norm1.Forward(x));
            return x + mlp.Forward(norm2.Forward(x));
        }
    }

    /// <summary>
    /// Learned position embeddings for sequences of up to <paramref name="context"/> tokens, initialised N(0, 0.02) as in
    /// GPT-2 (PyTorch's Embedding default, N(0, 1), would swamp token embeddings of that scale).
    /// </summary>
    [Module]
    internal partial class LearnedPositions(int context, int dim)
    {
        Tensor table = Parameter.Normal(0.02f, context, dim);

        /// <summary>The embeddings of positions 0 … length − 1: [length, dim] (length ≤ context, checked when a batch arrives).</summary>
        public Tensor Forward(int length) => Ops.Gather(table, Ops.Arange(length));
    }

    /// <summary>
    /// A token embedding whose transpose is also the output layer (GPT-2's tied weights). The table has
    /// <paramref name="vocab"/> rounded up to a multiple of 64 rows (faster matmuls); the logits of the padding rows are
    /// −∞, so they take no probability in the loss or in sampling. Initialised N(0, 0.02).
    /// </summary>
    [Module]
    internal partial class TiedEmbedding(int vocab, int dim)
    {
        Tensor weight = Parameter.Normal(0.02f, Module.RoundUp(vocab, 64), dim);

        /// <summary>The embeddings of <c>idx</c>: [..., dim].</summary>
        public Tensor Forward(Tensor<int> idx) => Ops.Gather(weight, idx);

        /// <summary>The logits of <c>x</c> [..., dim] over the padded vocabulary, −∞ past <paramref name="vocab"/>.</summary>
        public Tensor Logits(Tensor x)
        {
            var column = Ops.ToFloat(Ops.Arange(Module.RoundUp(vocab, 64)));
            return Ops.Where(Ops.Less(column, column * 0f + (vocab - 0.5f)), Ops.MatMul(x, weight.T), float.NegativeInfinity);
        }
    }
}

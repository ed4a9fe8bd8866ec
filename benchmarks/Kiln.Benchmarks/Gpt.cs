using System;
using Kiln;

namespace Kiln.Benchmarks;

/// <summary>Causal multi-head self-attention written with Kiln's primitive ops (the transformer issue brings a fused layer).</summary>
[Module]
public partial class CausalSelfAttention(int dim, int heads)
{
    Linear qkv = new(dim, 3 * dim);
    Linear proj = new(dim, dim);

    public Tensor Forward(Tensor x)
    {
        var b = x.Dim(0);
        var t = x.Dim(1);
        var dh = dim / heads;
        var z = qkv.Forward(x);
        var q = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 0, dim), b, t, heads, dh), 0, 2, 1, 3);
        var k = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, dim, 2 * dim), b, t, heads, dh), 0, 2, 1, 3);
        var v = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 2 * dim, 3 * dim), b, t, heads, dh), 0, 2, 1, 3);
        var pos = Ops.ToFloat(Ops.Arange(t));
        var allowed = Ops.Less(Ops.Reshape(pos, 1, t), Ops.Reshape(pos, t, 1) + 0.5f);
        var scores = Ops.MatMul(q, k.T) * (1f / (float)Math.Sqrt(dh));
        var att = Ops.Softmax(Ops.Where(allowed, scores, -1e9f), -1);
        var o = Ops.Reshape(Ops.Permute(Ops.MatMul(att, v), 0, 2, 1, 3), b, t, dim);
        return proj.Forward(o);
    }
}

/// <summary>A pre-norm transformer block (GPT-2 layout).</summary>
[Module]
public partial class GptBlock(int dim, int heads)
{
    LayerNorm ln1 = new(dim), ln2 = new(dim);
    CausalSelfAttention attn = new(dim, heads);
    Linear fc = new(dim, 4 * dim), down = new(4 * dim, dim);

    public Tensor Forward(Tensor x)
    {
        x = x + attn.Forward(ln1.Forward(x));
        return x + down.Forward(Ops.Gelu(fc.Forward(ln2.Forward(x))));
    }
}

/// <summary>A GPT-shaped language model (token + position embeddings, pre-norm blocks, tied output head).</summary>
[Model]
public partial class Gpt(int vocab = 128, int context = 256, int dim = 384, int heads = 6, int layers = 6)
{
    Embedding wte = new(vocab, dim), wpe = new(context, dim);
    GptBlock[] h = Module.Repeat(layers, _ => new GptBlock(dim, heads));
    LayerNorm lnf = new(dim);

    public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
    {
        var x = wte.Forward(idx) + wpe.Forward(Ops.Arange(idx.Dim(1)));
        foreach (var block in h) x = block.Forward(x);
        return Ops.MatMul(lnf.Forward(x), wte.Weight.T);
    }

    [Loss]
    public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
}

/// <summary>
/// The same GPT shape built from Kiln's module library (Kiln.Nn): tied embedding padded to a multiple of 64, learned
/// positions, GPT-2 blocks with the fused attention op, final LayerNorm. <c>gpt --attention=fused</c> (the default) runs it.
/// </summary>
[Model]
public partial class LibGpt(int vocab = 128, int context = 256, int dim = 384, int heads = 6, int layers = 6)
{
    Kiln.Nn.TiedEmbedding tokens = new(vocab, dim);
    Kiln.Nn.LearnedPositions positions = new(context, dim);
    Kiln.Nn.GptBlock[] blocks = Module.Repeat(layers, _ => new Kiln.Nn.GptBlock(dim, heads));
    LayerNorm final = new(dim);

    public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
    {
        var x = tokens.Forward(idx) + positions.Forward(idx.Dim(1));
        foreach (var block in blocks) x = block.Forward(x);
        return tokens.Logits(final.Forward(x));
    }

    [Loss]
    public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
}

/// <summary>One attention layer (QKV projection, causal attention, output projection) with the fused op.</summary>
[Model]
public partial class AttentionFused(int dim = 384, int heads = 6)
{
    Kiln.Nn.CausalSelfAttention attention = new(dim, heads);

    public Tensor Forward([Shape("B", "T", "dim")] Tensor x) => attention.Forward(x);

    [Loss]
    public Tensor Loss([Shape("B", "T", "dim")] Tensor x, [Shape("B", "T", "dim")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

/// <summary>The same layer with the attention written as the composition (MatMul, Where, Softmax, MatMul).</summary>
[Model]
public partial class AttentionComposed(int dim = 384, int heads = 6)
{
    CausalSelfAttention attention = new(dim, heads);

    public Tensor Forward([Shape("B", "T", "dim")] Tensor x) => attention.Forward(x);

    [Loss]
    public Tensor Loss([Shape("B", "T", "dim")] Tensor x, [Shape("B", "T", "dim")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

/// <summary>Attention alone (no projections): per-channel scales of x as q, k and v (so the backward runs), causal, fused.</summary>
[Model]
public partial class AttentionOnlyFused(int dim = 384, int heads = 6)
{
    Tensor sq = Parameter.Ones(dim), sk = Parameter.Ones(dim), sv = Parameter.Ones(dim);

    public Tensor Forward([Shape("B", "T", "dim")] Tensor x)
    {
        var b = x.Dim(0); var t = x.Dim(1); var dh = dim / heads;
        var q = Ops.Permute(Ops.Reshape(x * sq, b, t, heads, dh), 0, 2, 1, 3);
        var k = Ops.Permute(Ops.Reshape(x * sk, b, t, heads, dh), 0, 2, 1, 3);
        var v = Ops.Permute(Ops.Reshape(x * sv, b, t, heads, dh), 0, 2, 1, 3);
        return Ops.Reshape(Ops.Permute(Ops.Attention(q, k, v, true), 0, 2, 1, 3), b, t, dim);
    }

    [Loss]
    public Tensor Loss([Shape("B", "T", "dim")] Tensor x, [Shape("B", "T", "dim")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

/// <summary>The same as the composition (MatMul, Where, Softmax, MatMul).</summary>
[Model]
public partial class AttentionOnlyComposed(int dim = 384, int heads = 6)
{
    Tensor sq = Parameter.Ones(dim), sk = Parameter.Ones(dim), sv = Parameter.Ones(dim);

    public Tensor Forward([Shape("B", "T", "dim")] Tensor x)
    {
        var b = x.Dim(0); var t = x.Dim(1); var dh = dim / heads;
        var q = Ops.Permute(Ops.Reshape(x * sq, b, t, heads, dh), 0, 2, 1, 3);
        var k = Ops.Permute(Ops.Reshape(x * sk, b, t, heads, dh), 0, 2, 1, 3);
        var v = Ops.Permute(Ops.Reshape(x * sv, b, t, heads, dh), 0, 2, 1, 3);
        var pos = Ops.ToFloat(Ops.Arange(t));
        var allowed = Ops.Less(Ops.Reshape(pos, 1, t), Ops.Reshape(pos, t, 1) + 0.5f);
        var scores = Ops.MatMul(q, k.T) * (1f / MathF.Sqrt(dh));
        var a = Ops.MatMul(Ops.Softmax(Ops.Where(allowed, scores, float.NegativeInfinity), -1), v);
        return Ops.Reshape(Ops.Permute(a, 0, 2, 1, 3), b, t, dim);
    }

    [Loss]
    public Tensor Loss([Shape("B", "T", "dim")] Tensor x, [Shape("B", "T", "dim")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

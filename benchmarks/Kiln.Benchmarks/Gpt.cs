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

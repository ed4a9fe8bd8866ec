using Kiln;

namespace KilnGpt;

/// <summary>Causal multi-head self-attention: one fused Q/K/V projection, each position attends to itself and the past.</summary>
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
        // [B, T, dim] → [B, heads, T, dh] for each of q, k, v.
        var q = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 0, dim), b, t, heads, dh), 0, 2, 1, 3);
        var k = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, dim, 2 * dim), b, t, heads, dh), 0, 2, 1, 3);
        var v = Ops.Permute(Ops.Reshape(Ops.Slice(z, -1, 2 * dim, 3 * dim), b, t, heads, dh), 0, 2, 1, 3);
        var pos = Ops.ToFloat(Ops.Arange(t));
        var causal = Ops.Less(Ops.Reshape(pos, 1, t), Ops.Reshape(pos, t, 1) + 0.5f);   // key position ≤ query position
        var scores = Ops.MatMul(q, k.T) * (1f / MathF.Sqrt(dh));
        var attention = Ops.Softmax(Ops.Where(causal, scores, -1e9f), -1);
        var o = Ops.Reshape(Ops.Permute(Ops.MatMul(attention, v), 0, 2, 1, 3), b, t, dim);
        return proj.Forward(o);
    }
}

/// <summary>A pre-norm transformer block (GPT-2 layout): attention and a GELU MLP, each added to the residual stream.</summary>
[Module]
public partial class Block(int dim, int heads)
{
    LayerNorm ln1 = new(dim), ln2 = new(dim);
    CausalSelfAttention attention = new(dim, heads);
    Linear up = new(dim, 4 * dim), down = new(4 * dim, dim);

    public Tensor Forward(Tensor x)
    {
        x = x + attention.Forward(ln1.Forward(x));
        return x + down.Forward(Ops.Gelu(up.Forward(ln2.Forward(x))));
    }
}

/// <summary>
/// A GPT language model: token and learned position embeddings (parameters declared here, initialised N(0, 0.02) as
/// in GPT-2), <paramref name="layers"/> blocks (one loop in the generated program, so the depth is chosen when the
/// model is constructed), a final norm and an output head tied to the token embedding. The loss is the cross-entropy
/// of the next token at every position.
/// </summary>
[Model]
public partial class Gpt(int vocab = 256, int context = 128, int dim = 128, int heads = 4, int layers = 4)
{
    Tensor tokens = Parameter.Normal(0.02f, vocab, dim);
    Tensor positions = Parameter.Normal(0.02f, context, dim);
    Block[] blocks = Module.Repeat(layers, _ => new Block(dim, heads));
    LayerNorm final = new(dim);

    public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
    {
        var x = Ops.Gather(tokens, idx) + Ops.Gather(positions, Ops.Arange(idx.Dim(1)));
        foreach (var block in blocks) x = block.Forward(x);
        return Ops.MatMul(final.Forward(x), tokens.T);   // logits [B, T, vocab]
    }

    [Loss]
    public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
}

using Kiln;
using Kiln.Nn;

namespace Adder;

/// <summary>
/// A small GPT from Kiln's module library: a tied, padded token embedding (digits 0–9), learned positions,
/// <paramref name="layers"/> GPT-2 blocks and a final norm. The loss is the next-token cross-entropy, ignoring the
/// positions whose target is −100 (the digits of the question, which are not predictable).
/// </summary>
[Model]
public partial class AdderGpt(int context = 6, int dim = 64, int heads = 4, int layers = 2)
{
    TiedEmbedding tokens = new(10, dim);
    LearnedPositions positions = new(context, dim);
    GptBlock[] blocks = Module.Repeat(layers, _ => new GptBlock(dim, heads));
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

using Kiln;
using Kiln.Nn;

namespace TextGpt;

/// <summary>
/// A GPT language model from Kiln's module library: tied token embedding (padded to a multiple of 64), learned
/// positions, <paramref name="layers"/> GPT-2 blocks (one loop in the generated program), final LayerNorm. With
/// <paramref name="tensor"/> &gt; 1 the program is one tensor-parallel rank's part (the blocks' heads and MLP units split).
/// </summary>
[Model]
public partial class Gpt(int vocab = 256, int context = 128, int dim = 128, int heads = 4, int layers = 4, int tensor = 1)
{
    TiedEmbedding tokens = new(vocab, dim);
    LearnedPositions positions = new(context, dim);
    GptBlock[] blocks = Module.Repeat(layers, _ => new GptBlock(dim, heads, tensor));
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

// A valid pipeline layout: it runs, but the stages take the micro-batches one after another (a warning).
// allow: CS0234, CS0246 (Kiln.Nn is source the generator adds; the plain C# compile of the case does not see it)
using Kiln;
using Kiln.Nn;
namespace Corpus;

[Model, Parallel(Pipeline = 2, MicroBatches = 4)] // expect: KILN4006 "one after another"
public partial class Gpt(int vocab = 128, int context = 8, int dim = 16, int heads = 2, int layers = 2)
{
    TiedEmbedding tokens = new(vocab, dim);
    LearnedPositions positions = new(context, dim);
    GptBlock[] blocks = Module.Repeat(layers, _ => new GptBlock(dim, heads));
    LayerNorm final = new(dim);

    public Tensor Forward([Shape("B", "T")] Tensor<int> idx)
    {
        var x = tokens.Forward(idx) + positions.Forward(idx.Dim(1));
        foreach (var block in blocks) x = block.Forward(x);
        return tokens.Logits(final.Forward(x));
    }

    [Loss] public Tensor Loss([Shape("B", "T")] Tensor<int> idx, [Shape("B", "T")] Tensor<int> targets) => Ops.CrossEntropy(Forward(idx), targets);
}

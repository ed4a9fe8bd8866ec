using Kiln;

namespace KilnClassifier;

/// <summary>A block of the MLP: LayerNorm, Linear, GELU, with a residual connection.</summary>
[Module]
public partial class Block(int dim)
{
    LayerNorm norm = new(dim);
    Linear fc = new(dim, dim);

    public Tensor Forward(Tensor x) => x + Ops.Gelu(fc.Forward(norm.Forward(x)));
}

/// <summary>
/// An MLP classifier. The sizes are hyperparameters bound when the model is constructed, so one build serves any
/// CSV file: <c>new Classifier(features: 7, classes: 4)</c>.
/// </summary>
[Model]
public partial class Classifier(int features = 4, int classes = 3, int hidden = 64, int depth = 2)
{
    Linear input = new(features, hidden);
    Block[] blocks = Module.Repeat(depth, _ => new Block(hidden));
    Linear head = new(hidden, classes);

    public Tensor Forward([Shape("B", "features")] Tensor x)
    {
        var h = Ops.Gelu(input.Forward(x));
        foreach (var block in blocks) h = block.Forward(h);
        return head.Forward(h);   // logits [B, classes]
    }

    [Loss]
    public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> label) => Ops.CrossEntropy(Forward(x), label);
}

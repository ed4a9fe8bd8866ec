using Kiln;

namespace Spirals;

/// <summary>A pre-norm residual MLP block: x + W2·gelu(W1·norm(x)).</summary>
[Module]
public partial class ResidualBlock(int dim, int hidden)
{
    LayerNorm norm = new(dim);
    Linear up = new(dim, hidden);
    Linear down = new(hidden, dim);

    public Tensor Forward(Tensor x) => x + down.Forward(Ops.Gelu(up.Forward(norm.Forward(x))));
}

/// <summary>Classifies 2-D points with a stack of residual MLP blocks.</summary>
[Model]
public partial class SpiralClassifier(int features = 2, int dim = 64, int hidden = 128, int classes = 2, int depth = 3)
{
    Linear embed = new(features, dim);
    ResidualBlock[] blocks = Module.Repeat(depth, _ => new ResidualBlock(dim, hidden));
    LayerNorm final = new(dim);
    Linear head = new(dim, classes);

    public Tensor Forward([Shape("B", "features")] Tensor x)
    {
        var h = embed.Forward(x);
        foreach (var block in blocks)
            h = block.Forward(h);
        return head.Forward(final.Forward(h));
    }

    [Loss]
    public Tensor Loss([Shape("B", "features")] Tensor x, [Shape("B")] Tensor<int> label) =>
        Ops.CrossEntropy(Forward(x), label);
}

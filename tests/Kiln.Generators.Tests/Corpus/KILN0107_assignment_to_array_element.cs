// Arrays of layers are fixed at build time.
using Kiln;
namespace Corpus;

[Model]
public partial class Deep(int dim = 4, int depth = 2)
{
    Linear[] layers = Module.Repeat(depth, _ => new Linear(dim, dim));
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        layers[0] = new Linear(dim, dim); // expect: KILN0107 "layers[0]"
        foreach (var l in layers) x = l.Forward(x);
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

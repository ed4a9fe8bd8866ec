// Index 2 of a two-layer array.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear[] layers = Module.Repeat(2, _ => new Linear(dim, dim));
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(layers[2].Forward(x)); // expect: KILN1003 "index 2"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

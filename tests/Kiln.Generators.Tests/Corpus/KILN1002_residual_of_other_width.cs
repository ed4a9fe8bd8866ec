// A residual connection around a layer that changes the width.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear up = new(dim, 2 * dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(x + up.Forward(x)); // expect: KILN1002 "do not broadcast"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

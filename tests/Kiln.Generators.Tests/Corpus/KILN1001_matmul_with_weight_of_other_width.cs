// x [B, dim] times a [2·dim, dim] weight.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear wide = new(dim, 2 * dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(Ops.MatMul(x, wide.Weight)); // expect: KILN1001 "MatMul inner dimensions differ"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

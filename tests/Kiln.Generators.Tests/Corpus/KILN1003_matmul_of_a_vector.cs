// MatMul needs matrices; a [dim] vector must be reshaped first.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x, [Shape("dim")] Tensor v) => head.Forward(x * Ops.MatMul(v, head.Weight)); // expect: KILN1003 "rank"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("dim")] Tensor v, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x, v), y);
}

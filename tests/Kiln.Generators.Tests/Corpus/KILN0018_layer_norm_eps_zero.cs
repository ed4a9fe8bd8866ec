// A variance floor of zero divides by zero on a constant row.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    LayerNorm norm = new(dim, 0f); // expect: KILN0018 "eps"
    Linear head = new(dim, 1);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(norm.Forward(x)), y);
}

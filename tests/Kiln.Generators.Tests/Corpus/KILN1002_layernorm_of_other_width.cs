// LayerNorm(dim) over a [B, 2·dim] tensor.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear up = new(dim, 2 * dim);
    LayerNorm norm = new(dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(norm.Forward(up.Forward(x))); // expect: KILN1002 "LayerNorm"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

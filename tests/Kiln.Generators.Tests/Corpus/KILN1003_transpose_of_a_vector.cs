// '.T' needs a matrix.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x, [Shape("dim")] Tensor v) => head.Forward(x + v.T); // expect: KILN1003 ".T"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("dim")] Tensor v, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x, v), y);
}

// Columns 0..dim+1 of a dim-column tensor.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim + 1, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(Ops.Slice(x, 1, 0, dim + 1)); // expect: KILN1006 "Slice end"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

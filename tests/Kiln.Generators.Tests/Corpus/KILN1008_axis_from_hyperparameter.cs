// An axis must be a literal or constant.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4, int axis = 1)
{
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(Ops.Softmax(x, axis)); // expect: KILN1008 "axis"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

// The same input declared with different shapes on Forward and on the loss.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "3")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y); // expect: KILN1012 "dim"
}

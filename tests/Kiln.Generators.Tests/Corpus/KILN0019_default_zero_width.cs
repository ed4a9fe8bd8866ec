// A width of zero cannot hold anything.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 0) // expect: KILN0019 "dim"
{
    Linear head = new(dim, 1);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(x), y);
}

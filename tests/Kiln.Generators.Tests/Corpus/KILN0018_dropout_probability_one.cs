// Dropout with p = 1 drops everything and divides by zero.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Dropout drop = new(1f); // expect: KILN0018 "[0, 1)"
    Linear head = new(dim, 1);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(drop.Forward(x)), y);
}

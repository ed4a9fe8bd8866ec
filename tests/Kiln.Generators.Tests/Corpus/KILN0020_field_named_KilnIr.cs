// KilnIr is generated into the model class.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    int KilnIr = 3; // expect: KILN0020 "KilnIr"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(x) * KilnIr, y);
}

// A static layer would be shared by every model instance and is not part of the parameter table.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    static readonly Linear Shared = new(4, 1); // expect: KILN0025 "static"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Shared.Forward(x), y);
}

// The layer is declared but the loss never uses it (a warning).
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4) // expect: KILN2003 "does not depend on any parameter"
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "1")] Tensor p, [Shape("B", "1")] Tensor y) => Ops.MseLoss(p, y);
}

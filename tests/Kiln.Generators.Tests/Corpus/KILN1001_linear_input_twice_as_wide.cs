// The layer expects 2·dim features but gets dim.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear fc = new(2 * dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x); // expect: KILN1001 "expects inputs [..., 2*dim]"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

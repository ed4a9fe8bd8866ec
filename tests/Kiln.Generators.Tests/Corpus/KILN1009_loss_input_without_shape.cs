// Every tensor input needs declared dimensions.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, Tensor y) => Ops.MseLoss(Forward(x), y); // expect: KILN1009 "y"
}

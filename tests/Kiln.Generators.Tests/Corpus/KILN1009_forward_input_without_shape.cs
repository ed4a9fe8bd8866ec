// Forward's input is not a loss input either.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear fc = new(dim, 1);
    public Tensor Forward(Tensor features) => fc.Forward(features); // expect: KILN1009 "features"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(fc.Forward(x), y);
}

// Direct recursion.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, dim);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => Forward(fc.Forward(x)); // expect: KILN0015 "Regressor.Forward"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

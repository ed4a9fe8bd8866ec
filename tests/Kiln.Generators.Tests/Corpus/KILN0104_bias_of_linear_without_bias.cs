// The layer was declared without a bias.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1, bias: false);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => Ops.MatMul(x, fc.Weight.T) + fc.Bias; // expect: KILN0104 "bias"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

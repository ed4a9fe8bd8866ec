// Hyperparameters are numbers or booleans.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4, string activation = "tanh") // expect: KILN0008 "activation"
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

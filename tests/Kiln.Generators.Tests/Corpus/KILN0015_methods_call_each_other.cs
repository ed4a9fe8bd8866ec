// Methods are inlined, so mutual recursion never ends.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1);
    Tensor Even(Tensor x) => Odd(Ops.Tanh(x));
    Tensor Odd(Tensor x) => Even(Ops.Relu(x)); // expect: KILN0015 "Even"
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(Even(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

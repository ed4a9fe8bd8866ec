// Two [Loss] methods: which one is trained is ambiguous.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Mse([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
    [Loss] public Tensor Abs([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.Mean(Ops.Abs(Forward(x) - y)); // expect: KILN0006 "Mse, Abs"
}

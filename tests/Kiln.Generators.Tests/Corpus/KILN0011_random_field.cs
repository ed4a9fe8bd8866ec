// Arbitrary objects cannot live in a compiled model.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    System.Random rng = new(42); // expect: KILN0011 "System.Random"
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

// Methods are inlined by name; two with one name are ambiguous.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1);
    Tensor Act(Tensor x) => Ops.Tanh(x);
    Tensor Act(Tensor x, float slope) => Ops.Tanh(x * slope); // expect: KILN0016 "Act"
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(Act(x));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

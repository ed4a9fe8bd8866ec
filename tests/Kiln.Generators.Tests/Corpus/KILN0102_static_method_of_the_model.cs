// A static method of the model is plain C#, not an inlined model method.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1);
    static Tensor Act(Tensor x) => Ops.Tanh(x);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(Act(x)); // expect: KILN0102 "Act"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

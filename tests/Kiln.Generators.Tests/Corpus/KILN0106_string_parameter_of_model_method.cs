// A helper with a parameter type Kiln has no value for.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, 1);
    Tensor Act(Tensor x, string kind) => Ops.Tanh(x); // expect: KILN0106 "kind"
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(Act(x, "tanh"));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

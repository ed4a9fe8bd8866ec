// Type parameters cannot be compiled into one program.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor<TTag>(int dim = 4) // expect: KILN0003 "generic"
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

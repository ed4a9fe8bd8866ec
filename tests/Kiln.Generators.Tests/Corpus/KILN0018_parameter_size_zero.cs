// Parameter sizes must be positive.
using Kiln;
namespace Corpus;

[Model]
public partial class Projection(int dim = 4)
{
    Tensor w = Parameter.Normal(0.02f, dim, 0); // expect: KILN0018 "must be positive"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor y) => Ops.MseLoss(Ops.MatMul(x, w), y);
}

// A normal initialisation needs a non-negative standard deviation.
using Kiln;
namespace Corpus;

[Model]
public partial class Projection(int dim = 4)
{
    Tensor w = Parameter.Normal(-0.02f, dim, dim); // expect: KILN0018 "non-negative"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor y) => Ops.MseLoss(Ops.MatMul(x, w), y);
}

// A trainable tensor is declared by its initializer; a bare Tensor field has nothing to train.
using Kiln;
namespace Corpus;

[Model]
public partial class Scaled(int dim = 4)
{
    Tensor gain; // expect: KILN0017 "has no initializer"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor y) => Ops.MseLoss(x * gain, y);
}

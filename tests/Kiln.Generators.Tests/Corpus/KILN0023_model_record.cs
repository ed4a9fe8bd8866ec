// Kiln generates the other half of a partial class; a record is not one.
using Kiln;
namespace Corpus;

[Model]
public partial record Net(int dim = 4) // expect: KILN0023 "record"
{
    Linear head = new(dim, 1);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(x), y);
}

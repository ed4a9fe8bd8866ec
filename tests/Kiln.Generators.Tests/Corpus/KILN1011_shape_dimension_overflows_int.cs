// Sizes are int: a dimension of 2^31 or more cannot be one.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "99999999999")] Tensor y) => Ops.MseLoss(head.Forward(x), y); // expect: KILN1011 "int"
}

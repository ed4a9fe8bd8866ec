// '+' on token ids.
// allow: CS0019
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor<int> ids) => head.Forward(x + (ids + ids)); // expect: KILN1007 "integer tensor"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "dim")] Tensor<int> ids, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x, ids), y);
}

// Columns 0..10 of a 4-column tensor.
using Kiln;
namespace Corpus;

[Model]
public partial class Net()
{
    Linear head = new(10, 1);
    public Tensor Forward([Shape("B", "4")] Tensor x) => head.Forward(Ops.Slice(x, 1, 0, 10)); // expect: KILN1006 "past the size"
    [Loss] public Tensor Loss([Shape("B", "4")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

// [B, 3] + [B, 4] does not broadcast.
using Kiln;
namespace Corpus;

[Model]
public partial class Net()
{
    Linear head = new(3, 1);
    public Tensor Forward([Shape("B", "3")] Tensor x, [Shape("B", "4")] Tensor z) => head.Forward(x + z); // expect: KILN1002 "3 vs 4"
    [Loss] public Tensor Loss([Shape("B", "3")] Tensor x, [Shape("B", "4")] Tensor z, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x, z), y);
}

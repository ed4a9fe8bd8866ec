// [B, 3] · [4, 2]: 3 ≠ 4.
using Kiln;
namespace Corpus;

[Model]
public partial class Net()
{
    Linear head = new(2, 1);
    public Tensor Forward([Shape("B", "3")] Tensor x, [Shape("4", "2")] Tensor w) =>
        head.Forward(Ops.MatMul(x, w)); // expect: KILN1001 "3 vs 4"
    [Loss] public Tensor Loss([Shape("B", "3")] Tensor x, [Shape("4", "2")] Tensor w, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x, w), y);
}

// 24 elements into 25.
using Kiln;
namespace Corpus;

[Model]
public partial class Net()
{
    Linear head = new(25, 1);
    public Tensor Forward([Shape("4", "6")] Tensor x) => head.Forward(Ops.Reshape(x, 1, 25));
    [Loss] public Tensor Loss([Shape("4", "6")] Tensor x, [Shape("1", "1")] Tensor y) => Ops.MseLoss(head.Forward(Ops.Reshape(x, 1, 25)), y); // expect: KILN1004 "24 elements"
}

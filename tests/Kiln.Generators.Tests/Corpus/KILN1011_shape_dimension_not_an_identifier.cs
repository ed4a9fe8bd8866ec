// '3x' is neither a number nor a name.
using Kiln;
namespace Corpus;

[Model]
public partial class Net()
{
    Linear fc = new(3, 1);
    public Tensor Forward([Shape("B", "3x")] Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss([Shape("B", "3x")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y); // expect: KILN1011 "3x"
}

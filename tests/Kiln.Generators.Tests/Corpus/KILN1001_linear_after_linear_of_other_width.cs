// fc1 produces hidden features, fc2 expects twice as many.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4, int hidden = 8)
{
    Linear fc1 = new(dim, hidden), fc2 = new(2 * hidden, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => fc2.Forward(Ops.Relu(fc1.Forward(x))); // expect: KILN1001 "fc2"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

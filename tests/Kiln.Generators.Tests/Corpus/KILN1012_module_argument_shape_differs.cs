// [Shape] on a module method's parameter is checked at every call.
using Kiln;
namespace Corpus;

[Module]
public partial class Head(int dim)
{
    Linear fc = new(dim, 1);
    public Tensor Forward([Shape("N", "dim")] Tensor x) => fc.Forward(x);
}

[Model]
public partial class Net(int dim = 4)
{
    Head head = new(dim);
    Linear up = new(dim, 2 * dim);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(Ops.Reshape(up.Forward(x), -1, dim, 2)), y); // expect: KILN1012 "[N, dim]"
}

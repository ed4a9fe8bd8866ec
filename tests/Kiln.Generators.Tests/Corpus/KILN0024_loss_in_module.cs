// The loss belongs to the model; a [Loss] in a module is never used.
using Kiln;
namespace Corpus;

[Module]
public partial class Head(int dim)
{
    Linear fc = new(dim, 1);
    public Tensor Forward(Tensor x) => fc.Forward(x);
    [Loss] public Tensor Loss(Tensor x, Tensor y) => Ops.MseLoss(Forward(x), y); // expect: KILN0024 "module"
}

[Model]
public partial class Net(int dim = 4)
{
    Head head = new(dim);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(x), y);
}

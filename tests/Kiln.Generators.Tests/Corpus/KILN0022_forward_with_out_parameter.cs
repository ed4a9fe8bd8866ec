// Model methods are compiled into a dataflow graph: out and ref parameters have no meaning there.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x, out Tensor hidden) // expect: KILN0022 "out"
    {
        hidden = x;
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x, out _), y);
}

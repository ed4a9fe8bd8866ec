// Layers hold parameters; one constructed inside Forward would be a new layer every call.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        var hidden = new Linear(dim, dim); // expect: KILN0021 "inside a model method"
        return head.Forward(hidden.Forward(x));
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

// A layer with no outputs: reported at the argument, not where the layer is used.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear hidden = new(dim, 0); // expect: KILN0018 "outFeatures"
    Linear head = new(dim, 1);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(x), y);
}

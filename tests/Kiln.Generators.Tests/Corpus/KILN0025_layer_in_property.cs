// Kiln reads layers from instance fields with initializers; a property is code it does not run.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear Head { get; } = new(dim, 1); // expect: KILN0025 "property"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Head.Forward(x), y);
}

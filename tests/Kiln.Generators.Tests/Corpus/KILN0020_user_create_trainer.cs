// Kiln generates CreateTrainer and CreateProgram into the model class; a user method of that name would clash.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4)
{
    Linear head = new(dim, 1);
    public Trainer CreateTrainer() => null!; // expect: KILN0020 "CreateTrainer"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(x), y);
}

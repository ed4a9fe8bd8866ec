// A hyperparameter default that the model cannot run with: a build warning naming it and the rule.
using Kiln;
namespace Corpus;

[Model]
public partial class Net(int dim = 4, float p = 1.5f) // expect: KILN0019 "p"
{
    Dropout drop = new(p);
    Linear head = new(dim, 1);
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(head.Forward(drop.Forward(x)), y);
}

// Whether a layer has a bias decides its parameters, so a hyperparameter that decides it needs a default.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(bool useBias, int dim = 4)
{
    Linear fc = new(dim, dim, useBias); // expect: KILN0013 "useBias"
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(Ops.Relu(fc.Forward(x)));
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

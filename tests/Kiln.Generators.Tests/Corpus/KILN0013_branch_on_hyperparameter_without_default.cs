// An 'if' on a hyperparameter picks the structure, so the hyperparameter needs a default.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int layers, int dim = 4)
{
    Linear fc = new(dim, dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        if (layers > 1) // expect: KILN0013 "layers"
            x = Ops.Relu(fc.Forward(x));
        return head.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

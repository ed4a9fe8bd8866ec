// A float hyperparameter is fixed only when the model is constructed, after the program was generated.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4, float dropout = 0.1f)
{
    Linear fc = new(dim, 1);
    Dropout drop = new(dropout);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        if (dropout > 0f) // expect: KILN0108 "floating-point hyperparameter"
            x = drop.Forward(x);
        return fc.Forward(x);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

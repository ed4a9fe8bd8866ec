// A lambda with a block body in a method.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4, int depth = 2)
{
    Linear fc = new(dim, dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        System.Func<Tensor, Tensor> act = t => { return Ops.Tanh(t); }; // expect: KILN0101 "lambda"
        return head.Forward(fc.Forward(x));
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

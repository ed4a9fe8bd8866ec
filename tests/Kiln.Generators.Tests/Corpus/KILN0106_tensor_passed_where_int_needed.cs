// A helper expects a count and receives a tensor.
// allow: CS1503
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4)
{
    Linear fc = new(dim, dim);
    Linear head = new(dim, 1);
    Tensor Apply(Tensor x, int times)
    {
        for (int i = 0; i < times; i++) x = fc.Forward(x);
        return x;
    }
    public Tensor Forward([Shape("B", "dim")] Tensor x) => head.Forward(Apply(x, x)); // expect: KILN0106 "times"
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}

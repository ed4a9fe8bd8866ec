// Every local needs a value where it is declared.
using Kiln;
namespace Corpus;

[Model]
public partial class Regressor(int dim = 4, int depth = 2)
{
    Linear fc = new(dim, dim);
    Linear head = new(dim, 1);
    public Tensor Forward([Shape("B", "dim")] Tensor x)
    {
        Tensor h; // expect: KILN0100 "without an initializer"
        h = fc.Forward(x);
        return head.Forward(h);
    }
    [Loss] public Tensor Loss([Shape("B", "dim")] Tensor x, [Shape("B", "1")] Tensor y) => Ops.MseLoss(Forward(x), y);
}
